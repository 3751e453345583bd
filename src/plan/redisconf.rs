//! The settings of a Redis data node that a running server can take
//! (CONFIG SET), typed, in one list: redis.conf renders them and a
//! migration sets them on a running node and reads them back, so the two
//! can never disagree and nothing parses the rendered file.

use super::target::Target;
use super::topology::{RedisLayout, RedisNode};
use serde::Serialize;

/// A value as Redis reads it: a number, yes/no, or a word.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RedisValue {
    Number(u32),
    Flag(bool),
    Word(String),
}

impl RedisValue {
    /// As CONFIG SET takes it.
    pub fn as_arg(&self) -> String {
        match self {
            RedisValue::Number(n) => n.to_string(),
            RedisValue::Flag(b) => if *b { "yes" } else { "no" }.to_owned(),
            RedisValue::Word(w) => w.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Directive {
    pub key: &'static str,
    pub value: RedisValue,
}

fn d(key: &'static str, value: RedisValue) -> Directive {
    Directive { key, value }
}

/// A data node's run-time settings, in the groups redis.conf writes them
/// in (each group beside the lines a server takes only at start).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RedisConf {
    pub protection: Vec<Directive>,
    pub memory: Vec<Directive>,
    /// Sentinel mode: how a replica names itself to its master.
    pub announce: Vec<Directive>,
    /// Sentinel mode: how the master feeds replicas, and what it refuses
    /// without them.
    pub replication: Vec<Directive>,
    /// Cluster mode, after cluster-enabled and its state file.
    pub cluster: Vec<Directive>,
}

impl RedisConf {
    /// Every setting, in file order.
    pub fn all(&self) -> impl Iterator<Item = &Directive> {
        self.protection
            .iter()
            .chain(&self.memory)
            .chain(&self.announce)
            .chain(&self.replication)
            .chain(&self.cluster)
    }
}

/// The settings of `node` in `layout` on `target`.
pub fn plan(layout: &RedisLayout, node: &RedisNode, target: Target) -> RedisConf {
    use RedisValue::{Flag, Number, Word};
    let (RedisLayout::Standalone { common, .. }
    | RedisLayout::Sentinel { common, .. }
    | RedisLayout::Cluster { common, .. }) = layout;
    let mut conf = RedisConf {
        protection: vec![d("protected-mode", Flag(true))],
        memory: vec![
            d("maxmemory", Word(format!("{}mb", common.maxmemory_mb))),
            d("maxmemory-policy", Word(common.maxmemory_policy.to_owned())),
            d("appendonly", Flag(common.appendonly)),
        ],
        ..RedisConf::default()
    };
    let delay = d(
        "repl-diskless-sync-delay",
        Number(target.diskless_sync_delay()),
    );
    match layout {
        RedisLayout::Standalone { .. } => {}
        RedisLayout::Sentinel {
            min_replicas_to_write,
            ..
        } => {
            conf.announce = vec![
                d("replica-announce-ip", Word(node.endpoint.host.clone())),
                d("replica-announce-port", Number(node.endpoint.port.into())),
            ];
            conf.replication = vec![d("repl-diskless-sync", Flag(true)), delay];
            if let Some(n) = min_replicas_to_write {
                conf.replication
                    .push(d("min-replicas-to-write", Number(*n)));
                // Seconds a replica may lag and still count.
                conf.replication.push(d("min-replicas-max-lag", Number(10)));
            }
        }
        RedisLayout::Cluster {
            node_timeout_ms, ..
        } => {
            conf.cluster = vec![
                d("cluster-node-timeout", Number(*node_timeout_ms)),
                d("cluster-require-full-coverage", Flag(true)),
                d(
                    "cluster-announce-hostname",
                    Word(node.endpoint.host.clone()),
                ),
                d(
                    "cluster-preferred-endpoint-type",
                    Word("hostname".to_owned()),
                ),
                delay,
            ];
        }
    }
    conf
}
