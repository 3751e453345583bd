//! The Redis side of a migration: replicas attached to the running master
//! and sentinels started around it; settings applied at run time; a
//! cluster built beside the running Redis, the keys copied and checked,
//! the cut-over, and the old nodes retired.

use super::Migrator;
use crate::native::copy::{check_copy, copy_keys, remove_extra_keys};
use crate::native::probe::wait_for;
use crate::native::procs;
use crate::native::resp::{Conn, Reply};
use crate::plan::identity::Secret;
use crate::plan::layout::{APP_ENV, Part};
use crate::plan::redisconf;
use crate::plan::topology::{RedisLayout, RedisNode, RedisStart};
use anyhow::{Context, bail};
use std::time::{Duration, Instant};

/// How long writes to the old master stay paused at the cut-over, at
/// most: Redis lifts the pause by itself after this, so a cut-over that
/// dies half-way never leaves the old master refusing writes for good.
const PAUSE_MS: u64 = 30_000;
/// The copy and check must end this long before the pause does.
const PAUSE_MARGIN: Duration = Duration::from_secs(5);

/// A sentinel's down-after while the cut-over holds it: an hour.
const SENTINEL_HOLD_MS: &str = "3600000";

/// A value too high to reach: an old node set to want this many replicas
/// refuses every write (NOREPLICAS) instead of acknowledging it where no
/// client will read it again.
const FENCE_REPLICAS: &str = "1000000";

impl Migrator<'_> {
    fn redis_password(&self) -> String {
        self.password(Secret::Redis)
    }

    pub(super) fn conn(&self, port: u16) -> anyhow::Result<Conn> {
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
                    if self
                        .conn(n.endpoint.port)
                        .and_then(|mut c| c.is_master())
                        .unwrap_or(false)
                    {
                        return Ok(n.endpoint.port);
                    }
                }
                bail!("no Redis node answers as master")
            }
            RedisLayout::Cluster { .. } => bail!("a cluster has a master per shard"),
        }
    }

    /// The running node takes the new phase's run-time settings (the
    /// plan's list, which its redis.conf also holds) with CONFIG SET, each
    /// checked with CONFIG GET. Returns how many it set.
    fn runtime_settings(&self, node: &RedisNode, later: &[&str]) -> anyhow::Result<usize> {
        self.runtime_settings_in(&self.b.topo.redis.clone(), node, later)
    }

    /// Every run-time setting `layout` plans for `node`, set and read back.
    pub(super) fn runtime_settings_in(
        &self,
        layout: &RedisLayout,
        node: &RedisNode,
        later: &[&str],
    ) -> anyhow::Result<usize> {
        let target = self.b.topo.target;
        let conf = redisconf::plan(layout, node, target);
        let mut conn = self.conn(node.endpoint.port)?;
        let mut count = 0;
        for x in conf.all().filter(|x| !later.contains(&x.key)) {
            let (key, value) = (x.key, x.value.as_arg());
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
            self.b.redis_node(&node, RedisStart::Replicated)?;
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
        let want: Vec<(&str, String)> = self
            .b
            .topo
            .redis
            .sentinel_settings()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
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
        // Under noeviction a full Redis refuses writes: a node already near
        // its maxmemory would refuse them the moment the policy changes.
        let common = self.b.topo.redis.common();
        if common.maxmemory_policy == "noeviction" {
            let limit = u64::from(common.maxmemory_mb) * 1024 * 1024;
            for node in &nodes {
                let mut conn = self.conn(node.endpoint.port)?;
                let info = conn.call(&[b"INFO", b"memory"])?;
                let used: u64 = info
                    .text()
                    .and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("used_memory:"))
                            .and_then(|v| v.trim().parse().ok())
                    })
                    .with_context(|| format!("{}: INFO memory has no used_memory", node.name))?;
                if used * 10 >= limit * 9 {
                    bail!(
                        "{}: used_memory {} MB is {}% of maxmemory {} MB: under noeviction it would refuse writes at once; free memory first (expire or delete cache keys), or raise redis.maxmemory_mb",
                        node.name,
                        used / (1024 * 1024),
                        used * 100 / limit.max(1),
                        common.maxmemory_mb
                    );
                }
            }
        }
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
            self.b.redis_node(node, RedisStart::Server)?;
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
    /// moves the bulk of the data, so the cut-over's pass under a pause
    /// writes only what changed since. The check that decides comes at
    /// the cut-over.
    pub fn copy_into_cluster(&mut self) -> anyhow::Result<String> {
        let source = self.current_master(&self.before.redis.clone())?;
        let seed = self.cluster_seed()?;
        let copied = copy_keys(source, seed, &self.redis_password(), true, None)?;
        Ok(format!(
            "{} keys ({} with a TTL) copied from 127.0.0.1:{source} with DUMP/RESTORE ({} written); the source only read",
            copied.keys, copied.with_ttl, copied.restored
        ))
    }

    /// True once app.env names the cluster: the cut-over is done.
    fn clients_on_cluster(&self) -> bool {
        std::fs::read_to_string(self.b.state_dir.join(APP_ENV))
            .is_ok_and(|t| t.lines().any(|l| l == "REDIS_MODE=cluster"))
    }

    /// Every old data node set to refuse writes (NOREPLICAS), each one's
    /// value before kept in `fenced` to undo it. The master must take it;
    /// a replica that does not answer cannot be promoted (the sentinels
    /// are held) and is passed.
    fn fence_old_nodes(&self, master: u16, fenced: &mut Vec<(u16, String)>) -> anyhow::Result<()> {
        for node in self.before.redis.data_nodes() {
            let port = node.endpoint.port;
            let conn = self.conn(port);
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) if port == master => return Err(e),
                Err(_) => continue,
            };
            let was = conn.call(&[b"CONFIG", b"GET", b"min-replicas-to-write"])?;
            let was = was.items().get(1).and_then(Reply::text).unwrap_or_default();
            conn.call(&[
                b"CONFIG",
                b"SET",
                b"min-replicas-to-write",
                FENCE_REPLICAS.as_bytes(),
            ])
            .with_context(|| format!("fencing {}", node.name))?;
            if was != FENCE_REPLICAS {
                fenced.push((port, was));
            }
        }
        Ok(())
    }

    /// The old sentinels' down-after raised out of reach for the
    /// cut-over: a write pause also holds their hello messages (PUBLISH),
    /// and the PINGs queued behind them could look like a dead master.
    /// Returns each sentinel's port and value before.
    fn hold_sentinels(&self) -> anyhow::Result<Vec<(u16, String)>> {
        let RedisLayout::Sentinel {
            sentinels,
            master_name,
            down_after_ms,
            ..
        } = &self.before.redis
        else {
            return Ok(Vec::new());
        };
        let mut held = Vec::new();
        for s in sentinels {
            let Ok(mut conn) = self.conn(s.endpoint.port) else {
                continue;
            };
            conn.call(&[
                b"SENTINEL",
                b"SET",
                master_name.as_bytes(),
                b"down-after-milliseconds",
                SENTINEL_HOLD_MS.as_bytes(),
            ])
            .with_context(|| format!("holding {}", s.name))?;
            held.push((s.endpoint.port, down_after_ms.to_string()));
        }
        Ok(held)
    }

    fn release_sentinels(&self, held: &[(u16, String)]) {
        let RedisLayout::Sentinel { master_name, .. } = &self.before.redis else {
            return;
        };
        for (port, value) in held {
            if let Ok(mut conn) = self.conn(*port) {
                let _ = conn.call(&[
                    b"SENTINEL",
                    b"SET",
                    master_name.as_bytes(),
                    b"down-after-milliseconds",
                    value.as_bytes(),
                ]);
            }
        }
    }

    /// The cut-over. Writes to the old master pause (CLIENT PAUSE WRITE,
    /// which Redis lifts by itself after 30 s); at once every old node is
    /// fenced (CONFIG SET is not a write, so it passes the pause), so from
    /// here on no write is acknowledged there. What changed since the
    /// first copy is copied, keys the source no longer has are removed,
    /// and the cluster is checked against the source (every key's DUMP
    /// payload and TTL, the count, a checksum), all before the pause would
    /// end. Then app.env names the cluster and the pause lifts: the writes
    /// it held are refused (NOREPLICAS) and their clients retry on the
    /// cluster. A failure undoes the fence and the sentinels' hold before
    /// the pause lifts, so the old Redis serves on as before.
    pub fn cut_over(&mut self) -> anyhow::Result<String> {
        let seed = self.cluster_seed()?;
        let password = self.redis_password();
        if self.clients_on_cluster() {
            // Done by an earlier run that stopped after the switch: copying
            // again would put the old master's values over what the app has
            // written to the cluster since.
            let source = self.current_master(&self.before.redis.clone())?;
            self.fence_old_nodes(source, &mut Vec::new())?;
            return Ok(
                "done by an earlier run: app.env names the cluster and the old nodes refuse writes"
                    .to_owned(),
            );
        }
        let source = self.current_master(&self.before.redis.clone())?;
        let held = self.hold_sentinels()?;
        let mut master = self.conn(source)?;
        master.call(&[
            b"CLIENT",
            b"PAUSE",
            PAUSE_MS.to_string().as_bytes(),
            b"WRITE",
        ])?;
        let paused = Instant::now();
        let deadline = paused + Duration::from_millis(PAUSE_MS) - PAUSE_MARGIN;
        let mut fenced = Vec::new();
        let result = (|| {
            self.fence_old_nodes(source, &mut fenced)?;
            let copied = copy_keys(source, seed, &password, true, Some(deadline))?;
            let removed = remove_extra_keys(source, seed, &password, Some(deadline))?;
            let checked = check_copy(source, seed, &password, Some(deadline))?;
            if !self.conn(source)?.is_master()? {
                bail!("127.0.0.1:{source} is no longer the master");
            }
            self.install(&[Part::AppEnv])?;
            self.b.app_env()?;
            Ok((copied, removed, checked))
        })();
        if result.is_err() {
            for (port, value) in &fenced {
                if let Ok(mut c) = self.conn(*port) {
                    let _ = c.call(&[
                        b"CONFIG",
                        b"SET",
                        b"min-replicas-to-write",
                        value.as_bytes(),
                    ]);
                }
            }
            self.release_sentinels(&held);
        }
        let _ = master.call(&[b"CLIENT", b"UNPAUSE"]);
        let pause = paused.elapsed().as_secs_f64();
        let (copied, removed, checked) = result.map_err(|e| {
            e.context(format!(
                "the cut-over was undone after {pause:.1} s: the old Redis serves as before"
            ))
        })?;
        Ok(format!(
            "writes paused {pause:.1} s: {} keys written again and {removed} the source no longer has removed; the cluster holds the source's {} keys ({} with a TTL), checksum {:016x}; the old nodes refuse writes; app.env names the cluster",
            copied.restored, checked.keys, checked.with_ttl, checked.checksum
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
}
