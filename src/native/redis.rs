//! Redis in a bring-up: every node and sentinel through the generated
//! start.sh (which rebuilds the file the server runs from on each start),
//! the cluster through the generated cluster-create.sh, and, when a phase
//! moves Redis into a cluster, the copy of the data it held.

use super::bringup::Bringup;
use super::copy;
use super::probe;
use super::procs::Proc;
use crate::plan::identity::Secret;
use crate::plan::layout::TargetFile;
use crate::plan::topology::{RedisLayout, RedisNode, RedisStart, Topology};
use anyhow::{Context, bail};
use std::path::Path;
use std::time::{Duration, Instant};

impl Bringup {
    pub fn redis(&mut self) -> anyhow::Result<()> {
        let layout = self.topo.redis.clone();
        let mode = layout.data_start();
        for node in layout.data_nodes() {
            self.redis_node(node, mode)?;
        }
        if let Some(q) = self.topo.queue_redis.clone() {
            self.redis_node(&q.node, RedisStart::Server)?;
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
    pub fn redis_node(&mut self, node: &RedisNode, mode: RedisStart) -> anyhow::Result<()> {
        let since = Instant::now();
        if self.keep_running(&node.name) {
            return Ok(());
        }
        std::fs::create_dir_all(self.state_dir.join(&node.name))?;
        let launch = self
            .script("/bin/sh", &TargetFile::RedisStart.rel())
            .arg(mode.as_arg())
            .arg(&node.name);
        let kind = if mode == RedisStart::Sentinel {
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
            self.redis_node(node, RedisStart::Sentinel)?;
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
            .script("/bin/sh", &TargetFile::ClusterCreate.rel())
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
            let copied = copy::copy_keys(port, seed, &password, false, None)?;
            let checked = copy::check_copy(port, seed, &password, None)?;
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
