//! The PostgreSQL side of a migration: standbys cloned and caught up,
//! settings reloaded or restarted into, PgBouncer instances started,
//! reloaded or drained, and the proxy following them.

use super::Migrator;
use crate::native::probe::{self, wait_for};
use crate::native::procs;
use crate::plan::identity::{ADMIN_USER, SUPERUSER, Secret};
use crate::plan::layout::TargetFile;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a statement of a step may take, and a server to stop.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// A PostgreSQL server stopped: fast shutdown, then immediate, then
/// SIGKILL. SIGKILL to the postmaster alone would leave its backends
/// holding the shared memory the next start needs; SIGQUIT stops them.
pub(super) const SHUTDOWN: [(&str, Duration); 2] = [
    ("INT", Duration::from_secs(30)),
    ("QUIT", Duration::from_secs(10)),
];

/// Settings a reload did not take, except those waiting for a restart.
const REFUSED_SETTINGS: &str = "SELECT coalesce(string_agg(f.sourcefile || ':' || f.sourceline || ' ' || f.name || ': ' || f.error, '; '), '') \
     FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name \
     WHERE f.error IS NOT NULL AND NOT coalesce(s.pending_restart, false)";
const REFUSED_HBA: &str = "SELECT coalesce(string_agg(line_number || ': ' || error, '; '), '') \
     FROM pg_hba_file_rules WHERE error IS NOT NULL";
const PENDING_RESTART: &str = "SELECT coalesce(string_agg(name, ', ' ORDER BY name), '') \
     FROM pg_settings WHERE pending_restart";

impl Migrator<'_> {
    /// A query as the superuser, straight to a server.
    pub(super) fn sql(&self, port: u16, sql: &str) -> anyhow::Result<String> {
        let password = self.password(Secret::Postgres);
        probe::psql_within(
            &self.b.tools,
            port,
            (SUPERUSER, &password),
            "postgres",
            sql,
            STEP_LIMIT,
        )
    }

    /// A command on a PgBouncer's admin console.
    fn admin(&self, port: u16, command: &str, limit: Duration) -> anyhow::Result<String> {
        let password = self.password(Secret::PgbouncerAdmin);
        probe::psql_within(
            &self.b.tools,
            port,
            (ADMIN_USER, &password),
            "pgbouncer",
            command,
            limit,
        )
    }

    fn primary_port(&self) -> u16 {
        self.b.topo.postgres.primary.endpoint.port
    }

    /// The PostgreSQL nodes both phases have, primary first: the ones a
    /// reload or restart concerns (new standbys start with the new files,
    /// standbys on their way out keep theirs).
    fn postgres_nodes(&self) -> Vec<(String, u16)> {
        let pg = &self.b.topo.postgres;
        let before: Vec<&str> = self
            .before
            .postgres
            .replicas
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        std::iter::once(&pg.primary)
            .chain(
                pg.replicas
                    .iter()
                    .filter(|r| before.contains(&r.name.as_str())),
            )
            .map(|n| (n.name.clone(), n.endpoint.port))
            .collect()
    }

    fn pgbouncer_nodes(&self) -> Vec<(usize, String, u16)> {
        self.b
            .topo
            .pgbouncer
            .instances
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.name.clone(), n.endpoint.port))
            .collect()
    }

    /// Waits until `check` holds, failing with `what` after the timeout.
    pub(super) fn until(&self, what: &str, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
        wait_for(self.b.timeout, || check().then_some(()))
            .with_context(|| format!("{what} within {} s", self.b.timeout.as_secs()))
    }

    pub fn add_replicas(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        let mut checked = Vec::new();
        for name in nodes {
            let i = self
                .b
                .topo
                .postgres
                .replicas
                .iter()
                .position(|r| &r.name == name)
                .with_context(|| format!("{name} is not a replica of the new phase"))?;
            self.b.postgres_replica(i)?;
            let port = self.b.topo.postgres.replicas[i].endpoint.port;
            let target = self.sql(self.primary_port(), "SELECT pg_current_wal_lsn()")?;
            let caught_up = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
            self.until(&format!("{name} did not replay the primary's WAL"), || {
                self.sql(port, &caught_up).is_ok_and(|t| t == "t")
            })?;
            checked.push(format!("{name} streams and has replayed to {target}"));
        }
        Ok(checked.join("; "))
    }

    /// Every node rereads its files; the reload is seen to happen, and no
    /// setting or pg_hba line may be refused.
    pub fn reload_postgres(&mut self) -> anyhow::Result<String> {
        let nodes = self.postgres_nodes();
        for (name, port) in &nodes {
            self.ensure_running(name)?;
            let before = self.sql(*port, "SELECT pg_conf_load_time()")?;
            self.sql(*port, "SELECT pg_reload_conf()")?;
            let reloaded = format!("SELECT pg_conf_load_time() > '{before}'::timestamptz");
            self.until(&format!("{name} did not reload"), || {
                self.sql(*port, &reloaded).is_ok_and(|t| t == "t")
            })?;
            for query in [REFUSED_SETTINGS, REFUSED_HBA] {
                let refused = self.sql(*port, query)?;
                if !refused.is_empty() {
                    bail!("{name} refused its new files: {refused}");
                }
            }
        }
        Ok(format!(
            "{} nodes reloaded their files and refused nothing",
            nodes.len()
        ))
    }

    /// Starts a node of the new phase that is down (a step cut short
    /// after stopping it): every step that acts on the nodes begins with
    /// them running.
    fn ensure_running(&mut self, name: &str) -> anyhow::Result<()> {
        if self.process(name).is_ok() {
            return Ok(());
        }
        if name == self.b.topo.postgres.primary.name {
            self.b.postgres_primary()
        } else {
            let i = self.replica_index(name)?;
            self.b.postgres_replica(i)
        }
    }

    /// Nodes with settings pending a restart are restarted, in the plan's
    /// order; a node already running with them is left alone.
    pub fn restart_postgres(&mut self, replicas_first: bool) -> anyhow::Result<String> {
        let mut order = self.postgres_nodes();
        let primary = order.remove(0);
        if replicas_first {
            order.push(primary.clone());
        } else {
            order.insert(0, primary.clone());
        }
        let mut checked = Vec::new();
        for (name, port) in order {
            self.ensure_running(&name)?;
            let pending = self.sql(port, PENDING_RESTART)?;
            if pending.is_empty() {
                checked.push(format!("{name} already runs with them"));
                continue;
            }
            if name == primary.0 {
                let held = self.restart_primary()?;
                checked.push(format!(
                    "{name} restarted; PgBouncer held its clients for {held:.1} s"
                ));
            } else {
                let proc = self.process(&name)?;
                procs::stop_in_stages(&proc, &SHUTDOWN);
                let i = self.replica_index(&name)?;
                self.b.postgres_replica(i)?;
                checked.push(format!("{name} restarted and streams"));
            }
            let left = self.sql(port, PENDING_RESTART)?;
            if !left.is_empty() {
                bail!("{name} still waits for a restart for {left}");
            }
        }
        Ok(checked.join("; "))
    }

    fn replica_index(&self, name: &str) -> anyhow::Result<usize> {
        self.b
            .topo
            .postgres
            .replicas
            .iter()
            .position(|r| r.name == name)
            .with_context(|| format!("{name} is not a replica of the new phase"))
    }

    /// The primary's restart, bounded. A CHECKPOINT first, while it
    /// serves, so the shutdown's own is short. Every PgBouncer then waits
    /// for the transactions in flight and holds each new query (PAUSE, all
    /// at once, at most 30 s, else the step fails and resumes them without
    /// restarting anything). The fast shutdown (SIGINT) is given 30 s, an
    /// immediate one (SIGQUIT, whose crash recovery replays the WAL:
    /// nothing committed is lost) 10 s more; the start is given the
    /// bring-up's timeout; then RESUME. Clients see a pause, not an error.
    /// Returns how long queries were held.
    fn restart_primary(&mut self) -> anyhow::Result<f64> {
        let name = self.b.topo.postgres.primary.name.clone();
        self.sql(self.primary_port(), "CHECKPOINT")?;
        let since = Instant::now();
        let bouncers: Vec<u16> = self
            .pgbouncer_nodes()
            .into_iter()
            .filter(|(_, name, _)| self.process(name).is_ok())
            .map(|(_, _, port)| port)
            .collect();
        let me = &*self;
        let paused: Vec<anyhow::Result<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = bouncers
                .iter()
                .map(|port| scope.spawn(move || me.admin(*port, "PAUSE", STEP_LIMIT)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("PAUSE panicked")))
                })
                .collect()
        });
        let mut result = match paused.into_iter().find_map(Result::err) {
            Some(e) => Err(e.context(
                "PgBouncer could not pause (a transaction stayed open for 30 s); the primary was not restarted",
            )),
            None => Ok(()),
        };
        if result.is_ok() {
            result = (|| {
                let proc = self.process(&name)?;
                if let Some(signal) = procs::stop_in_stages(&proc, &SHUTDOWN) {
                    crate::say!("      {name} did not stop on SIGINT within 30 s: {signal}");
                }
                self.b.postgres_primary()
            })();
        }
        // Every instance, paused or pausing: RESUME ends both.
        let mut resumed = Vec::new();
        for port in bouncers {
            match self.admin(port, "RESUME", STEP_LIMIT) {
                Ok(_) => {}
                Err(e) if format!("{e:#}").contains("not paused") => {}
                Err(e) => resumed.push(format!("127.0.0.1:{port}: {e:#}")),
            }
        }
        let held = since.elapsed().as_secs_f64();
        result?;
        if !resumed.is_empty() {
            bail!("PgBouncer did not resume: {}", resumed.join("; "));
        }
        for (name, port) in self.postgres_nodes().into_iter().skip(1) {
            self.until(
                &format!("{name} did not stream from the restarted primary"),
                || {
                    self.sql(
                        port,
                        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                    )
                    .is_ok_and(|n| n == "1")
                },
            )?;
        }
        Ok(held)
    }

    pub fn start_pgbouncers(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        for (i, name, _) in self.pgbouncer_nodes() {
            if nodes.contains(&name) {
                self.b.pgbouncer(i)?;
            }
        }
        self.b.reload_proxy()?;
        Ok(format!(
            "{} accept logins; the proxy balances over {} PgBouncers",
            nodes.join(", "),
            self.b.topo.pgbouncer.instances.len()
        ))
    }

    /// RELOAD takes new pools at once; a new version needs new processes,
    /// one at a time while the proxy sends clients to the others.
    pub fn roll_pgbouncers(&mut self, restart: bool) -> anyhow::Result<String> {
        for (i, name, port) in self.pgbouncer_nodes() {
            if restart {
                // SIGINT: PgBouncer's safe shutdown, after the transactions
                // in flight.
                if let Ok(proc) = self.process(&name) {
                    procs::stop_with(&proc, "INT", STEP_LIMIT);
                }
                self.b.pgbouncer(i)?;
            } else {
                if self.process(&name).is_err() {
                    self.b.pgbouncer(i)?;
                }
                self.admin(port, "RELOAD", STEP_LIMIT)?;
            }
            self.pgbouncer_matches_file(&name, port)?;
        }
        self.b.reload_proxy()?;
        Ok(format!(
            "{} PgBouncers {}; SHOW CONFIG matches each pgbouncer.ini",
            self.b.topo.pgbouncer.instances.len(),
            if restart {
                "restarted one at a time"
            } else {
                "reloaded"
            }
        ))
    }

    /// PgBouncer's read database follows the new replicas (RELOAD), and so
    /// does the proxy.
    pub fn route_reads(&mut self) -> anyhow::Result<String> {
        let alias = self.b.topo.pgbouncer.read_alias.clone();
        let mut route = String::new();
        for (i, name, port) in self.pgbouncer_nodes() {
            if self.process(&name).is_err() {
                self.b.pgbouncer(i)?;
            }
            self.admin(port, "RELOAD", STEP_LIMIT)?;
            self.pgbouncer_matches_file(&name, port)?;
            let file = self.pgbouncer_file(&name)?;
            let want = file
                .databases
                .get(&alias)
                .with_context(|| format!("{name}'s pgbouncer.ini has no {alias}"))?;
            let target = (
                connect_field(want, "host").unwrap_or_default(),
                connect_field(want, "port").unwrap_or_default(),
            );
            let rows = self.admin(port, "SHOW DATABASES", STEP_LIMIT)?;
            let shown = rows
                .lines()
                .map(|l| l.split('|').collect::<Vec<_>>())
                .find(|f| f.first() == Some(&alias.as_str()))
                .map(|f| {
                    (
                        f.get(1).copied().unwrap_or("").to_owned(),
                        f.get(2).copied().unwrap_or("").to_owned(),
                    )
                });
            if shown.as_ref() != Some(&target) {
                bail!(
                    "{name} routes {alias} to {shown:?} after RELOAD, not {}:{}",
                    target.0,
                    target.1
                );
            }
            route = format!("{}:{}", target.0, target.1);
        }
        self.b.reload_proxy()?;
        Ok(format!(
            "every PgBouncer's {alias} reaches {route}; the proxy routes reads to {} replicas",
            self.b.topo.postgres.replicas.len()
        ))
    }

    /// Out of the proxy's rotation, PgBouncer's read connections to them
    /// closed once released, their sessions given time to end; then
    /// stopped, their slots dropped.
    pub fn remove_replicas(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        self.b.reload_proxy()?;
        let alias = self.b.topo.pgbouncer.read_alias.clone();
        for (_, _, port) in self.pgbouncer_nodes() {
            self.admin(port, &format!("RECONNECT {alias}"), STEP_LIMIT)?;
        }
        let mut ended = 0;
        for name in nodes {
            let node = self
                .before
                .postgres
                .replicas
                .iter()
                .find(|r| &r.name == name)
                .with_context(|| format!("{name} is not a replica of {}", self.from))?
                .clone();
            // The app's sessions (through PgBouncer), not scaleplan's own.
            let sessions = format!(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> '{SUPERUSER}'"
            );
            let sessions = sessions.as_str();
            let drained = wait_for(STEP_LIMIT, || {
                (self.sql(node.endpoint.port, sessions).ok()? == "0").then_some(())
            });
            if drained.is_none() {
                ended += self
                    .sql(node.endpoint.port, sessions)
                    .ok()
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0);
            }
            // Already stopped by an earlier run of this step: done.
            if let Ok(proc) = self.process(name) {
                procs::stop_in_stages(&proc, &SHUTDOWN);
            }
            if let Some(slot) = &node.slot {
                // The walsender of a standby that just stopped may hold the
                // slot a moment longer.
                let drop = format!(
                    "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT active"
                );
                let gone = format!(
                    "SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name = '{slot}'"
                );
                self.until(&format!("the slot {slot} was not released"), || {
                    let _ = self.sql(self.primary_port(), &drop);
                    self.sql(self.primary_port(), &gone).is_ok_and(|t| t == "t")
                })?;
            }
            self.retire(name)?;
        }
        Ok(format!(
            "{} drained ({ended} sessions still open were ended), stopped, slots dropped; data kept under retired/{}/",
            nodes.join(", "),
            self.from
        ))
    }

    /// Out of the proxy's rotation, then PgBouncer's safe shutdown: each
    /// finishes the transactions in flight first.
    pub fn stop_pgbouncers(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        self.b.reload_proxy()?;
        let mut killed = Vec::new();
        for name in nodes {
            if let Ok(proc) = self.process(name)
                && procs::stop_with(&proc, "INT", STEP_LIMIT)
            {
                killed.push(name.clone());
            }
            self.retire(name)?;
        }
        Ok(format!(
            "{} out of the proxy's rotation and stopped{}",
            nodes.join(", "),
            if killed.is_empty() {
                String::new()
            } else {
                format!(" ({} killed after 30 s)", killed.join(", "))
            }
        ))
    }

    fn pgbouncer_file(&self, name: &str) -> anyhow::Result<PgbouncerIni> {
        let path = self.b.config.join(TargetFile::PgbouncerIni(name).rel());
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(PgbouncerIni::parse(&text))
    }

    /// Every setting of the [pgbouncer] section as SHOW CONFIG reports it
    /// (paths aside, which PgBouncer may resolve).
    fn pgbouncer_matches_file(&self, name: &str, port: u16) -> anyhow::Result<()> {
        let file = self.pgbouncer_file(name)?;
        let shown: BTreeMap<String, String> = self
            .admin(port, "SHOW CONFIG", STEP_LIMIT)?
            .lines()
            .filter_map(|l| {
                let mut f = l.split('|');
                Some((f.next()?.to_owned(), f.next()?.to_owned()))
            })
            .collect();
        let differ: Vec<String> = file
            .settings
            .iter()
            .filter(|(_, v)| !v.contains('/'))
            .filter_map(|(k, v)| {
                let now = shown.get(k)?;
                (!now.eq_ignore_ascii_case(v)).then(|| format!("{k} = {now} (file: {v})"))
            })
            .collect();
        if !differ.is_empty() {
            bail!("{name} does not run with its file: {}", differ.join(", "));
        }
        Ok(())
    }
}

/// The two sections of a generated pgbouncer.ini that a step checks.
struct PgbouncerIni {
    settings: BTreeMap<String, String>,
    databases: BTreeMap<String, String>,
}

impl PgbouncerIni {
    fn parse(text: &str) -> PgbouncerIni {
        let mut ini = PgbouncerIni {
            settings: BTreeMap::new(),
            databases: BTreeMap::new(),
        };
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = if name == "databases" {
                    "databases"
                } else if name == "pgbouncer" {
                    "pgbouncer"
                } else {
                    ""
                };
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            match section {
                "pgbouncer" => {
                    ini.settings.insert(k, v);
                }
                "databases" => {
                    ini.databases.insert(k, v);
                }
                _ => {}
            }
        }
        ini
    }
}

/// A field of a [databases] connect string: `host=... port=... dbname=...`.
fn connect_field(entry: &str, field: &str) -> Option<String> {
    entry
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_sections_of_a_generated_ini() {
        let ini = PgbouncerIni::parse(
            "; comment\n[databases]\napp = host=127.0.0.1 port=5432 dbname=app\n\n[pgbouncer]\npool_mode = transaction\nauth_file = \"/x/userlist.txt\"\n",
        );
        assert_eq!(
            connect_field(&ini.databases["app"], "port").as_deref(),
            Some("5432")
        );
        assert_eq!(ini.settings["pool_mode"], "transaction");
        assert_eq!(ini.settings["auth_file"], "/x/userlist.txt");
    }
}
