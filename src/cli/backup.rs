//! `scaleplan backup`: a pgBackRest backup of the running local
//! deployment's primary, and what the repository can now restore.

use super::args::{Deployment, EXIT_ERROR, EXIT_OK, Format};
use super::session;
use crate::native::backup::{self, BackupKind};
use crate::render::format::thousands;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: Deployment,
    /// full copies everything; diff what changed since the last full
    /// backup; incr what changed since the last backup; auto is full when
    /// the newest full backup is older than the phase's full_every_days
    /// (the retention, at most 7 days), incr otherwise.
    #[arg(long = "type", value_enum, default_value_t = BackupKind::Auto)]
    kind: BackupKind,
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
    let report = backup::backup(phase, &args.at.state, args.kind)?;
    match format {
        Format::Json => session::print_json(&report)?,
        _ => crate::say!(
            "backup {} ({}): {} KB of database, {} KB in the repository, {:.1} s\n{} backup(s) kept; a restore reaches any time from {} until the last archived WAL",
            report.label,
            report.kind,
            thousands(report.database_bytes / 1024),
            thousands(report.repository_bytes / 1024),
            report.seconds,
            report.backups,
            report.restorable_from
        ),
    }
    Ok(EXIT_OK)
}
