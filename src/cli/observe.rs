//! `scaleplan observe`: each resource's live utilisation on the running
//! local deployment against its phase's capacity model, the bottleneck,
//! and whether (and, watching, when) to move to the next phase.

use super::args::{Deployment, EXIT_ERROR, EXIT_OK, Format};
use super::session;
use crate::native::observe::{Observation, Observer, time_to_exhaustion};
use crate::render::format::thousands;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: Deployment,
    /// Seconds over which rates are measured.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    window: u64,
    /// Keep observing, a reading every SECONDS (text: a table each time;
    /// json: one document per line), with the trend of the bottleneck.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    watch: Option<u64>,
    /// With --watch: stop after this many readings.
    #[arg(long, value_name = "N", requires = "watch")]
    count: Option<u32>,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let (state, loaded, name) = match session::on_deployment(format, &args.at, None)? {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    if state.processes.is_empty() {
        eprintln!(
            "error: nothing runs in {} (phase {} is stopped)\n  help: scaleplan up {} --native --state {}",
            args.at.state.display(),
            state.phase,
            state.phase,
            args.at.state.display()
        );
        return Ok(EXIT_ERROR);
    }
    let Some(phase) = loaded.planned.get(&name) else {
        return Ok(EXIT_ERROR);
    };
    let observer = Observer::new(&args.at.state, phase)?;
    let window = Duration::from_secs(args.window);
    let started = Instant::now();
    let mut history: Vec<(f64, f64)> = Vec::new();
    let mut taken = 0;
    loop {
        let mut o = observer.observe(phase, window);
        if let Some(u) = o
            .bottleneck
            .and_then(|b| o.readings.iter().find(|r| r.resource == b))
            .and_then(|r| r.utilisation)
        {
            history.push((started.elapsed().as_secs_f64(), u));
            o.advice.exhausted_in_seconds = time_to_exhaustion(&history);
        }
        match format {
            Format::Json if args.watch.is_some() => {
                crate::output::data(&format!("{}\n", serde_json::to_string(&o)?));
            }
            Format::Json => session::print_json(&o)?,
            _ => crate::say!("{}", table(&o)),
        }
        taken += 1;
        let Some(every) = args.watch else { break };
        if args.count.is_some_and(|n| taken >= n) {
            break;
        }
        std::thread::sleep(Duration::from_secs(every).saturating_sub(window));
    }
    Ok(EXIT_OK)
}

fn bar(share: f64) -> String {
    const WIDTH: usize = 20;
    let filled = ((share.clamp(0.0, 1.0)) * WIDTH as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(WIDTH - filled))
}

fn amount(v: f64, unit: &str) -> String {
    if unit == "bytes" {
        format!("{} MB", thousands((v / 1_048_576.0).round() as u64))
    } else {
        format!("{} {unit}", thousands(v.round() as u64))
    }
}

fn table(o: &Observation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "phase {}: live load over {:.1} s against the capacity model",
        o.phase, o.window_seconds
    );
    let _ = writeln!(
        out,
        "  {:<19} {:>34}  utilisation",
        "resource", "use / modelled"
    );
    for r in &o.readings {
        let mark = if Some(r.resource) == o.bottleneck {
            "*"
        } else {
            " "
        };
        match (r.used, r.utilisation) {
            (Some(used), Some(u)) => {
                let _ = writeln!(
                    out,
                    "{mark} {:<19} {:>34}  {} {:>4.0}%",
                    r.label,
                    format!(
                        "{} / {}",
                        amount(used, r.unit).trim_end_matches(&format!(" {}", r.unit)),
                        amount(r.supply, r.unit)
                    ),
                    bar(u),
                    u * 100.0
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  {:<19} {:>34}  not measured: {}",
                    r.label, "-", r.source
                );
            }
        }
    }
    if let Some(b) = o.bottleneck {
        let _ = writeln!(out, "bottleneck now: {}", b.label());
    }
    let _ = write!(out, "advice: {}", o.advice.message);
    if let Some(t) = o.advice.exhausted_in_seconds {
        let _ = write!(
            out,
            "\n  at this trend the bottleneck is exhausted in about {t:.0} s"
        );
    }
    out
}
