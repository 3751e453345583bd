//! `scaleplan list`: the phases in rollout order.

use super::args::{EXIT_OK, Format, PhasesDir};
use super::session::{self, DiagnosticsDoc, Request};
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ListDoc<'a> {
    #[serde(flatten)]
    diagnostics: &'a DiagnosticsDoc,
    phases: Vec<Entry<'a>>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Entry<'a> {
    order: u32,
    name: &'a str,
    title: Option<&'a str>,
    users: Users,
    redis_mode: &'a str,
    files: &'a [String],
}

#[derive(Serialize, schemars::JsonSchema)]
struct Users {
    min: u32,
    max: u32,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let loaded = match session::load(format, &Request::all(&args.phases.dir))? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    if format == Format::Json {
        session::print_json(&document(&loaded))?;
        return Ok(EXIT_OK);
    }
    let phases = loaded.planned.phases.iter();
    for p in phases {
        let s = p.spec();
        crate::say!(
            "{:>2}  {:<12} {:<28} users {}-{}  redis {}  {}",
            s.order,
            s.name,
            s.title.as_ref().map_or("", |t| t.as_str()),
            s.users.min,
            s.users.max,
            s.redis.mode.as_str(),
            p.phase.file_names.join(" <- ")
        );
    }
    Ok(EXIT_OK)
}

/// `list --format json` (and `GET /v1/phases`).
pub(super) fn document(loaded: &session::Loaded) -> ListDoc<'_> {
    ListDoc {
        diagnostics: &loaded.report,
        phases: loaded
            .planned
            .phases
            .iter()
            .map(|p| {
                let s = p.spec();
                Entry {
                    order: s.order,
                    name: p.name(),
                    title: s.title.as_ref().map(|t| t.as_str()),
                    users: Users {
                        min: s.users.min,
                        max: s.users.max,
                    },
                    redis_mode: s.redis.mode.as_str(),
                    files: &p.phase.file_names,
                }
            })
            .collect(),
    }
}
