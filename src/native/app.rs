//! The app's replicas and the HTTP edge in front of them, on the local
//! target: each replica runs the spec's command (`targets.local.app`) with
//! the contract's variables and a port of its own; the edge (HAProxy,
//! sessions sticky by cookie, as in Compose) balances over them. A phase
//! change restarts them one at a time, so the others carry the traffic.

use super::app_launch::replica_name;
use super::bringup::Bringup;
use super::probe;
use super::procs::{self, Launch};
use crate::plan::layout::{PhaseFile, TargetFile};
use anyhow::{Context, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kind recorded for an app replica.
pub const KIND: &str = "app";
/// The edge's process name.
pub const EDGE: &str = crate::plan::topology::EDGE;
/// How long a replica has to finish its requests and close its sockets
/// on SIGTERM (the ScalingModule goes unready, waits its drain, closes).
const STOP_GRACE: Duration = Duration::from_secs(20);

impl Bringup {
    /// Where every replica finds the phase's scaling.json: a copy in the
    /// state directory, replaced when the phase changes.
    fn scaling_file(&self) -> PathBuf {
        self.state_dir.join(PhaseFile::Scaling.rel())
    }

    /// Installs `from`'s scaling.json (config/ or config.next/) as the one
    /// the replicas read.
    pub fn install_scaling(&self, config_root: &Path) -> anyhow::Result<()> {
        let from = config_root.join(PhaseFile::Scaling.rel());
        std::fs::copy(&from, self.scaling_file())
            .with_context(|| format!("installing {}", from.display()))?;
        Ok(())
    }

    /// The app's replicas, then the edge; nothing when the phase does not
    /// say how to run the app here.
    pub fn app(&mut self) -> anyhow::Result<()> {
        if self.app.is_none() {
            return Ok(());
        }
        self.app_env()?;
        let root = self
            .config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.install_scaling(&root)?;
        for i in 0..self.topo.app.endpoints.len() {
            self.app_replica(i)?;
        }
        self.edge()
    }

    /// Replica `i`: started (unless it runs) and awaited until its health
    /// path answers.
    pub fn app_replica(&mut self, i: usize) -> anyhow::Result<()> {
        let since = Instant::now();
        let name = replica_name(i);
        if self.keep_running(&name) {
            return Ok(());
        }
        let Some(app) = self.app.clone() else {
            bail!("the phase does not say how to run the app (targets.local.app)");
        };
        let port = self.topo.app.endpoints[i].port;
        let (program, args) = app
            .command
            .split_first()
            .context("targets.local.app.command is empty")?;
        let mut launch = Launch::new(Path::new(program));
        for a in args {
            launch = launch.arg(a);
        }
        for (k, v) in self.contract_vars()? {
            launch = launch.env(&k, &v);
        }
        let scaling = self.scaling_file();
        launch = launch
            .env("PORT", &port.to_string())
            .env("HOST", crate::plan::ports::LOOPBACK)
            .env("SCALEPLAN_SCALING_FILE", &scaling.to_string_lossy());
        let proc = launch.spawn(&app.workdir, &self.log(&name), &name, KIND, port)?;
        self.record(proc)?;
        let path = self.topo.app.health_path.clone();
        self.await_ready(&name, &format!("answering GET {path}"), since, || {
            probe::http_get(port, &path)
                .and_then(|(status, _)| (200..400).contains(&status).then_some(()))
        })
    }

    /// The contract's variables with their values: the filled-in app.env.
    fn contract_vars(&self) -> anyhow::Result<Vec<(String, String)>> {
        let path = self.app_env()?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
            .collect())
    }

    /// The edge from the generated edge.cfg, awaited until it routes to
    /// every replica, each healthy.
    pub fn edge(&mut self) -> anyhow::Result<()> {
        let since = Instant::now();
        if self.keep_running(EDGE) {
            return self.await_edge(since);
        }
        let local = self
            .topo
            .app
            .local
            .clone()
            .context("no local edge planned")?;
        let launch = Launch::new(&self.tools.haproxy)
            .arg("-W")
            .arg("-db")
            .arg("-f")
            .arg(self.config.join(TargetFile::Edge.rel()));
        self.spawn(launch, EDGE, "haproxy", local.edge.port)?;
        self.await_edge(since)
    }

    fn await_edge(&self, since: Instant) -> anyhow::Result<()> {
        let local = self
            .topo
            .app
            .local
            .clone()
            .context("no local edge planned")?;
        let replicas = self.topo.app.endpoints.len();
        self.await_ready(
            EDGE,
            &format!("routing to {replicas} healthy app replicas"),
            since,
            || {
                let (up, total) = probe::proxy_backends(local.edge_stats.port)?;
                (up == replicas && total == replicas).then_some(())
            },
        )
    }

    /// A phase change for the app: each replica the new phase keeps is
    /// restarted in turn with the new contract and scaling.json, the next
    /// one only once the edge routes to it again (the others serve
    /// meanwhile); with `resize`, new ones start, the edge takes the new
    /// list, and replicas the phase drops stop once the edge has let go
    /// of them. Without it (a client switch, before the plan's own scale
    /// step) the count stays.
    ///
    /// `fresh` names the replicas already started on these files in this
    /// migration: they are not restarted again; those this roll starts
    /// join it.
    pub fn roll_app(
        &mut self,
        next_root: &Path,
        fresh: &mut BTreeSet<String>,
        resize: bool,
    ) -> anyhow::Result<String> {
        if self.app.is_none() {
            bail!("the phase does not say how to run the app (targets.local.app)");
        }
        self.install_scaling(next_root)?;
        // What runs now: the highest replica recorded (an earlier roll in
        // this migration may have moved the count, and one may have died).
        let before = self
            .state
            .processes
            .iter()
            .filter(|p| p.kind == KIND)
            .filter_map(|p| p.name.rsplit('-').next()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        let planned = self.topo.app.endpoints.len();
        let after = if resize { planned } else { before.min(planned) };
        let mut restarted = 0;
        for i in 0..after.min(before) {
            let name = replica_name(i);
            if fresh.contains(&name) {
                continue;
            }
            if self.stop_replica(&name) {
                restarted += 1;
            }
            self.app_replica(i)?;
            fresh.insert(name.clone());
            // The edge routes to it again before the next one stops.
            self.await_edge_server(&name)?;
        }
        if !resize {
            return Ok(format!(
                "{restarted} replica(s) restarted one at a time, each routed to again before the next"
            ));
        }
        for i in before..after {
            self.app_replica(i)?;
            fresh.insert(replica_name(i));
        }
        let edge_cfg = TargetFile::Edge.rel();
        let (from, to) = (
            next_root.join("local").join(&edge_cfg),
            self.config.join(&edge_cfg),
        );
        // After the last step config.next/ is config/: nothing to copy
        // (and a copy onto itself would empty the file). A file HAProxy
        // would refuse never replaces the running one.
        if from != to {
            self.check_edge_config(&from)?;
            std::fs::copy(&from, &to).context("installing edge.cfg")?;
        }
        self.reload_edge()?;
        let mut stopped = 0;
        for i in after..before {
            let name = replica_name(i);
            if self.stop_replica(&name) {
                stopped += 1;
            }
            self.state.processes.retain(|p| p.name != name);
        }
        self.state.save(&self.state_dir)?;
        Ok(format!(
            "{restarted} replica(s) restarted one at a time, {} started, {stopped} stopped; the edge routes to {after}, all healthy",
            after.saturating_sub(before)
        ))
    }

    /// Waits until the edge routes to replica `name` again (its check
    /// passed since it restarted).
    fn await_edge_server(&self, name: &str) -> anyhow::Result<()> {
        let Some(local) = self.topo.app.local.clone() else {
            return Ok(());
        };
        let since = Instant::now();
        self.await_ready(EDGE, &format!("routing to {name} again"), since, || {
            probe::proxy_server_up(local.edge_stats.port, name).then_some(())
        })
    }

    fn check_edge_config(&self, file: &Path) -> anyhow::Result<()> {
        Launch::new(&self.tools.haproxy)
            .arg("-c")
            .arg("-q")
            .arg("-f")
            .arg(file)
            .run(&self.state_dir, "checking edge.cfg")?;
        Ok(())
    }

    /// Stops a running replica (SIGTERM: it goes unready, the edge takes
    /// it out, it drains); true when one ran.
    fn stop_replica(&mut self, name: &str) -> bool {
        let found = self
            .state
            .processes
            .iter()
            .find(|p| p.name == name && p.alive())
            .cloned();
        self.running.retain(|r| r.name != name);
        found.is_some_and(|p| {
            procs::stop_with(&p, "TERM", STOP_GRACE);
            true
        })
    }

    /// The edge rereads edge.cfg (SIGUSR2 to its master; the old worker
    /// keeps its open WebSockets until they close).
    fn reload_edge(&mut self) -> anyhow::Result<()> {
        let since = Instant::now();
        self.check_edge_config(&self.config.join(TargetFile::Edge.rel()))?;
        match self
            .state
            .processes
            .iter()
            .find(|p| p.name == EDGE && p.alive())
        {
            Some(p) => p.signal("USR2"),
            None => return self.edge(),
        }
        self.await_edge(since)
    }
}
