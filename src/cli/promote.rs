//! `scaleplan promote`: a standby of the running local deployment made
//! the primary when the primary is lost.

use super::args::{Deployment, EXIT_ERROR, EXIT_OK, Format, Templates};
use super::session;
use crate::native::migrate::promote::{self, PromoteOptions};
use crate::render::Renderer;
use crate::render::format::thousands;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: Deployment,
    /// Seconds each server may take to become healthy.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    templates: Templates,
    /// The phase that runs in the state directory.
    name: String,
    /// The standby to promote (e.g. postgres-replica-2); the one that has
    /// received the most WAL when not given.
    replica: Option<String>,
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
    let report = promote::promote(
        phase,
        &renderer,
        &PromoteOptions {
            state_dir: &args.at.state,
            replica: args.replica.as_deref(),
            timeout: std::time::Duration::from_secs(args.timeout),
        },
    )?;
    match format {
        Format::Json => session::print_json(&report)?,
        _ => {
            crate::say!(
                "{} is the primary ({:.1} s): the standbys stream from it, PgBouncer writes to it, the app's DATABASE_URL reaches it",
                report.promoted,
                report.seconds
            );
            match (&report.lost, &report.lost_unread) {
                (Some(lost), _) if lost.commits > 0 => crate::say!(
                    "{} had written {} bytes of WAL beyond what {} had received ({} .. {}), with {} committed transactions: at most that many acknowledged writes were lost by asynchronous replication (a commit may not have been acknowledged yet, or be the server's own).\n\
                     To lose none, make each commit wait until a standby has its WAL (postgres.parameters): synchronous_commit: \"on\" and synchronous_standby_names: '{}'",
                    report.lost_primary,
                    thousands(lost.bytes),
                    report.promoted,
                    report.received_lsn,
                    lost.primary_end_lsn,
                    lost.commits,
                    report.synchronous_standby_names
                ),
                (Some(lost), _) => crate::say!(
                    "{} had no committed transaction beyond what {} had received ({}; {} bytes of WAL after it): no acknowledged write was lost",
                    report.lost_primary,
                    report.promoted,
                    report.received_lsn,
                    thousands(lost.bytes)
                ),
                (None, why) => crate::say!(
                    "what {} wrote after {} cannot be counted: {}",
                    report.lost_primary,
                    report.received_lsn,
                    why.as_deref().unwrap_or("unknown")
                ),
            }
            crate::say!(
                "{} rejoins only as a standby, its data replaced by a clone: scaleplan up {} --native --reseed {}",
                report.lost_primary,
                name,
                report.lost_primary
            );
        }
    }
    Ok(EXIT_OK)
}
