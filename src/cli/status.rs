//! `scaleplan status`: each recorded process and whether it serves.

use super::args::{EXIT_ERROR, EXIT_OK};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The state directory `up --native` used.
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    state: PathBuf,
}

pub(super) fn run(args: &Args) -> anyhow::Result<i32> {
    Ok(if crate::native::status(&args.state)? {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
