//! `scaleplan schema`: the JSON Schema of a phase spec, or a check that a
//! committed copy is current.

use super::args::{EXIT_CHANGES, EXIT_OK};
use crate::render::artifacts;
use crate::validate::schema::schema_text;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Compare FILE with the schema instead of printing it; exit 2 when it
    /// differs.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "schemas/phase.schema.json")]
    check: Option<PathBuf>,
}

pub(super) fn run(args: &Args) -> anyhow::Result<i32> {
    let text = schema_text();
    let Some(path) = &args.check else {
        crate::say_raw!("{text}");
        return Ok(EXIT_OK);
    };
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
        "{} is stale: run `scaleplan schema > {}`",
        path.display(),
        path.display()
    );
    Ok(EXIT_CHANGES)
}
