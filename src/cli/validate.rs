//! `scaleplan validate`: every problem of every spec, in one run.

use super::args::{EXIT_OK, Format, PhasesDir};
use super::session::{self, Request};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
    /// Phases to check (all when none is named); every spec is loaded.
    names: Vec<String>,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let req = Request {
        names: &args.names,
        strict: args.strict,
        ..Request::all(&args.phases.dir)
    };
    let loaded = match session::load(format, &req)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    match format {
        Format::Json => session::print_json(&loaded.report)?,
        _ => {
            let names = loaded.planned.names();
            crate::say!("{} phase(s) valid: {}", names.len(), names.join(", "));
        }
    }
    Ok(EXIT_OK)
}
