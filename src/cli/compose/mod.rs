//! A phase's Compose target as a running deployment: the files `up`
//! writes into the state directory (compose-target/<phase>/), the secrets
//! Compose reads from `.env` beside them, the record of what a deployment
//! changed about its plan (a promoted writer), and `docker compose`
//! commands on it. `up` (without --native) and `promote` share it.

pub mod promote;

use crate::native::{Promoting, Secrets, write_private};
use crate::plan::PlannedPhase;
use crate::plan::identity::GRAFANA_ADMIN_VAR;
use crate::plan::layout::TargetFile;
use crate::plan::target::Target;
use crate::render::Renderer;
use crate::render::artifacts::{self, Artifacts};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Where `up` writes the Compose files, under the state directory.
const TARGET_DIR: &str = "compose-target";
/// The record of a Compose deployment, beside its files.
const RECORD: &str = "deployment.json";
/// The longest one `docker compose` command of a promotion may take (a
/// recreated service waited for until healthy included): an engine that
/// stops answering fails the command instead of hanging the promotion.
const COMMAND_LIMIT: Duration = Duration::from_secs(600);
/// The longest one query through `docker compose exec ... psql` may take.
const PSQL_LIMIT: Duration = Duration::from_secs(60);

/// What a Compose deployment changed about its plan: the PostgreSQL node
/// that is the primary after a `promote`. `up` plans with it, so a second
/// `up` never makes the lost primary the writer again.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_writer: Option<String>,
    /// A `promote` under way (as on the local target): the standby is
    /// promoted and recorded as the writer, and the rest of the deployment
    /// has not all followed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoting: Option<Promoting>,
}

impl Record {
    pub fn load(state: &Path) -> anyhow::Result<Record> {
        let path = state.join(TARGET_DIR).join(RECORD);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, state: &Path) -> anyhow::Result<()> {
        let dir = state.join(TARGET_DIR);
        std::fs::create_dir_all(&dir)?;
        crate::native::save_json(&dir.join(RECORD), self)
    }

    /// The plan options this deployment needs: its writer.
    pub fn plan_options(&self) -> crate::plan::Options {
        crate::plan::Options::of_deployment(None, self.postgres_writer.as_deref())
    }
}

/// One phase's Compose files in a state directory, with the environment
/// `docker compose` needs for them.
pub struct Project {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub secrets: Secrets,
}

impl Project {
    /// The phase's Compose files rendered into the state directory (each
    /// file rewritten in place, so running containers' mounts see it), with
    /// `.env` beside them: the operator's
    /// own `docker compose ...` there (a transition's steps, logs, exec)
    /// finds the secrets without exporting them. Owner-only.
    pub fn write(
        phase: &PlannedPhase,
        renderer: &Renderer,
        state: &Path,
    ) -> anyhow::Result<Project> {
        let mut files = Artifacts::default();
        renderer.render_target(phase, Target::Compose, &mut files)?;
        let root = state.join(TARGET_DIR);
        artifacts::update_phase(&root, phase.name(), &files)?;
        let file = root
            .join(phase.name())
            .join(TargetFile::ComposeFile.of(Target::Compose));
        let dir = file
            .parent()
            .context("the Compose file's directory")?
            .to_owned();
        // The same secrets as a native bring-up: from the environment, or
        // generated once and kept in the state directory, never in out/.
        let secrets = Secrets::load_or_create(state)?;
        let mut env: Vec<(String, String)> = secrets
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // Grafana (profile `dashboards`) is not started by default, but the
        // file names its password: one kept beside the others when the
        // environment gives none.
        let grafana = match std::env::var(GRAFANA_ADMIN_VAR) {
            Ok(v) => v,
            Err(_) => secrets.kept(state, GRAFANA_ADMIN_VAR)?,
        };
        env.push((GRAFANA_ADMIN_VAR.to_owned(), grafana));
        let dotenv: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write_private(&dir.join(".env"), &dotenv)?;
        Ok(Project {
            file,
            dir,
            env,
            secrets,
        })
    }

    /// `docker compose -f FILE ARGS...` with the secrets in its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(["compose", "-f"])
            .arg(&self.file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    /// A command run to its end, its output captured, within
    /// COMMAND_LIMIT.
    pub fn output(&self, args: &[&str]) -> anyhow::Result<Output> {
        bounded(self.command(args), args, COMMAND_LIMIT)
    }

    /// A command whose failure stops the caller, its output shown then.
    pub fn must(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            bail!(
                "docker compose {} failed:\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The services whose container runs.
    pub fn running(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .must(&["ps", "--status", "running", "--services"])?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// One query through psql inside a PostgreSQL service's container, as
    /// the superuser over its local socket: its unaligned rows, or None
    /// when it does not answer.
    pub fn psql(&self, service: &str, sql: &str) -> Option<String> {
        let args = [
            "exec", "-T", service, "psql", "-X", "-A", "-t", "-q", "-U", "postgres", "-d",
            "postgres", "-c", sql,
        ];
        let out = bounded(self.command(&args), &args, PSQL_LIMIT).ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// `cmd` (a `docker compose` command) run within `limit`, its output
/// captured; killed and an error past it.
pub fn bounded(cmd: Command, args: &[&str], limit: Duration) -> anyhow::Result<Output> {
    crate::native::run_within(cmd, limit).with_context(|| {
        format!(
            "docker compose {} did not finish within {} s (or could not start)",
            args.join(" "),
            limit.as_secs()
        )
    })
}
