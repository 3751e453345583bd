//! `scaleplan capacity`: the tables, or the smallest phase for N users.

use super::args::{EXIT_ERROR, EXIT_OK, Format, PhasesDir};
use super::session::{self, Request};
use crate::diag::Code;
use crate::plan::capacity::Estimate;
use crate::render::format::thousands;
use serde::Serialize;
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
    /// Name the smallest phase that carries this many users.
    #[arg(long, value_name = "N")]
    users: Option<u64>,
    /// With --users: capacity required per user (1.2 = 20% to spare).
    #[arg(long, value_name = "H", default_value_t = 1.2)]
    headroom: f64,
    /// Phases to show (all when none is named).
    names: Vec<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct TablesDoc<'a> {
    pub phases: Vec<&'a Estimate>,
}

#[derive(Serialize)]
struct ForUsersDoc<'a> {
    users: u64,
    headroom: f64,
    needed: u64,
    phase: Option<&'a str>,
    estimate: Option<&'a Estimate>,
    largest: Option<&'a Estimate>,
    remedy: Option<&'static str>,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let req = Request {
        names: &args.names,
        // CAP001 is what this command explains, so it does not stop it.
        waived: &[Code::Cap001],
        ..Request::all(&args.phases.dir)
    };
    let loaded = match session::load(format, &req)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let estimates: Vec<_> = loaded.selected().map(|p| (p, &p.capacity)).collect();
    let Some(wanted) = args.users else {
        match format {
            Format::Json => session::print_json(&TablesDoc {
                phases: estimates.iter().map(|(_, e)| *e).collect(),
            })?,
            _ => {
                for (p, e) in &estimates {
                    crate::say!("{}", table(e, &p.title, p.spec().users.min));
                }
            }
        }
        return Ok(EXIT_OK);
    };
    let headroom = args.headroom;
    if !(headroom.is_finite() && headroom > 0.0) {
        eprintln!(
            "error: --headroom must be a positive number\n  help: 1.2 asks for 20% spare capacity"
        );
        return Ok(EXIT_ERROR);
    }
    let needed = (wanted as f64 * headroom).ceil() as u64;
    let pick = estimates.iter().find(|(_, e)| e.capacity >= needed);
    let largest = estimates.iter().max_by_key(|(_, e)| e.capacity);
    match format {
        Format::Json => session::print_json(&ForUsersDoc {
            users: wanted,
            headroom,
            needed,
            phase: pick.map(|(p, _)| p.name()),
            estimate: pick.map(|(_, e)| *e),
            largest: largest.map(|(_, e)| *e),
            remedy: if pick.is_none() {
                largest.map(|(_, e)| e.bottleneck.remedy())
            } else {
                None
            },
        })?,
        _ => match (pick, largest) {
            (Some((p, e)), _) => crate::say!(
                "{} carries {} users: it carries {} >= {} x {headroom} (bottleneck: {})",
                p.name(),
                thousands(wanted),
                thousands(e.capacity),
                thousands(wanted),
                e.bottleneck.label()
            ),
            (None, Some((p, e))) => crate::say!(
                "no phase carries {} users with headroom {headroom} ({} needed): the largest, {}, carries {} (bottleneck: {}); {}",
                thousands(wanted),
                thousands(needed),
                p.name(),
                thousands(e.capacity),
                e.bottleneck.label(),
                e.bottleneck.remedy()
            ),
            (None, None) => crate::say!("no phases"),
        },
    }
    Ok(if pick.is_some() { EXIT_OK } else { EXIT_ERROR })
}

/// The capacity table of one phase, bottleneck marked with '*'.
fn table(e: &Estimate, title: &str, users_min: u32) -> String {
    let mut out = format!(
        "{} ({title}): carries {} concurrent users; planned {}-{}; headroom {:.2}x; bottleneck: {}\n",
        e.phase,
        thousands(e.capacity),
        thousands(users_min.into()),
        thousands(e.users_max.into()),
        e.headroom,
        e.bottleneck.label()
    );
    let _ = writeln!(out, "    {:<20} {:>12}  work", "resource", "users");
    for l in &e.lines {
        let mark = if l.resource == e.bottleneck { '*' } else { ' ' };
        let users = l.users.map_or_else(
            || {
                if l.resource == crate::plan::capacity::Resource::PgbouncerClients {
                    "not per user".to_owned()
                } else {
                    "no limit".to_owned()
                }
            },
            thousands,
        );
        let _ = writeln!(
            out,
            "  {mark} {:<20} {users:>12}  {}",
            l.resource.label(),
            l.work
        );
    }
    out
}
