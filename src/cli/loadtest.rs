//! `scaleplan loadtest`: the phase's k6 load test against the running
//! local deployment, each resource's measured cost per user beside the
//! capacity model's, and the measured figures as spec fields a phase can
//! extend (`--write-calibration`).

use super::args::{Deployment, EXIT_ERROR, EXIT_OK, Format, Templates};
use super::session;
use crate::native::loadtest::{self, LoadOptions, LoadReport, MEASURE};
use crate::plan::PlannedPhase;
use crate::plan::layout::PhaseFile;
use crate::render::Renderer;
use crate::render::format::thousands;
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: Deployment,
    /// The k6 scenario: `measure` (USERS users, each holding a Socket.IO
    /// connection and sending the workload's requests), or one of the
    /// script's own (smoke, socket_smoke, steady, ...).
    #[arg(long, value_name = "NAME", default_value = MEASURE)]
    scenario: String,
    /// Users of the `measure` scenario.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=20000))]
    users: u32,
    /// Seconds the `measure` scenario runs; with another scenario, the
    /// seconds of it that are sampled (it runs its own length).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(20..=3600))]
    duration: u64,
    /// Write the measured workload and app figures to FILE as an abstract
    /// spec a phase can extend.
    #[arg(long, value_name = "FILE")]
    write_calibration: Option<PathBuf>,
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
    let files = renderer.render_phase(phase)?;
    let script = files
        .get(PhaseFile::LoadTest.rel())
        .context("the phase renders no load test")?;
    let report = loadtest::run(
        phase,
        &LoadOptions {
            state_dir: &args.at.state,
            script,
            scenario: &args.scenario,
            users: args.users,
            seconds: args.duration,
        },
    )?;
    if let Some(path) = &args.write_calibration {
        let text = calibration_yaml(phase, &report, args);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        crate::say!("wrote {}", path.display());
    }
    match format {
        Format::Json => session::print_json(&report)?,
        _ => crate::say!("{}", table(&report)),
    }
    Ok(if report.thresholds_ok {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn figure(x: Option<f64>) -> String {
    match x {
        Some(v) if v >= 100.0 => thousands(v.round() as u64),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
        None => "-".to_owned(),
    }
}

fn table(r: &LoadReport) -> String {
    let mut out = format!(
        "phase {}: {} users for {:.0} s (scenario {}): {} requests ({:.1}/s, {:.2}% failed), {} of {} Socket.IO handshakes, {} broadcasts sent, {} received; the app used {:.2} cores\n\n",
        r.phase,
        figure(Some(r.users)),
        r.window_seconds,
        r.scenario,
        r.requests,
        r.requests_per_sec,
        r.failed_requests * 100.0,
        r.handshakes_ok,
        r.handshakes_ok + r.handshakes_failed,
        r.broadcasts_sent,
        r.broadcasts_received,
        r.app_cores_used,
    );
    out.push_str(&format!(
        "{:<20} {:>12} {:>16} {:>14} {:>8}  {}\n",
        "resource", "modelled", "cost per user", "at full use", "ratio", "unit"
    ));
    for f in &r.resources {
        out.push_str(&format!(
            "{:<20} {:>12} {:>16} {:>14} {:>8}  {}\n",
            f.label,
            f.modelled_users.map_or("-".to_owned(), thousands),
            figure(f.cost_per_user),
            figure(f.implied_users),
            f.ratio.map_or("-".to_owned(), |x| format!("{x:.2}")),
            f.unit
        ));
    }
    out.push_str(&format!(
        "\nbottleneck: modelled {}, measured {}\n",
        r.modelled_bottleneck.label(),
        r.measured_bottleneck.map_or("-", |b| b.label())
    ));
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if !r.thresholds_ok {
        out.push_str("k6's thresholds failed: see loadtest/k6.log in the state directory\n");
    }
    out
}

/// The measured figures as an abstract spec: a phase that extends it
/// plans with them (the file extends what the phase extended).
fn calibration_yaml(phase: &PlannedPhase, r: &LoadReport, args: &Args) -> String {
    let c = &r.calibration;
    let mut out = format!(
        "# Measured by `scaleplan loadtest {} --users {} --duration {}` on phase {}:\n# {} users, {:.1} requests/s, {:.2} app cores. Make a phase extend this\n# file to plan with these figures.\nabstract: true\n",
        args.name,
        args.users,
        args.duration,
        phase.name(),
        figure(Some(r.users)),
        r.requests_per_sec,
        r.app_cores_used
    );
    if let Some(parent) = &phase.spec().extends {
        out.push_str(&format!("extends: {parent}\n"));
    }
    let round = |x: f64, places: i32| {
        let f = 10f64.powi(places);
        (x * f).round() / f
    };
    let mut workload = Vec::new();
    if let Some(q) = c.db_queries_per_request {
        workload.push(format!("  db_queries_per_request: {}", round(q, 2)));
    }
    if let Some(x) = c.read_ratio {
        workload.push(format!("  read_ratio: {}", round(x, 3)));
    }
    if let Some(x) = c.db_query_ms.filter(|x| *x > 0.0) {
        workload.push(format!("  db_query_ms: {}", round(x, 3).max(0.001)));
    }
    if let Some(x) = c.redis_ops_per_request {
        workload.push(format!("  redis_ops_per_request: {}", round(x, 2)));
    }
    if !workload.is_empty() {
        out.push_str("workload:\n");
        out.push_str(&workload.join("\n"));
        out.push('\n');
    }
    if let Some(x) = c.requests_per_core_per_sec {
        out.push_str(&format!(
            "app:\n  requests_per_core_per_sec: {}\n",
            round(x, 0).max(1.0)
        ));
    }
    out
}
