//! `scaleplan migrate`: a running deployment moved to the next phase
//! while it serves, by carrying out the transition plan's own steps (the
//! list `diff` and out/transitions print) one at a time, each checked
//! before the next starts.
//!
//! The new phase is rendered beside the running one (config.next/); each
//! step installs the part of it that it changes into config/ (which the
//! servers and the generated scripts read) and acts on the servers. The
//! step in progress is recorded in state.json, so a failed or interrupted
//! migration resumes where it stopped, and every step can run again.

mod apply;
mod files;
mod postgres;
pub mod promote;
mod queues;
mod redis;

use super::bringup::Bringup;
use super::procs::Proc;
use super::state::{Migration, State};
use super::tools::Tools;
use crate::plan::PlannedPhase;
use crate::plan::topology::{RedisLayout, Topology};
use crate::render::Renderer;
use crate::transition::{Action, Plan};
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One move between two consecutive phases, with its plan.
pub struct Hop<'a> {
    pub from: &'a PlannedPhase,
    pub to: &'a PlannedPhase,
    pub plan: Plan,
}

pub struct MigrateOptions<'a> {
    pub state_dir: &'a Path,
    /// How long each component may take to become healthy.
    pub timeout: Duration,
    /// The command that resumes this migration, for the failure message.
    pub resume: String,
}

/// What a step did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// Carried out, and this was checked.
    Done(String),
    /// Not on this target: why.
    NotHere(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub step: usize,
    pub title: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct HopReport {
    pub from: String,
    pub to: String,
    /// Steps already done by an earlier run of `migrate` (resumed after).
    pub resumed_at: usize,
    pub steps: Vec<StepReport>,
    pub seconds: f64,
}

/// Runs each hop in turn; the first one resumes a migration the state
/// directory records.
pub fn migrate(
    hops: &[Hop],
    renderer: &Renderer,
    opts: &MigrateOptions,
) -> anyhow::Result<Vec<HopReport>> {
    let tools = Tools::find()?;
    let state_dir = opts
        .state_dir
        .canonicalize()
        .with_context(|| format!("{}", opts.state_dir.display()))?;
    let mut reports = Vec::new();
    for hop in hops {
        let state = State::load(&state_dir)?
            .with_context(|| format!("{} holds no deployment", state_dir.display()))?;
        if state.promoting.is_some() {
            bail!(
                "a promotion of {} is under way: finish it first with `scaleplan promote {}`",
                state_dir.display(),
                state.phase
            );
        }
        // The promoted primary must be the primary of every phase planned.
        if let Some(writer) = &state.postgres_writer {
            for p in [hop.from, hop.to] {
                if &p.local.postgres.primary.name != writer {
                    bail!(
                        "{writer} is this deployment's primary (promoted), and phase {} has no such node: a phase with at least as many replicas keeps it",
                        p.name()
                    );
                }
            }
        }
        reports.push(run_hop(hop, renderer, opts, &tools, &state_dir, state)?);
    }
    Ok(reports)
}

/// Where the steps read and write: the running deployment, as a bring-up
/// of the new phase that keeps every process already running, with the
/// old phase's topology for what goes away.
pub struct Migrator<'a> {
    pub b: Bringup,
    pub before: &'a Topology,
    /// The new phase's rendered local target (config.next/local).
    pub next: PathBuf,
    pub from: &'a str,
    /// The app's replicas have taken the new phase's files in this run.
    pub app_rolled: bool,
    /// The replicas started on the current contract in this run.
    pub app_fresh: BTreeSet<String>,
}

fn run_hop(
    hop: &Hop,
    renderer: &Renderer,
    opts: &MigrateOptions,
    tools: &Tools,
    state_dir: &Path,
    mut state: State,
) -> anyhow::Result<HopReport> {
    let (from, to) = (hop.from.name(), hop.to.name());
    let steps = &hop.plan.steps;
    let resumed_at = match &state.migration {
        Some(m) if m.from == from && m.to == to => m.step - 1,
        Some(m) => bail!(
            "{} is {}, not {from} -> {to}",
            state_dir.display(),
            m.describe()
        ),
        None => 0,
    };
    let next = state_dir.join("config.next");
    super::up::render_local(hop.to, renderer, &next)?;
    state.processes.retain(Proc::alive);
    let mut m = Migrator {
        b: Bringup::over_running(
            tools.clone(),
            hop.to.local.clone(),
            state_dir,
            state,
            opts.timeout,
        )?,
        before: &hop.from.local,
        next: next.join("local"),
        from,
        app_rolled: false,
        app_fresh: BTreeSet::new(),
    };
    if m.b.state.app {
        m.b.app = super::app_launch::AppLaunch::of(hop.to)?;
        if m.b.app.is_none() {
            bail!(
                "{} runs the app, and {to} does not say how (targets.local.app): run `scaleplan down` and `up --native --no-app {to}`",
                state_dir.display()
            );
        }
    }
    // Monitoring pauses for the move (its exporters hold sessions that a
    // drain would wait out) and starts again from the new phase's files.
    m.b.stop_monitoring()?;
    let started = Instant::now();
    match resumed_at {
        0 => crate::say!(
            "migrating {} from {from} to {to}: {} steps",
            state_dir.display(),
            steps.len()
        ),
        done => crate::say!(
            "resuming the migration of {} from {from} to {to} at step {} of {}",
            state_dir.display(),
            done + 1,
            steps.len()
        ),
    }
    let mut reports = Vec::new();
    for (i, step) in steps.iter().enumerate().skip(resumed_at) {
        m.b.state.migration = Some(Migration {
            from: from.to_owned(),
            to: to.to_owned(),
            step: i + 1,
            total: steps.len(),
            title: step.title.clone(),
        });
        m.b.state.save(state_dir)?;
        crate::say!("[{}/{}] {}", i + 1, steps.len(), step.title);
        let since = Instant::now();
        let outcome = m.apply(&step.action).map_err(|e| {
            let done = match i {
                0 => "none of its steps".to_owned(),
                1 => "step 1 is done and checked".to_owned(),
                n => format!("steps 1-{n} are done and checked"),
            };
            anyhow::anyhow!(
                "step {} of {} ({}) failed: {e:#}\n  the deployment runs {from} on its way to {to}: {done}\n  next: fix the cause, then run `{}` to resume at step {}",
                i + 1,
                steps.len(),
                step.title,
                opts.resume,
                i + 1
            )
        })?;
        let seconds = since.elapsed().as_secs_f64();
        match &outcome {
            Outcome::Done(checked) => crate::say!("      ok in {seconds:.1} s: {checked}"),
            Outcome::NotHere(why) => crate::say!("      not on this target: {why}"),
        }
        reports.push(StepReport {
            step: i + 1,
            title: step.title.clone(),
            outcome,
            seconds,
        });
    }
    m.finish(hop.to)?;
    let seconds = started.elapsed().as_secs_f64();
    crate::say!(
        "{} runs {to} (from {from} in {seconds:.1} s)",
        state_dir.display()
    );
    Ok(HopReport {
        from: from.to_owned(),
        to: to.to_owned(),
        resumed_at,
        steps: reports,
        seconds,
    })
}

impl Migrator<'_> {
    fn password(&self, secret: crate::plan::identity::Secret) -> String {
        self.b.secrets.get(secret).to_owned()
    }

    /// The record of a running process of this deployment.
    fn process(&self, name: &str) -> anyhow::Result<Proc> {
        self.b
            .state
            .processes
            .iter()
            .find(|p| p.name == name && p.alive())
            .cloned()
            .with_context(|| format!("{name} is not running"))
    }

    /// Drops a stopped process from the record and keeps its directory
    /// (data, logs stay in logs/) under retired/<old phase>/.
    fn retire(&mut self, name: &str) -> anyhow::Result<()> {
        self.b.state.processes.retain(|p| p.name != name);
        self.b.running.retain(|p| p.name != name);
        self.b.state.save(&self.b.state_dir)?;
        let dir = self.b.state_dir.join(name);
        if dir.is_dir() {
            let to = self.b.state_dir.join("retired").join(self.from);
            std::fs::create_dir_all(&to)?;
            let target = to.join(name);
            if target.exists() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::rename(&dir, &target)
                .with_context(|| format!("retiring {}", dir.display()))?;
        }
        Ok(())
    }

    /// config.next/ becomes config/ whole. Renames only, so an
    /// interruption leaves config/ or config.old/ whole (and config.next/
    /// is rendered again on the next run).
    fn swap_config(&self) -> anyhow::Result<()> {
        let dir = &self.b.state_dir;
        let (config, next, old) = (
            dir.join("config"),
            dir.join("config.next"),
            dir.join("config.old"),
        );
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        if config.exists() {
            std::fs::rename(&config, &old)?;
        }
        std::fs::rename(&next, &config).context("moving config.next into place")?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        Ok(())
    }

    /// After the last step: the deployment runs exactly the new phase's
    /// processes, config/ becomes the new rendering whole, and the record
    /// names the new phase.
    fn finish(&mut self, to: &PlannedPhase) -> anyhow::Result<()> {
        let expected = expected_processes(&self.b.topo);
        let running: BTreeSet<String> = self
            .b
            .state
            .processes
            .iter()
            .filter(|p| p.alive() && p.kind != crate::native::monitoring::KIND)
            .map(|p| p.name.clone())
            .collect();
        let expected = if self.b.app.is_some() {
            let mut e = expected;
            e.extend((0..self.b.topo.app.endpoints.len()).map(super::app_launch::replica_name));
            e.insert(super::app::EDGE.to_owned());
            e
        } else {
            expected
        };
        if running != expected {
            let extra: Vec<&String> = running.difference(&expected).collect();
            let missing: Vec<&String> = expected.difference(&running).collect();
            bail!(
                "after the last step the deployment does not run {}'s processes: extra {extra:?}, missing {missing:?}",
                to.name()
            );
        }
        self.swap_config()?;
        let dir = self.b.state_dir.clone();
        self.b.app_env()?;
        // A phase change that none of the steps brought to the app (its
        // scaling.json, the edge) reaches it now, one replica at a time.
        if self.b.app.is_some() && !self.app_rolled {
            let root = self.b.state_dir.join("config");
            self.b.roll_app(&root, &mut BTreeSet::new(), true)?;
        }
        // Monitoring, where it ran, watches the new phase's nodes with the
        // new phase's model: started again from the new files.
        if self.b.state.monitoring {
            self.b.monitoring()?;
        }
        let state = &mut self.b.state;
        state.processes.retain(Proc::alive);
        state.phase = to.name().to_owned();
        state.order = to.spec().order;
        state.migration = None;
        state.save(&dir)
    }
}

/// The process names a fresh `up` of this topology runs.
pub fn expected_processes(t: &Topology) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    names.insert(t.postgres.primary.name.clone());
    names.extend(t.postgres.replicas.iter().map(|n| n.name.clone()));
    names.extend(t.pgbouncer.instances.iter().map(|n| n.name.clone()));
    names.insert(t.proxy.name.clone());
    names.extend(t.redis.data_nodes().iter().map(|n| n.name.clone()));
    if let RedisLayout::Sentinel { sentinels, .. } = &t.redis {
        names.extend(sentinels.iter().map(|n| n.name.clone()));
    }
    names.extend(t.queue_redis.iter().map(|q| q.node.name.clone()));
    names
}

/// The steps `migrate` refuses to start with: changes of the local target
/// it does not carry out.
pub fn refused(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Manual { reason } => Some(format!("{} ({reason})", s.title)),
            _ => None,
        })
        .collect()
}
