//! `scaleplan schema`: the JSON Schema of a phase spec, or a check that a
//! committed copy is current.

use super::args::{EXIT_CHANGES, EXIT_OK};
use crate::render::artifacts;
use crate::validate::schema::schema_text;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Compare FILE with the schema instead of printing it; exit 2 when it
    /// differs (default schemas/phase.schema.json, or schemas/openapi.json
    /// with --openapi).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    check: Option<Option<PathBuf>>,
    /// The OpenAPI 3.1 document of `scaleplan serve` instead.
    #[arg(long, conflicts_with = "reference")]
    openapi: bool,
    /// The spec's field reference in Markdown, generated from the schema
    /// (docs/reference.md) instead.
    #[arg(long)]
    reference: bool,
}

pub(super) fn run(args: &Args) -> anyhow::Result<i32> {
    let (text, default) = if args.openapi {
        (super::serve::openapi::document(), "schemas/openapi.json")
    } else if args.reference {
        (
            crate::render::reference::markdown(&crate::validate::schema::schema()),
            "docs/reference.md",
        )
    } else {
        (schema_text(), "schemas/phase.schema.json")
    };
    let Some(path) = &args.check else {
        crate::say_raw!("{text}");
        return Ok(EXIT_OK);
    };
    let path = path.clone().unwrap_or_else(|| PathBuf::from(default));
    let path = &path;
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    if on_disk == text {
        crate::say!("{} is up to date", path.display());
        return Ok(EXIT_OK);
    }
    crate::say_raw!(
        "{}",
        artifacts::unified_diff(&on_disk, &text, &path.display().to_string())
    );
    eprintln!(
        "{} is stale: run `scaleplan schema{} > {}`",
        path.display(),
        if args.openapi {
            " --openapi"
        } else if args.reference {
            " --reference"
        } else {
            ""
        },
        path.display()
    );
    Ok(EXIT_CHANGES)
}
