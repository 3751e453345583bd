//! `scaleplan restore`: the running local deployment's database back to a
//! point in time from its pgBackRest backups and WAL archive.

use super::args::{Deployment, EXIT_ERROR, EXIT_OK, Format, Templates};
use super::session;
use crate::native::backup::{self, RestoreOptions, RestoreTarget};
use crate::render::Renderer;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: Deployment,
    /// `latest` (everything archived), or a time with its offset, such as
    /// 2026-12-07T06:30:00Z: transactions committed by then are kept, later
    /// ones are not.
    #[arg(long, value_name = "TIME|latest")]
    to: RestoreTarget,
    /// Seconds each server may take to become healthy (the primary's
    /// includes replaying the archive).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    templates: Templates,
    /// The phase that runs in the state directory.
    name: String,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let (_, loaded, name) = match session::on_deployment(format, &args.at, Some(&args.name))? {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let Some(phase) = loaded.planned.get(&name) else {
        return Ok(EXIT_ERROR);
    };
    if format == Format::Json {
        crate::output::progress_to_stderr();
    }
    let renderer = Renderer::new(args.templates.dir.as_deref())?;
    let report = backup::restore(
        phase,
        &renderer,
        &RestoreOptions {
            state_dir: &args.at.state,
            target: args.to,
            timeout: std::time::Duration::from_secs(args.timeout),
        },
    )?;
    match format {
        Format::Json => session::print_json(&report)?,
        _ => crate::say!(
            "restored phase {} to {} in {:.1} s; the primary's data from before the restore is in {}",
            name,
            report.target,
            report.seconds,
            report.kept.display()
        ),
    }
    Ok(EXIT_OK)
}
