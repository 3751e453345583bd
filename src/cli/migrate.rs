//! `scaleplan migrate`: move the deployment a state directory runs to
//! another phase while it serves, through every phase in between.

use super::args::{EXIT_ERROR, EXIT_OK, Format, PhasesDir, Templates};
use super::session::{self, DiagnosticsDoc, Request};
use crate::native::State;
use crate::native::migrate::{self, Hop, HopReport, MigrateOptions};
use crate::plan::PlannedPhase;
use crate::render::Renderer;
use crate::transition::{self, Plan};
use anyhow::bail;
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
    /// The state directory of the running deployment (`up --native`).
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    state: PathBuf,
    /// Print the steps and touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds each component may take to become healthy.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    templates: Templates,
    /// The phase to move to.
    name: String,
}

#[derive(Serialize)]
struct DryRunDoc<'a> {
    #[serde(flatten)]
    report: &'a DiagnosticsDoc,
    dry_run: bool,
    hops: Vec<&'a Plan>,
}

#[derive(Serialize)]
struct RunDoc<'a> {
    #[serde(flatten)]
    report: &'a DiagnosticsDoc,
    dry_run: bool,
    phase: &'a str,
    hops: &'a [HopReport],
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let Some(state) = session::deployment(&args.state)? else {
        return Ok(EXIT_ERROR);
    };
    // Every phase planned on the deployment's own ports.
    let req = Request::on_deployment(&args.phases.dir, &state);
    let loaded = match session::load(format, &req)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let hops = match route(&loaded.planned.phases, &state, &args.name) {
        Ok(hops) => hops,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(EXIT_ERROR);
        }
    };
    // Every phase on the way keeps the promoted primary, if there is one.
    let writer = state.plan_options().writer;
    if !hops.iter().all(|h| session::keeps_writer(h.to, writer)) {
        return Ok(EXIT_ERROR);
    }
    if args.dry_run {
        match format {
            Format::Json => session::print_json(&DryRunDoc {
                report: &loaded.report,
                dry_run: true,
                hops: hops.iter().map(|h| &h.plan).collect(),
            })?,
            _ => print_plans(&hops, &args.state),
        }
        return Ok(EXIT_OK);
    }
    if hops.is_empty() {
        crate::say!("{} runs {} already", args.state.display(), args.name);
        if format == Format::Json {
            session::print_json(&RunDoc {
                report: &loaded.report,
                dry_run: false,
                phase: &args.name,
                hops: &[],
            })?;
        }
        return Ok(EXIT_OK);
    }
    if state.migration.is_none() {
        let down: Vec<String> = state
            .processes
            .iter()
            .filter(|p| !p.alive())
            .map(|p| p.name.clone())
            .collect();
        if state.processes.is_empty() || !down.is_empty() {
            eprintln!(
                "error: {} does not run phase {} whole (down: {})\n  help: bring it up first: scaleplan up {} --native --state {}",
                args.state.display(),
                state.phase,
                if down.is_empty() {
                    "everything".to_owned()
                } else {
                    down.join(", ")
                },
                state.phase,
                args.state.display()
            );
            return Ok(EXIT_ERROR);
        }
    }
    if format == Format::Json {
        crate::output::progress_to_stderr();
    }
    let renderer = Renderer::new(args.templates.dir.as_deref())?;
    let opts = MigrateOptions {
        state_dir: &args.state,
        timeout: std::time::Duration::from_secs(args.timeout),
        resume: format!(
            "scaleplan migrate {} --state {}",
            args.name,
            args.state.display()
        ),
    };
    let reports = migrate::migrate(&hops, &renderer, &opts)?;
    if format == Format::Json {
        session::print_json(&RunDoc {
            report: &loaded.report,
            dry_run: false,
            phase: &args.name,
            hops: &reports,
        })?;
    }
    Ok(EXIT_OK)
}

/// The hops from the phase the state directory runs (or is migrating
/// from) to `target`, one per phase in between, in rollout order; going
/// back only into phases that allow it. A migration under way continues
/// first, and only if its plan is still the one it started.
fn route<'a>(
    phases: &'a [PlannedPhase],
    state: &State,
    target: &str,
) -> anyhow::Result<Vec<Hop<'a>>> {
    let mut ordered: Vec<&PlannedPhase> = phases.iter().collect();
    ordered.sort_by_key(|p| p.spec().order);
    let position = |name: &str| ordered.iter().position(|p| p.name() == name);
    let current_name = state
        .migration
        .as_ref()
        .map_or(state.phase.as_str(), |m| m.from.as_str());
    let Some(current) = position(current_name) else {
        bail!("the deployment runs phase {current_name}, which the phases directory no longer has");
    };
    let Some(goal) = position(target) else {
        let names: Vec<&str> = ordered.iter().map(|p| p.name()).collect();
        bail!("no phase named {target} (phases: {})", names.join(", "));
    };
    let path: Vec<&PlannedPhase> = if goal >= current {
        ordered[current..=goal].to_vec()
    } else {
        let back: Vec<&PlannedPhase> = ordered[goal..=current].iter().rev().copied().collect();
        if let Some(p) = back[1..].iter().find(|p| !p.spec().allow_downgrade) {
            bail!(
                "{target} comes before {current_name} in rollout order: moving back into {} shrinks the deployment; set `allow_downgrade: true` in phase {} if that is intended",
                p.name(),
                p.name()
            );
        }
        back
    };
    let hops: Vec<Hop> = path
        .windows(2)
        .map(|w| Hop {
            from: w[0],
            to: w[1],
            plan: transition::plan(w[0], w[1]),
        })
        .collect();
    if let Some(m) = &state.migration {
        let first = hops.first();
        let same = first.is_some_and(|h| {
            h.to.name() == m.to
                && h.plan.steps.len() == m.total
                && h.plan.steps.get(m.step - 1).map(|s| s.title.as_str()) == Some(m.title.as_str())
        });
        if !same {
            bail!(
                "the deployment is {}; finish that first (`scaleplan migrate {}`){}",
                m.describe(),
                m.to,
                if first.is_some_and(|h| h.to.name() == m.to) {
                    ": its phases changed since it started, and the plan no longer has that step there"
                } else {
                    ""
                }
            );
        }
    }
    for hop in &hops {
        let refused = migrate::refused(&hop.plan);
        if !refused.is_empty() {
            bail!(
                "migrate {} -> {} includes steps it does not carry out on the local target: {}",
                hop.from.name(),
                hop.to.name(),
                refused.join("; ")
            );
        }
    }
    Ok(hops)
}

fn print_plans(hops: &[Hop], state: &std::path::Path) {
    if hops.is_empty() {
        crate::say!("nothing to do: {} runs that phase", state.display());
        return;
    }
    for hop in hops {
        let plan = &hop.plan;
        crate::say!(
            "migrate {} -> {} ({} steps, highest risk: {}):",
            plan.from,
            plan.to,
            plan.steps.len(),
            plan.highest_risk().label()
        );
        for (i, s) in plan.steps.iter().enumerate() {
            crate::say!("  {}. [{}] {}", i + 1, s.risk.label(), s.title);
            match &s.not_native {
                Some(reason) => crate::say!("     not run here: {reason}"),
                None => crate::say!("     runs here, then checks its outcome"),
            }
            for cmd in &s.compose {
                crate::say!("     compose: {cmd}");
            }
        }
    }
    crate::say!("dry run: nothing was changed");
}
