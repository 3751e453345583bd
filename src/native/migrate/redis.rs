//! The Redis side of a migration: replicas attached to the running master
//! and sentinels started around it; settings applied at run time; a
//! cluster built beside the running Redis, the keys copied and checked,
//! the cut-over, and the old nodes retired.

use super::Migrator;
use crate::native::probe::wait_for;
use crate::native::procs;
use crate::native::redis::{Moved, check_copy, copy_into_cluster};
use crate::native::resp::{Conn, Reply};
use crate::plan::identity::Secret;
use crate::plan::topology::{RedisLayout, RedisNode};
use anyhow::{Context, bail};
use std::time::{Duration, Instant};

/// Lines of a generated redis.conf that are not run-time settings: where
/// the server listens and keeps its files, what it is (cluster or not),
/// whom it follows (Sentinel's business), and the included secrets.
const NOT_AT_RUN_TIME: [&str; 8] = [
    "bind",
    "port",
    "dir",
    "include",
    "replicaof",
    "slaveof",
    "cluster-enabled",
    "cluster-config-file",
];

/// How long writes to the old master stay paused at the cut-over, at
/// most: Redis lifts the pause by itself after this, so a cut-over that
/// dies half-way never leaves the old master refusing writes for good.
const PAUSE_MS: u64 = 30_000;
/// The copy and check must end this long before the pause does.
const PAUSE_MARGIN: Duration = Duration::from_secs(5);

/// A value too high to reach: an old node set to want this many replicas
/// refuses every write (NOREPLICAS) instead of acknowledging it where no
/// client will read it again.
const FENCE_REPLICAS: &str = "1000000";

impl Migrator<'_> {
    fn redis_password(&self) -> String {
        self.password(Secret::Redis)
    }

    fn conn(&self, port: u16) -> anyhow::Result<Conn> {
        Conn::open(port, &self.redis_password())
    }

    fn data_node(&self, name: &str) -> anyhow::Result<RedisNode> {
        self.b
            .topo
            .redis
            .data_nodes()
            .into_iter()
            .find(|n| n.name == name)
            .cloned()
            .with_context(|| format!("{name} is not a Redis node of the new phase"))
    }

    /// The port of the node that is master now in a standalone or
    /// Sentinel layout: the one the sentinels name, or, before any
    /// sentinel runs, the node whose ROLE says master.
    fn current_master(&self, layout: &RedisLayout) -> anyhow::Result<u16> {
        match layout {
            RedisLayout::Standalone { node, .. } => Ok(node.endpoint.port),
            RedisLayout::Sentinel {
                nodes,
                sentinels,
                master_name,
                ..
            } => {
                for s in sentinels {
                    let answer = self.conn(s.endpoint.port).and_then(|mut c| {
                        c.call(&[
                            b"SENTINEL",
                            b"get-master-addr-by-name",
                            master_name.as_bytes(),
                        ])
                    });
                    if let Some(port) = answer.ok().and_then(|r| {
                        r.items()
                            .get(1)
                            .and_then(Reply::text)
                            .and_then(|p| p.parse().ok())
                    }) {
                        return Ok(port);
                    }
                }
                for n in nodes {
                    let role = self
                        .conn(n.endpoint.port)
                        .and_then(|mut c| c.call(&[b"ROLE"]));
                    if let Ok(r) = role
                        && r.items().first().and_then(Reply::text).as_deref() == Some("master")
                    {
                        return Ok(n.endpoint.port);
                    }
                }
                bail!("no Redis node answers as master")
            }
            RedisLayout::Cluster { .. } => bail!("a cluster has a master per shard"),
        }
    }

    /// The running node takes the settings of its new generated file that
    /// apply at run time (CONFIG SET), each checked with CONFIG GET.
    /// Returns how many it set.
    fn runtime_settings(&self, node: &RedisNode, later: &[&str]) -> anyhow::Result<usize> {
        let path = self
            .b
            .config
            .join("redis")
            .join(&node.name)
            .join("redis.conf");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut conn = self.conn(node.endpoint.port)?;
        let mut count = 0;
        for (key, value) in directives(&text) {
            if NOT_AT_RUN_TIME.contains(&key.as_str()) || later.contains(&key.as_str()) {
                continue;
            }
            conn.call(&[b"CONFIG", b"SET", key.as_bytes(), value.as_bytes()])
                .with_context(|| format!("{}: CONFIG SET {key} {value}", node.name))?;
            let now = conn.call(&[b"CONFIG", b"GET", key.as_bytes()])?;
            let now = now.items().get(1).and_then(Reply::text).unwrap_or_default();
            if normalize(&now) != normalize(&value) {
                bail!("{}: {key} is {now} after CONFIG SET {value}", node.name);
            }
            count += 1;
        }
        Ok(count)
    }

    pub fn start_redis_replicas(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        let master = self.current_master(&self.before.redis.clone())?;
        let earlier: Vec<RedisNode> = self
            .b
            .topo
            .redis
            .data_nodes()
            .into_iter()
            .filter(|n| !nodes.contains(&n.name))
            .cloned()
            .collect();
        // The replication settings first (how the master serves a full
        // sync), but not the ones that refuse writes without replicas.
        let needs_replicas = ["min-replicas-to-write", "min-replicas-max-lag"];
        for node in &earlier {
            self.runtime_settings(node, &needs_replicas)?;
        }
        for name in nodes {
            let node = self.data_node(name)?;
            self.b.redis_node(&node, "replicated")?;
            // A new node's file names the initial master; a failover may
            // have moved it since.
            let mut conn = self.conn(node.endpoint.port)?;
            let role = conn.call(&[b"ROLE"])?;
            let follows = role.items().get(2).and_then(Reply::int);
            if follows != Some(i64::from(master)) {
                conn.call(&[b"REPLICAOF", b"127.0.0.1", master.to_string().as_bytes()])?;
            }
        }
        let ports: Vec<u16> = nodes
            .iter()
            .map(|n| self.data_node(n).map(|n| n.endpoint.port))
            .collect::<anyhow::Result<_>>()?;
        self.until_synced(master, &ports)?;
        // Now that the replicas are in sync, all of them.
        let mut set = 0;
        for node in &earlier {
            set += self.runtime_settings(node, &[])?;
        }
        let names: Vec<&str> = earlier.iter().map(|n| n.name.as_str()).collect();
        Ok(format!(
            "{} in sync with the master at 127.0.0.1:{master}; {} took {set} settings at run time",
            nodes.join(", "),
            names.join(", ")
        ))
    }

    /// Until the master lists every replica online and each replica has
    /// its link up and no sync in progress.
    fn until_synced(&self, master: u16, replicas: &[u16]) -> anyhow::Result<()> {
        let info = |port: u16| -> Option<String> {
            self.conn(port)
                .ok()?
                .call(&[b"INFO", b"replication"])
                .ok()?
                .text()
        };
        wait_for(self.b.timeout, || {
            let at_master = info(master)?;
            let all = replicas.iter().all(|port| {
                at_master
                    .lines()
                    .any(|l| l.contains(&format!("port={port},state=online")))
                    && info(*port).is_some_and(|i| {
                        i.contains("master_link_status:up")
                            && i.contains("master_sync_in_progress:0")
                    })
            });
            all.then_some(())
        })
        .with_context(|| {
            format!(
                "the replicas did not finish their initial sync within {} s",
                self.b.timeout.as_secs()
            )
        })
    }

    pub fn start_sentinels(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        let RedisLayout::Sentinel {
            nodes: data,
            sentinels,
            master_name,
            ..
        } = self.b.topo.redis.clone()
        else {
            bail!("the new phase runs no sentinels");
        };
        self.b.sentinels(&data, &sentinels, &master_name)?;
        Ok(format!(
            "{} running; all {} sentinels agree on master '{master_name}', its {} replicas and each other",
            nodes.join(", "),
            sentinels.len(),
            data.len() - 1
        ))
    }

    pub fn sentinel_settings(&mut self) -> anyhow::Result<String> {
        let RedisLayout::Sentinel {
            sentinels,
            master_name,
            quorum,
            down_after_ms,
            failover_timeout_ms,
            parallel_syncs,
            ..
        } = self.b.topo.redis.clone()
        else {
            bail!("the new phase runs no sentinels");
        };
        let want = [
            ("quorum", quorum.to_string()),
            ("down-after-milliseconds", down_after_ms.to_string()),
            ("failover-timeout", failover_timeout_ms.to_string()),
            ("parallel-syncs", parallel_syncs.to_string()),
        ];
        for s in &sentinels {
            let mut conn = self.conn(s.endpoint.port)?;
            let mut args: Vec<&[u8]> = vec![b"SENTINEL", b"SET", master_name.as_bytes()];
            for (k, v) in &want {
                args.push(k.as_bytes());
                args.push(v.as_bytes());
            }
            conn.call(&args)
                .with_context(|| format!("{}: SENTINEL SET", s.name))?;
            let reply = conn.call(&[b"SENTINEL", b"MASTER", master_name.as_bytes()])?;
            let fields: Vec<String> = reply.items().iter().filter_map(Reply::text).collect();
            for (k, v) in &want {
                let now = fields.chunks(2).find(|p| p[0] == *k).and_then(|p| p.get(1));
                if now != Some(v) {
                    bail!("{}: {k} is {now:?} after SENTINEL SET, not {v}", s.name);
                }
            }
        }
        Ok(format!(
            "{} sentinels report quorum {quorum}, down-after {down_after_ms} ms, failover-timeout {failover_timeout_ms} ms, parallel-syncs {parallel_syncs}",
            sentinels.len()
        ))
    }

    pub fn redis_settings(&mut self) -> anyhow::Result<String> {
        let nodes: Vec<RedisNode> = self
            .b
            .topo
            .redis
            .data_nodes()
            .into_iter()
            .cloned()
            .collect();
        let mut set = 0;
        for node in &nodes {
            set += self.runtime_settings(node, &[])?;
        }
        Ok(format!(
            "{} nodes took {set} settings at run time, each read back with CONFIG GET",
            nodes.len()
        ))
    }

    pub fn stop_redis_nodes(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        for name in nodes {
            if let Ok(proc) = self.process(name) {
                procs::stop_with(&proc, "TERM", Duration::from_secs(20));
            }
            self.retire(name)?;
        }
        // The remaining sentinels forget what stopped.
        if let RedisLayout::Sentinel {
            sentinels,
            master_name,
            ..
        } = self.b.topo.redis.clone()
        {
            for s in &sentinels {
                self.conn(s.endpoint.port)?.call(&[
                    b"SENTINEL",
                    b"RESET",
                    master_name.as_bytes(),
                ])?;
            }
            let data = self.b.topo.redis.data_nodes().len();
            self.b.sentinels(
                &self
                    .b
                    .topo
                    .redis
                    .data_nodes()
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>(),
                &sentinels,
                &master_name,
            )?;
            return Ok(format!(
                "{} stopped; the sentinels were reset and agree on {} data nodes",
                nodes.join(", "),
                data
            ));
        }
        Ok(format!("{} stopped", nodes.join(", ")))
    }

    pub fn build_cluster(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        let RedisLayout::Cluster {
            nodes: all, shards, ..
        } = self.b.topo.redis.clone()
        else {
            bail!("the new phase runs no cluster");
        };
        for node in all.iter().filter(|n| nodes.contains(&n.name)) {
            self.b.redis_node(node, "server")?;
        }
        self.b.cluster(&all)?;
        Ok(format!(
            "{} nodes in {} shards cover all 16384 slots; every replica in sync",
            all.len(),
            shards.len()
        ))
    }

    fn cluster_seed(&self) -> anyhow::Result<u16> {
        match &self.b.topo.redis {
            RedisLayout::Cluster { nodes, .. } => Ok(nodes[0].endpoint.port),
            _ => bail!("the new phase runs no cluster"),
        }
    }

    /// The first copy, while clients still write to the old master: it
    /// moves the bulk of the data, so the cut-over's copy under a pause is
    /// short. The check that decides comes at the cut-over.
    pub fn copy_into_cluster(&mut self) -> anyhow::Result<String> {
        let source = self.current_master(&self.before.redis.clone())?;
        let seed = self.cluster_seed()?;
        let moved = copy_into_cluster(source, seed, &self.redis_password())?;
        Ok(format!(
            "{} keys ({} with a TTL) copied from 127.0.0.1:{source} with DUMP/RESTORE; the source only read",
            moved.keys, moved.with_ttl
        ))
    }

    /// Writes to the old master pause; every key is copied again and the
    /// cluster checked against the source (count and checksum); the old
    /// nodes are fenced so no write is acknowledged there again; app.env
    /// names the cluster; the pause lifts, and the writes it held are
    /// refused, so their clients retry on the cluster.
    pub fn cut_over(&mut self) -> anyhow::Result<String> {
        let source = self.current_master(&self.before.redis.clone())?;
        let seed = self.cluster_seed()?;
        let password = self.redis_password();
        let mut master = self.conn(source)?;
        master.call(&[
            b"CLIENT",
            b"PAUSE",
            PAUSE_MS.to_string().as_bytes(),
            b"WRITE",
        ])?;
        let paused = Instant::now();
        let result = (|| -> anyhow::Result<Moved> {
            let copied = copy_into_cluster(source, seed, &password)?;
            let checked = check_copy(source, seed, &password)?;
            if checked.keys != copied.keys {
                bail!(
                    "copied {} keys but the check found {}",
                    copied.keys,
                    checked.keys
                );
            }
            if paused.elapsed() + PAUSE_MARGIN > Duration::from_millis(PAUSE_MS) {
                bail!(
                    "copying and checking took {:.1} s, too close to the {} s pause: writes may have resumed; nothing was switched",
                    paused.elapsed().as_secs_f64(),
                    PAUSE_MS / 1000
                );
            }
            for node in self.before.redis.data_nodes() {
                if let Ok(mut c) = self.conn(node.endpoint.port) {
                    c.call(&[
                        b"CONFIG",
                        b"SET",
                        b"min-replicas-to-write",
                        FENCE_REPLICAS.as_bytes(),
                    ])?;
                }
            }
            self.b.app_env()?;
            Ok(checked)
        })();
        let _ = master.call(&[b"CLIENT", b"UNPAUSE"]);
        let held = paused.elapsed().as_secs_f64();
        let moved = result?;
        Ok(format!(
            "writes paused {held:.1} s while {} keys ({} with a TTL) were copied again and checked, checksum {:016x}; the old nodes refuse writes; app.env names the cluster",
            moved.keys, moved.with_ttl, moved.checksum
        ))
    }

    pub fn switch_clients(&mut self, mode: &str) -> anyhow::Result<String> {
        let path = self.b.app_env()?;
        let text = std::fs::read_to_string(&path)?;
        if !text.lines().any(|l| l == format!("REDIS_MODE={mode}")) {
            bail!("{} does not name REDIS_MODE={mode}", path.display());
        }
        Ok(format!(
            "{} names REDIS_MODE={mode}: the app's clients reconnect from it",
            path.display()
        ))
    }

    /// Sentinels first (so none fails over a master that is merely
    /// stopping), then the data nodes.
    pub fn retire_redis(&mut self, nodes: &[String]) -> anyhow::Result<String> {
        let mut order: Vec<&String> = nodes.iter().collect();
        let sentinel = |n: &String| self.process(n).is_ok_and(|p| p.kind == "sentinel");
        order.sort_by_key(|n| !sentinel(n));
        for name in order {
            if let Ok(proc) = self.process(name) {
                procs::stop_with(&proc, "TERM", Duration::from_secs(20));
            }
            self.retire(name)?;
        }
        Ok(format!(
            "{} stopped; their data kept under retired/{}/",
            nodes.join(", "),
            self.from
        ))
    }
}

/// `key value` pairs of a redis.conf, quotes removed.
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            Some((
                k.to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// A setting's value as CONFIG GET gives it back: memory sizes in bytes.
fn normalize(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = v.strip_suffix(suffix).and_then(|n| n.parse::<u64>().ok()) {
            return (n * factor).to_string();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_compare_as_config_get_reports_them() {
        assert_eq!(normalize("1024mb"), "1073741824");
        assert_eq!(normalize("2gb"), normalize("2147483648"));
        assert_eq!(normalize("allkeys-lru"), "allkeys-lru");
    }

    #[test]
    fn directives_skip_comments_and_unquote() {
        let d = directives("# x\nmaxmemory 1024mb\n\nrequirepass \"p\"\n");
        assert_eq!(
            d,
            [
                ("maxmemory".to_owned(), "1024mb".to_owned()),
                ("requirepass".to_owned(), "p".to_owned())
            ]
        );
    }
}
