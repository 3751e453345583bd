//! The proxy in front of PostgreSQL (HAProxy) in a bring-up, and the app's
//! connection contract with the real values, which the app loads.

use super::bringup::Bringup;
use super::probe;
use super::procs::Launch;
use super::secrets::write_private;
use crate::plan::layout::{APP_ENV, TargetFile};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Instant;

impl Bringup {
    /// HAProxy from the generated haproxy.cfg, awaited until every backend
    /// it balances over (each PgBouncer, each replica) is up.
    pub fn proxy(&mut self) -> anyhow::Result<()> {
        let since = Instant::now();
        let proxy = self.topo.proxy.clone();
        if self.keep_running(&proxy.name) {
            return Ok(());
        }
        let launch = Launch::new(&self.tools.haproxy)
            // Master-worker, in the foreground: the recorded pid is the
            // master's, which reloads its configuration on SIGUSR2 while
            // the old worker finishes the connections it holds.
            .arg("-W")
            .arg("-db")
            .arg("-f")
            .arg(self.config.join(TargetFile::Haproxy.rel()));
        self.spawn(launch, &proxy.name, "haproxy", proxy.write.port)?;
        self.await_proxy(since)
    }

    /// Waits until the proxy routes to exactly the backends this phase
    /// has, each whose server runs healthy: writes and reads each reach
    /// every PgBouncer, reads also every replica. A replica that is not
    /// running (a lost primary `promote` left out until it is reseeded)
    /// stays listed, and down.
    pub fn await_proxy(&self, since: Instant) -> anyhow::Result<()> {
        let replicas = &self.topo.postgres.replicas;
        let total = 2 * self.topo.pgbouncer.instances.len() + replicas.len();
        let stopped = replicas
            .iter()
            .filter(|r| {
                !self
                    .state
                    .processes
                    .iter()
                    .any(|p| p.name == r.name && p.alive())
            })
            .count();
        let servers = total - stopped;
        let stats = self.topo.proxy.stats.port;
        self.await_ready(
            &self.topo.proxy.name,
            &format!("routing to {servers} healthy backends"),
            since,
            || {
                let (up, listed) = probe::proxy_backends(stats)?;
                (up == servers && listed == total).then_some(())
            },
        )
    }

    /// The proxy rereads its configuration (SIGUSR2 to the master): new
    /// connections follow the new backends at once.
    pub fn reload_proxy(&self) -> anyhow::Result<()> {
        let since = Instant::now();
        let name = &self.topo.proxy.name;
        // A file HAProxy would refuse leaves the old process serving and
        // only a line in its log: check it first.
        Launch::new(&self.tools.haproxy)
            .arg("-c")
            .arg("-q")
            .arg("-f")
            .arg(self.config.join(TargetFile::Haproxy.rel()))
            .run(&self.state_dir, "checking haproxy.cfg")?;
        let proc = self
            .state
            .processes
            .iter()
            .find(|p| &p.name == name && p.alive())
            .with_context(|| format!("{name} is not running"))?;
        proc.signal("USR2");
        self.await_proxy(since)
    }

    /// `<state>/app.env`: the contract the local target renders, with the
    /// secrets filled in; readable by its owner only.
    pub fn app_env(&self) -> anyhow::Result<PathBuf> {
        let template = self.config.join(TargetFile::AppEnv.rel());
        let text = std::fs::read_to_string(&template)
            .with_context(|| format!("reading {}", template.display()))?;
        let filled = self.secrets.fill(&text);
        // Written beside and renamed into place: an app that rereads the
        // file sees the old contract or the new one, never half of one.
        let path = self.state_dir.join(APP_ENV);
        let next = self.state_dir.join(format!("{APP_ENV}.next"));
        write_private(&next, &filled)?;
        std::fs::rename(&next, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
