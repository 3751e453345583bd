//! `scaleplan status`: each recorded process and whether it serves.

use super::args::{EXIT_ERROR, EXIT_OK, Format};
use super::session;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The state directory of `up --native`.
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    state: PathBuf,
}

/// Exit 0 when every recorded process serves, 1 otherwise.
pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let up = if format == Format::Json {
        let doc = crate::native::status_report(&args.state)?;
        session::print_json(&doc)?;
        doc.up
    } else {
        crate::native::status(&args.state)?
    };
    Ok(if up { EXIT_OK } else { EXIT_ERROR })
}
