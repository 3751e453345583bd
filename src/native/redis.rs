//! Redis in a bring-up: every node and sentinel through the generated
//! start.sh (which rebuilds the file the server runs from on each start),
//! the cluster through the generated cluster-create.sh, and, when a phase
//! moves Redis into a cluster, the copy of the data it held.

use super::bringup::Bringup;
use super::probe;
use super::procs::Proc;
use super::resp::{Conn, Reply, keyslot};
use crate::plan::identity::Secret;
use crate::plan::topology::{RedisLayout, RedisNode, Topology};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a copy into the cluster moved, and the check that found it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub keys: u64,
    pub with_ttl: u64,
    /// FNV-1a over every key and its DUMP payload, in key order: the same
    /// on both sides when every value arrived intact.
    pub checksum: u64,
}

impl Bringup {
    pub fn redis(&mut self) -> anyhow::Result<()> {
        let layout = self.topo.redis.clone();
        let mode = match layout {
            RedisLayout::Sentinel { .. } => "replicated",
            _ => "server",
        };
        for node in layout.data_nodes() {
            self.redis_node(node, mode)?;
        }
        match &layout {
            RedisLayout::Standalone { .. } => Ok(()),
            RedisLayout::Sentinel {
                nodes,
                sentinels,
                master_name,
                ..
            } => self.sentinels(nodes, sentinels, master_name),
            RedisLayout::Cluster { nodes, .. } => self.cluster(nodes),
        }
    }

    /// A data node or sentinel through start.sh, awaited until it answers.
    pub fn redis_node(&mut self, node: &RedisNode, mode: &str) -> anyhow::Result<()> {
        let since = Instant::now();
        if self.keep_running(&node.name) {
            return Ok(());
        }
        std::fs::create_dir_all(self.state_dir.join(&node.name))?;
        let launch = self
            .script("/bin/sh", "redis/start.sh")
            .arg(mode)
            .arg(&node.name);
        let kind = if mode == "sentinel" {
            "sentinel"
        } else {
            "redis"
        };
        self.spawn(launch, &node.name, kind, node.endpoint.port)?;
        let port = node.endpoint.port;
        let password = self.secrets.get(Secret::Redis).to_owned();
        self.await_ready(&node.name, "answering PING", since, || {
            probe::redis_ping(&self.tools, port, &password).then_some(())
        })
    }

    pub fn sentinels(
        &mut self,
        nodes: &[RedisNode],
        sentinels: &[RedisNode],
        master: &str,
    ) -> anyhow::Result<()> {
        let since = Instant::now();
        let replicas = nodes.len() - 1;
        let password = self.secrets.get(Secret::Redis).to_owned();
        // The master is whichever node is one now: a failover before a
        // restart may have moved it.
        let mut master_port = 0;
        self.await_ready(
            "redis",
            &format!("a master serving {replicas} replicas"),
            since,
            || {
                let port = nodes.iter().map(|n| n.endpoint.port).find(|&port| {
                    probe::redis(&self.tools, port, &password, &["INFO", "replication"])
                        .is_some_and(|info| info.contains("role:master"))
                })?;
                let info = probe::redis(&self.tools, port, &password, &["INFO", "replication"])?;
                let online = info
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                    .count();
                master_port = port;
                (online == replicas).then_some(())
            },
        )?;
        for node in sentinels {
            self.redis_node(node, "sentinel")?;
        }
        let since = Instant::now();
        let others = (sentinels.len() - 1).to_string();
        let replicas = replicas.to_string();
        let master_port = master_port.to_string();
        self.await_ready(
            "sentinels",
            "agreed on master, replicas and each other",
            since,
            || {
                sentinels
                    .iter()
                    .all(|s| {
                        let field = |name: &str| {
                            probe::sentinel_field(
                                &self.tools,
                                s.endpoint.port,
                                &password,
                                master,
                                name,
                            )
                        };
                        field("num-other-sentinels").as_deref() == Some(&others)
                            && field("num-slaves").as_deref() == Some(&replicas)
                            && field("port").as_deref() == Some(&master_port)
                    })
                    .then_some(())
            },
        )
    }

    /// The cluster formed, or grown to the plan, by cluster-create.sh.
    pub fn cluster(&mut self, nodes: &[RedisNode]) -> anyhow::Result<()> {
        let since = Instant::now();
        let out = self
            .script("/bin/sh", "redis/cluster-create.sh")
            .env("REDISCLI_AUTH", self.secrets.get(Secret::Redis))
            .run(&self.state_dir, "cluster-create.sh")?;
        std::fs::write(self.log("redis-cluster"), &out)?;
        let password = self.secrets.get(Secret::Redis).to_owned();
        let first = nodes[0].endpoint.port;
        self.await_ready("redis-cluster", "covering all 16384 slots", since, || {
            probe::cluster_ok(&self.tools, first, &password).then_some(())
        })?;
        let since = Instant::now();
        let ports: Vec<u16> = nodes.iter().map(|n| n.endpoint.port).collect();
        let replicas = self.topo.redis.cluster_replicas();
        self.await_ready(
            "redis-cluster",
            &format!("agreed on {replicas} replicas, all in sync and serving"),
            since,
            || {
                (probe::cluster_converged(&self.tools, &ports, &password, replicas)
                    && probe::cluster_serving(&self.tools, &ports, &password))
                .then_some(())
            },
        )
    }

    /// When this phase runs a cluster and the one before it did not, the
    /// keys the old master held are copied into the cluster's slots and
    /// checked; only then are the old nodes retired, their directories
    /// kept under retired/. The old master runs again just for the copy.
    pub fn move_into_cluster(&mut self, before: &Topology, phase: &str) -> anyhow::Result<()> {
        let RedisLayout::Cluster { nodes, .. } = &self.topo.redis else {
            return Ok(());
        };
        let seed = nodes[0].endpoint.port;
        if matches!(before.redis, RedisLayout::Cluster { .. }) {
            return Ok(());
        }
        let Some(master) = last_master(before, &self.state_dir) else {
            return Ok(());
        };
        let since = Instant::now();
        let password = self.secrets.get(Secret::Redis).to_owned();
        let conf = self.state_dir.join(&master.name).join("redis.conf");
        // The copy reads; the node must not follow a master that is gone.
        let text = std::fs::read_to_string(&conf)
            .with_context(|| format!("reading {}", conf.display()))?;
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with("replicaof ") && !l.starts_with("slaveof "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&conf, kept)?;
        std::fs::write(
            self.state_dir.join(&master.name).join("auth.conf"),
            crate::render::auth::redis_auth(&password),
        )?;
        let name = format!("{}-retiring", master.name);
        let launch = super::procs::Launch::new(&self.tools.redis_server)
            .arg(&conf)
            .args_str(&["--min-replicas-to-write", "0"]);
        self.spawn(launch, &name, "redis", master.endpoint.port)?;
        let port = master.endpoint.port;
        self.await_ready(&name, "answering PING", since, || {
            probe::redis_ping(&self.tools, port, &password).then_some(())
        })?;
        let result = (|| {
            let copied = copy_into_cluster(port, seed, &password)?;
            let checked = check_copy(port, seed, &password)?;
            if copied.keys != checked.keys {
                bail!(
                    "copied {} keys but found {} in the cluster",
                    copied.keys,
                    checked.keys
                );
            }
            Ok(checked)
        })();
        let stopping: Vec<Proc> = self
            .state
            .processes
            .iter()
            .filter(|p| p.name == name)
            .cloned()
            .collect();
        super::procs::stop_all(&stopping, Duration::from_secs(20));
        self.state.processes.retain(|p| p.name != name);
        self.state.save(&self.state_dir)?;
        let moved = result?;
        crate::say!(
            "  {:<22} {} keys ({} with a TTL) copied into the cluster and checked, checksum {:016x} ({:.1} s)",
            master.name,
            moved.keys,
            moved.with_ttl,
            moved.checksum,
            since.elapsed().as_secs_f64()
        );
        retire(before, &self.state_dir, phase)
    }
}

/// The node that was master when the earlier phase stopped: the one its
/// sentinels last named, or the standalone node.
fn last_master(before: &Topology, state: &Path) -> Option<RedisNode> {
    match &before.redis {
        RedisLayout::Standalone { node, .. } => {
            state.join(&node.name).is_dir().then(|| node.clone())
        }
        RedisLayout::Sentinel {
            nodes,
            sentinels,
            master_name,
            ..
        } => {
            let named = sentinels.iter().find_map(|s| {
                let text =
                    std::fs::read_to_string(state.join(&s.name).join("sentinel.conf")).ok()?;
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&format!("sentinel monitor {master_name} ")))?;
                let port: u16 = line.split_whitespace().nth(4)?.parse().ok()?;
                nodes.iter().find(|n| n.endpoint.port == port).cloned()
            });
            named
                .or_else(|| {
                    // No sentinel state: the node that followed no one.
                    nodes
                        .iter()
                        .find(|n| {
                            std::fs::read_to_string(state.join(&n.name).join("redis.conf"))
                                .is_ok_and(|t| !t.lines().any(|l| l.starts_with("replicaof ")))
                        })
                        .cloned()
                })
                .filter(|n| state.join(&n.name).is_dir())
        }
        RedisLayout::Cluster { .. } => None,
    }
}

/// Moves the earlier phase's Redis directories under retired/<phase>/.
fn retire(before: &Topology, state: &Path, phase: &str) -> anyhow::Result<()> {
    let mut names: Vec<&str> = before
        .redis
        .data_nodes()
        .into_iter()
        .map(|n| n.name.as_str())
        .collect();
    if let RedisLayout::Sentinel { sentinels, .. } = &before.redis {
        names.extend(sentinels.iter().map(|n| n.name.as_str()));
    }
    let to = state.join("retired").join(phase);
    for name in names {
        let from = state.join(name);
        if from.is_dir() {
            std::fs::create_dir_all(&to)?;
            std::fs::rename(&from, to.join(name))
                .with_context(|| format!("retiring {}", from.display()))?;
            crate::say!("  {name:<22} retired to {}", to.join(name).display());
        }
    }
    Ok(())
}

/// The cluster's masters by slot range, from CLUSTER SLOTS on one node.
fn slot_owners(seed: &mut Conn) -> anyhow::Result<Vec<(u16, u16, u16)>> {
    let reply = seed.call(&[b"CLUSTER", b"SLOTS"])?;
    let mut out = Vec::new();
    for range in reply.items() {
        let items = range.items();
        let (Some(start), Some(end)) = (
            items.first().and_then(Reply::int),
            items.get(1).and_then(Reply::int),
        ) else {
            continue;
        };
        let port = items
            .get(2)
            .and_then(|m| m.items().get(1))
            .and_then(Reply::int)
            .context("CLUSTER SLOTS without a master port")?;
        out.push((start as u16, end as u16, port as u16));
    }
    Ok(out)
}

fn owner(owners: &[(u16, u16, u16)], key: &[u8]) -> anyhow::Result<u16> {
    let slot = keyslot(key);
    owners
        .iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .map(|(_, _, port)| *port)
        .with_context(|| format!("no master serves slot {slot}"))
}

/// Every key of database 0 of `source`, in batches.
fn scan(
    source: &mut Conn,
    mut each: impl FnMut(&mut Conn, Vec<Vec<u8>>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor = b"0".to_vec();
    loop {
        let reply = source.call(&[b"SCAN", &cursor, b"COUNT", b"500"])?;
        let items = reply.items();
        cursor = items
            .first()
            .and_then(Reply::bytes)
            .context("SCAN without a cursor")?
            .to_vec();
        let keys: Vec<Vec<u8>> = items
            .get(1)
            .map(|k| {
                k.items()
                    .iter()
                    .filter_map(Reply::bytes)
                    .map(<[u8]>::to_vec)
                    .collect()
            })
            .unwrap_or_default();
        if !keys.is_empty() {
            each(source, keys)?;
        }
        if cursor == b"0" {
            return Ok(());
        }
    }
}

/// A key's serialized value (DUMP) and its time to live in ms (PTTL, -1
/// for none).
type Dumped = (Vec<u8>, i64);

/// DUMP and PTTL of each key; None for a key that expired meanwhile.
fn dump(conn: &mut Conn, keys: &[Vec<u8>]) -> anyhow::Result<Vec<Option<Dumped>>> {
    let commands: Vec<Vec<&[u8]>> = keys
        .iter()
        .flat_map(|k| [vec![&b"DUMP"[..], k], vec![&b"PTTL"[..], k]])
        .collect();
    let replies = conn.pipeline(&commands)?;
    Ok(replies
        .chunks(2)
        .map(|pair| match (&pair[0], pair[1].int()) {
            (Reply::Bulk(Some(payload)), Some(ttl)) if ttl != -2 => Some((payload.clone(), ttl)),
            _ => None,
        })
        .collect())
}

/// Copies every key of the source into the cluster with its TTL (DUMP,
/// then RESTORE ... REPLACE on the master of its slot). The source is only
/// read: nothing is deleted from it.
pub fn copy_into_cluster(source: u16, seed: u16, password: &str) -> anyhow::Result<Moved> {
    let mut src = Conn::open(source, password)?;
    refuse_other_databases(&mut src)?;
    let owners = slot_owners(&mut Conn::open(seed, password)?)?;
    let mut targets: BTreeMap<u16, Conn> = BTreeMap::new();
    let mut moved = Moved {
        keys: 0,
        with_ttl: 0,
        checksum: 0,
    };
    scan(&mut src, |src, keys| {
        let dumped = dump(src, &keys)?;
        let mut by_port: BTreeMap<u16, Vec<Vec<Vec<u8>>>> = BTreeMap::new();
        for (key, found) in keys.iter().zip(dumped) {
            let Some((payload, ttl)) = found else {
                continue;
            };
            moved.keys += 1;
            if ttl > 0 {
                moved.with_ttl += 1;
            }
            by_port.entry(owner(&owners, key)?).or_default().push(vec![
                b"RESTORE".to_vec(),
                key.clone(),
                ttl.max(0).to_string().into_bytes(),
                payload,
                b"REPLACE".to_vec(),
            ]);
        }
        for (port, commands) in by_port {
            let conn = match targets.entry(port) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Conn::open(port, password)?)
                }
            };
            let args: Vec<Vec<&[u8]>> = commands
                .iter()
                .map(|c| c.iter().map(Vec::as_slice).collect())
                .collect();
            for reply in conn.pipeline(&args)? {
                if let Reply::Error(e) = reply {
                    bail!("RESTORE on port {port}: {e}");
                }
            }
        }
        Ok(())
    })?;
    Ok(moved)
}

/// Reads every key of the source back from the cluster: the same DUMP
/// payload, and a TTL where the source has one. Fails listing the first
/// keys that differ.
pub fn check_copy(source: u16, seed: u16, password: &str) -> anyhow::Result<Moved> {
    let mut src = Conn::open(source, password)?;
    let owners = slot_owners(&mut Conn::open(seed, password)?)?;
    let mut targets: BTreeMap<u16, Conn> = BTreeMap::new();
    let mut seen: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut with_ttl = 0;
    let mut wrong: Vec<String> = Vec::new();
    scan(&mut src, |src, keys| {
        let here = dump(src, &keys)?;
        for (key, found) in keys.iter().zip(here) {
            let Some((payload, ttl)) = found else {
                continue;
            };
            let port = owner(&owners, key)?;
            let conn = match targets.entry(port) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Conn::open(port, password)?)
                }
            };
            let there = dump(conn, std::slice::from_ref(key))?.pop().flatten();
            let same = match &there {
                Some((p, t)) => *p == payload && (ttl > 0) == (*t > 0),
                None => false,
            };
            if same {
                if ttl > 0 {
                    with_ttl += 1;
                }
                seen.insert(key.clone(), fnv(&payload));
            } else if wrong.len() < 10 {
                wrong.push(String::from_utf8_lossy(key).into_owned());
            }
        }
        Ok(())
    })?;
    if !wrong.is_empty() {
        bail!(
            "the cluster does not hold these keys as the old master does: {}",
            wrong.join(", ")
        );
    }
    let mut checksum = FNV_OFFSET;
    for (key, value) in &seen {
        checksum = fnv_step(fnv_step(checksum, key), &value.to_le_bytes());
    }
    Ok(Moved {
        keys: seen.len() as u64,
        with_ttl,
        checksum,
    })
}

/// A cluster holds database 0 only; keys elsewhere would be left behind.
fn refuse_other_databases(conn: &mut Conn) -> anyhow::Result<()> {
    let info = conn
        .call(&[b"INFO", b"keyspace"])?
        .text()
        .unwrap_or_default();
    let others: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("db") && !l.starts_with("db0:"))
        .collect();
    if !others.is_empty() {
        bail!(
            "the old Redis has keys outside database 0 ({}), which a cluster cannot hold: move them into database 0 first",
            others.join(", ")
        );
    }
    Ok(())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_step(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn fnv(bytes: &[u8]) -> u64 {
    fnv_step(FNV_OFFSET, bytes)
}
