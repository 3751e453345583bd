//! `scaleplan promote`: a standby of the running deployment made the
//! primary when the primary is lost: the local target's (`up --native`)
//! or a Compose deployment's (`up` without it), told apart by what the
//! state directory holds.

use super::args::{Deployment, EXIT_ERROR, EXIT_OK, Format, Templates};
use super::session::{self, Request};
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
    let renderer = Renderer::new(args.templates.dir.as_deref())?;
    let timeout = std::time::Duration::from_secs(args.timeout);
    // A Compose deployment: `up` without --native wrote its files here,
    // and there is no record of processes.
    let compose = crate::native::State::load(&args.at.state)?.is_none()
        && args.at.state.join("compose-target").is_dir();
    let (report, rejoin) = if compose {
        let record = super::compose::Record::load(&args.at.state)?;
        let req = Request {
            names: std::slice::from_ref(&args.name),
            only_selected: true,
            plan: record.plan_options(),
            ..Request::all(&args.at.phases.dir)
        };
        let loaded = match session::load(format, &req)? {
            Ok(loaded) => loaded,
            Err(code) => return Ok(code),
        };
        if format == Format::Json {
            crate::output::progress_to_stderr();
        }
        let report = super::compose::promote::promote(
            loaded.one(),
            &renderer,
            &super::compose::promote::PromoteOptions {
                state: &args.at.state,
                replica: args.replica.as_deref(),
                timeout,
            },
        )?;
        let rejoin = format!(
            "its data directory is no standby's, so it refuses to start until reseeded: SCALEPLAN_RESEED=<the system identifier its error names> docker compose up -d --no-deps --force-recreate --wait {lost} (docs/recovery.md#in-compose). Take a full backup on the new timeline soon: a restore from before the promotion replays the segments the promoted node received, and nothing of what the lost primary wrote after them",
            lost = report.lost_primary
        );
        (report, rejoin)
    } else {
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
        let report = promote::promote(
            phase,
            &renderer,
            &PromoteOptions {
                state_dir: &args.at.state,
                replica: args.replica.as_deref(),
                timeout,
            },
        )?;
        let rejoin = format!(
            "its data replaced by a clone: scaleplan up {name} --native --reseed {}",
            report.lost_primary
        );
        (report, rejoin)
    };
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
                "{} rejoins only as a standby, {rejoin}",
                report.lost_primary
            );
        }
    }
    Ok(EXIT_OK)
}
