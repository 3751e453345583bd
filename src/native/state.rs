//! state.json: the record of a bring-up, which `down`, `status` and later
//! bring-ups of the same state directory read.

use super::procs::Proc;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The default state directory, relative to where scaleplan runs.
pub const DEFAULT_STATE: &str = ".scaleplan/state";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The phase that runs (or ran last) in this state directory: the
    /// deployment's current size.
    pub phase: String,
    /// Its rollout order, which a later bring-up compares with its own.
    #[serde(default)]
    pub order: u32,
    pub base_port: u16,
    /// In start order; `down` stops them in reverse.
    pub processes: Vec<Proc>,
    /// The deployment runs Prometheus and the exporters (`up
    /// --monitoring`): a migration starts them again for the new phase.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitoring: bool,
    /// The deployment runs the app's replicas and the edge (`up --native`
    /// of a phase with `targets.local.app`, without `--no-app`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub app: bool,
    /// The PostgreSQL cluster the primary holds (its system identifier),
    /// once it has run: a primary whose data directory is gone is not
    /// initialised anew in its place unless asked (`up --reinit-primary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_cluster: Option<String>,
    /// The PostgreSQL node that is the primary when it is not the spec's
    /// postgres-primary: a replica `scaleplan promote` made the writer.
    /// Every later plan of this deployment puts the primary there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_writer: Option<String>,
    /// A `promote` under way: the standby is promoted and recorded as the
    /// writer, and the rest of the deployment has not all followed it yet.
    /// `promote` finishes it; `up` and `migrate` wait for that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoting: Option<Promoting>,
    /// A `migrate` under way: the phase moves from `phase` to `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,
}

/// Where a migration between two phases stands: steps before `step` are
/// done and checked; `step` is running, or failed and runs again when
/// `migrate` resumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub from: String,
    pub to: String,
    /// From 1.
    pub step: usize,
    pub total: usize,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promoting {
    /// The primary that was lost.
    pub lost: String,
    /// The WAL position the promoted standby had received.
    pub received_lsn: String,
}

impl Migration {
    pub fn describe(&self) -> String {
        format!(
            "migrating {} -> {}: step {} of {} ({})",
            self.from, self.to, self.step, self.total, self.title
        )
    }
}

impl State {
    pub fn path(dir: &Path) -> std::path::PathBuf {
        dir.join("state.json")
    }

    pub fn load(dir: &Path) -> anyhow::Result<Option<State>> {
        let path = State::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        save_json(&State::path(dir), self)
    }

    /// How this deployment's phases are planned: on its ports, with its
    /// primary where a promotion put it.
    pub fn plan_options(&self) -> crate::plan::Options {
        crate::plan::Options::of_deployment(Some(self.base_port), self.postgres_writer.as_deref())
    }

    /// The deployment in `dir`, which must run `phase` with no migration
    /// under way: what `backup`, `restore` and `promote` act on.
    pub fn of_phase(dir: &Path, phase: &str) -> anyhow::Result<State> {
        let state = State::load(dir)?.with_context(|| {
            format!(
                "{} holds no deployment (no state.json)\n  help: scaleplan up {phase} --native --state {}",
                dir.display(),
                dir.display()
            )
        })?;
        if state.phase != phase {
            anyhow::bail!("{} runs phase {}, not {phase}", dir.display(), state.phase);
        }
        if let Some(m) = &state.migration {
            anyhow::bail!(
                "{} is {}: finish it first (scaleplan migrate)",
                dir.display(),
                m.describe()
            );
        }
        Ok(state)
    }

    pub fn running(&self) -> Vec<&Proc> {
        self.processes.iter().filter(|p| p.alive()).collect()
    }
}

/// A deployment record written whole or not at all: into a file beside
/// `path`, then renamed over it, so a crash never leaves half a record.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
