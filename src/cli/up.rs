//! `scaleplan up`: a phase's local target as processes (--native), or its
//! Compose target through docker compose.

use super::args::{EXIT_ERROR, EXIT_OK, Format, PhasesDir, Templates};
use super::session::{self, Request};
use crate::native::write_private;
use crate::plan::PlannedPhase;

use crate::plan::layout::TargetFile;
use crate::plan::target::Target;
use crate::render::Renderer;
use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
    /// Run the local target as processes from the installed binaries.
    #[arg(long)]
    native: bool,
    /// Where data, logs, secrets and the process record live.
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    state: PathBuf,
    /// First port of the local target (default: the spec's targets.local.base_port).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1024..=40000))]
    base_port: Option<u16>,
    /// With --native: also run Prometheus and the exporters (Debian's
    /// prometheus and exporter packages, and the PgBouncer exporter).
    #[arg(long, requires = "native")]
    monitoring: bool,
    /// With --native: run the data tier only, not the app's replicas and
    /// their edge (which run when the spec sets targets.local.app).
    #[arg(long, requires = "native")]
    no_app: bool,
    /// With --native: let this PostgreSQL replica delete its data and
    /// clone the primary when the primary is another cluster than the one
    /// it holds (it refuses otherwise). Repeatable.
    #[arg(long, value_name = "NODE", requires = "native")]
    reseed: Vec<String>,
    /// With --native: initialise an empty primary where the deployment's
    /// primary has no data directory any more (refused otherwise).
    #[arg(long, requires = "native")]
    reinit_primary: bool,
    /// Seconds each component may take to become healthy.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    templates: Templates,
    /// The phase to start.
    name: String,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let req = Request {
        names: std::slice::from_ref(&args.name),
        only_selected: true,
        plan: crate::plan::Options {
            base_port: args.base_port,
            // A deployment whose replica was promoted keeps it the primary.
            writer: if args.native {
                crate::native::State::load(&args.state)?.and_then(|s| s.plan_options().writer)
            } else {
                super::compose::Record::load(&args.state)?
                    .plan_options()
                    .writer
            },
        },
        ..Request::all(&args.phases.dir)
    };
    let loaded = match session::load(format, &req)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let phase = loaded.one();
    if !session::keeps_writer(phase, req.plan.writer) {
        return Ok(EXIT_ERROR);
    }
    let renderer = Renderer::new(args.templates.dir.as_deref())?;
    if args.native {
        // The deployment this one continues: the phase the state directory
        // ran last, as this phases directory plans it.
        let previous = crate::native::State::load(&args.state)?
            .and_then(|s| loaded.planned.get(&s.phase).map(|p| p.name().to_owned()));
        let opts = crate::native::UpOptions {
            state_dir: &args.state,
            timeout: std::time::Duration::from_secs(args.timeout),
            previous: previous
                .as_deref()
                .and_then(|name| loaded.planned.get(name)),
            monitoring: args.monitoring,
            app: !args.no_app,
            reseed: &args.reseed,
            reinit_primary: args.reinit_primary,
        };
        crate::native::up(phase, &renderer, &opts)?;
        Ok(EXIT_OK)
    } else {
        compose_up(phase, &renderer, &args.state)
    }
}

/// `up` without --native: the compose target through `docker compose`,
/// when a Docker engine answers.
fn compose_up(phase: &PlannedPhase, renderer: &Renderer, state: &Path) -> anyhow::Result<i32> {
    let engine = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(std::process::Stdio::null())
        .output();
    let answers = matches!(&engine, Ok(out) if out.status.success());
    if !answers {
        let why = match &engine {
            Err(e) => format!("docker cannot be run ({e})"),
            Ok(out) => String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
        };
        eprintln!(
            "error: no Docker engine answers: {why}
  help: run `scaleplan up {} --native` to start the phase as local processes from the installed PostgreSQL, PgBouncer and Redis",
            phase.name()
        );
        return Ok(EXIT_ERROR);
    }
    let project = super::compose::Project::write(phase, renderer, state)?;
    // --build: images built from Debian's packages are built when missing
    // and rebuilt from cache when their Dockerfile changed (a no-op for
    // pulled images).
    let mut cmd = project.command(&["up", "--detach", "--wait", "--build"]);
    cmd.stdin(std::process::Stdio::inherit());
    let status = cmd.status().context("running docker compose")?;
    if status.success() {
        host_contract(phase, &project.dir, &project.secrets, &project.file)?;
    }
    Ok(if status.success() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// Where an app on this machine finds the deployment: the filled-in
/// contract on the published ports (a standalone Redis), or the way to run
/// it inside the project (Sentinel and Cluster announce addresses on the
/// project's network).
fn host_contract(
    phase: &PlannedPhase,
    project_dir: &Path,
    secrets: &crate::native::Secrets,
    compose: &Path,
) -> anyhow::Result<()> {
    let host_env = project_dir.join(TargetFile::HostAppEnv.rel());
    crate::say!(
        "phase {} is up (Compose project {}).",
        phase.name(),
        phase.topology(Target::Compose).project
    );
    if host_env.exists() {
        let text = std::fs::read_to_string(&host_env)
            .with_context(|| format!("reading {}", host_env.display()))?;
        write_private(&host_env, &secrets.fill(&text))?;
        crate::say!(
            "An app on this machine: the contract on 127.0.0.1's published ports, with the secrets: {}",
            host_env.display()
        );
    } else {
        crate::say!(
            "An app on this machine cannot follow {} Redis: its nodes announce addresses on the project's network. Run the app inside the project, e.g.:\n  docker compose -f {} run --rm --no-deps -v \"$PWD:/src\" -w /src --entrypoint npm app run start:dev",
            phase.topology(Target::Compose).redis.mode().as_str(),
            compose.display()
        );
    }
    Ok(())
}
