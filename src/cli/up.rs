//! `scaleplan up` without --native: the Compose target through docker compose.

use super::{EXIT_ERROR, EXIT_OK};
use crate::artifacts::{self, Artifacts};
use crate::render::Renderer;
use crate::validate::ValidPhase;
use anyhow::Context;
use std::path::Path;

/// `up` without --native: the compose target through `docker compose`,
/// when a Docker engine answers.
pub(super) fn compose_up(
    phase: &ValidPhase,
    renderer: &Renderer,
    state: &Path,
) -> anyhow::Result<i32> {
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
            phase.spec.name
        );
        return Ok(EXIT_ERROR);
    }
    let mut files = Artifacts::default();
    renderer.render_target(phase, crate::render::Layout::Compose, &mut files)?;
    let dir = state.join("compose-target");
    artifacts::write_phase(&dir, phase.spec.name.as_str(), &files)?;
    let compose = dir
        .join(phase.spec.name.as_str())
        .join("compose/docker-compose.yml");
    // The same secrets as a native bring-up: from the environment, or
    // generated once and kept in the state directory, never in out/.
    let secrets = crate::native::Secrets::load_or_create(state)?;
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["compose", "-f"])
        .arg(&compose)
        .args(["up", "--detach", "--wait"]);
    for (key, value) in secrets.env() {
        cmd.env(key, value);
    }
    let status = cmd.status().context("running docker compose")?;
    Ok(if status.success() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
