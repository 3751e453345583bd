//! `scaleplan down`: stop exactly what `up --native` recorded.

use super::args::EXIT_OK;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The state directory `up --native` used.
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    state: PathBuf,
    /// Also delete the state directory (data, logs, secrets).
    #[arg(long)]
    purge: bool,
}

pub(super) fn run(args: &Args) -> anyhow::Result<i32> {
    crate::native::down(&args.state, args.purge)?;
    Ok(EXIT_OK)
}
