//! `scaleplan up`: a phase's local target as processes (--native), or its
//! Compose target through docker compose.

use super::args::{EXIT_ERROR, EXIT_OK, Format, PhasesDir, Templates};
use super::session::{self, Request};
use crate::plan::PlannedPhase;
use crate::plan::identity::GRAFANA_ADMIN_VAR;
use crate::plan::layout::TargetFile;
use crate::plan::target::Target;
use crate::render::Renderer;
use crate::render::artifacts::{self, Artifacts};
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
        },
        ..Request::all(&args.phases.dir)
    };
    let loaded = match session::load(format, &req)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let phase = loaded.one();
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
    let mut files = Artifacts::default();
    renderer.render_target(phase, Target::Compose, &mut files)?;
    let dir = state.join("compose-target");
    artifacts::write_phase(&dir, phase.name(), &files)?;
    let compose = dir
        .join(phase.name())
        .join(TargetFile::ComposeFile.of(Target::Compose));
    // The same secrets as a native bring-up: from the environment, or
    // generated once and kept in the state directory, never in out/.
    let secrets = crate::native::Secrets::load_or_create(state)?;
    let mut cmd = std::process::Command::new("docker");
    // --build: images built from Debian's packages are built when missing
    // and rebuilt from cache when their Dockerfile changed (a no-op for
    // pulled images).
    cmd.args(["compose", "-f"])
        .arg(&compose)
        .args(["up", "--detach", "--wait", "--build"]);
    for (key, value) in secrets.env() {
        cmd.env(key, value);
    }
    // Grafana (profile `dashboards`) is not started by default, but the
    // file names its password: one kept beside the others when the
    // environment gives none.
    if std::env::var_os(GRAFANA_ADMIN_VAR).is_none() {
        cmd.env(GRAFANA_ADMIN_VAR, secrets.kept(state, GRAFANA_ADMIN_VAR)?);
    }
    let status = cmd.status().context("running docker compose")?;
    Ok(if status.success() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
