//! The app's side of a deployment: the variables every target gives the
//! backend app, under the same names everywhere, so one image runs on
//! Compose, on the local target and on ECS. Each database URL names one
//! host (the proxy's endpoint for its role), so any driver parses it.

use super::identity::Secret;
use super::target::Target;
use super::topology::{RedisLayout, Topology, queue_names};
use crate::spec::types::Phase;
use serde::Serialize;

/// BullMQ's own default prefix, and the contract's outside cluster mode.
pub const BULLMQ_DEFAULT_PREFIX: &str = "bull";

/// A BullMQ queue and the prefix its Queue and Worker are built with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueuePrefix {
    pub queue: String,
    pub prefix: String,
}

/// Each queue of the phase with its prefix. In cluster mode every queue
/// gets a hash tag of its own name (`{push-notifications}`): all of one
/// queue's keys (`<prefix>:<queue>:wait`, `:active`, `:events`, ...) then
/// hash to one slot, as BullMQ's Lua scripts need, and different queues to
/// different slots, so they spread over the shards. Outside a cluster
/// every queue shares BullMQ's default prefix, `bull`.
pub fn queue_prefixes(phase: &Phase, cluster: bool) -> Vec<QueuePrefix> {
    prefixes(queue_names(phase), cluster)
}

fn prefixes(queues: Vec<String>, cluster: bool) -> Vec<QueuePrefix> {
    queues
        .into_iter()
        .map(|queue| QueuePrefix {
            prefix: if cluster {
                format!("{{{queue}}}")
            } else {
                BULLMQ_DEFAULT_PREFIX.to_owned()
            },
            queue,
        })
        .collect()
}

/// The value of BULLMQ_QUEUES: `queue=prefix` pairs joined by commas (the
/// contract leaves the variable out when no worker declares
/// notifications). Queue names are DNS labels and prefixes add only
/// braces, so neither holds `,` or `=`.
pub fn bullmq_queues(prefixes: &[QueuePrefix]) -> String {
    prefixes
        .iter()
        .map(|q| format!("{}={}", q.queue, q.prefix))
        .collect::<Vec<_>>()
        .join(",")
}

/// The value of SOCKETIO_ADAPTER: `sharded` in cluster mode, where the
/// app must use @socket.io/redis-adapter's `createShardedAdapter` (Redis 7
/// sharded pub/sub, SPUBLISH: a message reaches only its channel's shard),
/// and `redis` (`createAdapter`, PUBLISH) otherwise. A classic PUBLISH in
/// a cluster is forwarded to every node, so it never scales with shards.
pub fn socketio_adapter(cluster: bool) -> &'static str {
    if cluster { "sharded" } else { "redis" }
}

/// One variable of the contract. Where a value holds a secret it names the
/// secret's variable (`${SCALEPLAN_APP_DB_PASSWORD}`): Compose
/// interpolates it, `up --native` puts the value in, and no value is ever
/// rendered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Var {
    pub name: &'static str,
    pub value: String,
    /// What the app does with it, for the generated file's comment.
    pub what: &'static str,
}

/// A reference to a secret's variable.
pub fn secret_ref(s: Secret) -> String {
    format!("${{{}}}", s.var())
}

/// Where the contract's addresses point: inside the target (the proxy's
/// and the nodes' own endpoints), or on the machine's published ports.
struct Addresses {
    write: String,
    read: String,
    /// A standalone node's address; None: the layout's own endpoints.
    redis: Option<String>,
    /// The queue Redis's address; None: its own endpoint.
    queue_redis: Option<String>,
}

/// The contract on a target with its own processes (Compose, local).
pub fn vars(topo: &Topology) -> Vec<Var> {
    vars_at(
        topo,
        &Addresses {
            write: topo.proxy.write.to_string(),
            read: topo.proxy.read.to_string(),
            redis: None,
            queue_redis: None,
        },
    )
}

/// The contract for an app run on the machine beside a Compose deployment
/// (`npm run start:dev` on the laptop): the same variables, naming the
/// ports Compose publishes on 127.0.0.1. Only a standalone Redis has one:
/// sentinels answer with the master's address on the project's network and
/// cluster nodes redirect (MOVED) to theirs, names this machine cannot
/// resolve, so with Sentinel or Cluster the app runs inside the project
/// (None).
pub fn host_vars(topo: &Topology) -> Option<Vec<Var>> {
    let host = topo.host_ports.as_ref()?;
    let RedisLayout::Standalone { .. } = topo.redis else {
        return None;
    };
    let loopback = |port: u16| format!("127.0.0.1:{port}");
    Some(vars_at(
        topo,
        &Addresses {
            write: loopback(host.proxy_write),
            read: loopback(host.proxy_read),
            redis: Some(loopback(host.redis)),
            queue_redis: Some(loopback(host.queue_redis)),
        },
    ))
}

fn vars_at(topo: &Topology, at: &Addresses) -> Vec<Var> {
    let pg = &topo.postgres;
    let password = secret_ref(Secret::AppDb);
    let mut out = vec![
        Var {
            name: "DATABASE_URL",
            value: format!(
                "postgres://{}:{password}@{}/{}",
                pg.user, at.write, topo.pgbouncer.write_db.alias
            ),
            what: "writes: one host, the proxy's write endpoint, balanced over every PgBouncer",
        },
        Var {
            name: "DATABASE_READ_URL",
            value: format!(
                "postgres://{}:{password}@{}/{}",
                pg.user, at.read, topo.pgbouncer.read_alias
            ),
            what: "reads: the read endpoint; PgBouncer's read pools reach the healthy replicas (the primary without any)",
        },
        Var {
            name: "DATABASE_SSL",
            value: "false".to_owned(),
            what: "TLS to the database endpoint",
        },
        Var {
            name: "REDIS_MODE",
            value: topo.redis.mode().as_str().to_owned(),
            what: "standalone, sentinel or cluster: how to build the Redis client",
        },
    ];
    let list = |nodes: Vec<String>| nodes.join(",");
    match &topo.redis {
        RedisLayout::Standalone { node, .. } => out.push(Var {
            name: "REDIS_URL",
            value: format!(
                "redis://{}",
                at.redis
                    .clone()
                    .unwrap_or_else(|| node.endpoint.to_string())
            ),
            what: "standalone: the node (the password is REDIS_PASSWORD)",
        }),
        RedisLayout::Sentinel {
            sentinels,
            master_name,
            ..
        } => {
            out.push(Var {
                name: "REDIS_SENTINELS",
                value: list(sentinels.iter().map(|s| s.endpoint.to_string()).collect()),
                what: "sentinel: every sentinel, host:port",
            });
            out.push(Var {
                name: "REDIS_SENTINEL_NAME",
                value: master_name.clone(),
                what: "sentinel: the master's name the sentinels know",
            });
        }
        RedisLayout::Cluster { shards, .. } => out.push(Var {
            name: "REDIS_CLUSTER_NODES",
            value: list(
                shards
                    .iter()
                    .map(|s| s.master.endpoint.to_string())
                    .collect(),
            ),
            what: "cluster: the first master of every shard, host:port (the client finds the rest)",
        }),
    }
    let cluster = matches!(topo.redis, RedisLayout::Cluster { .. });
    out.extend([
        Var {
            name: "REDIS_PASSWORD",
            value: secret_ref(Secret::Redis),
            what: "every Redis node and sentinel",
        },
        Var {
            name: "REDIS_TLS",
            value: matches!(topo.target, Target::Cloud).to_string(),
            what: "TLS to Redis",
        },
        Var {
            name: "REDIS_KEY_PREFIX",
            value: format!("{}:", topo.project),
            what: "a prefix for the app's keys",
        },
        Var {
            name: "SOCKETIO_ADAPTER",
            value: socketio_adapter(cluster).to_owned(),
            what: "the Socket.IO Redis adapter: sharded (@socket.io/redis-adapter createShardedAdapter, Redis 7 sharded pub/sub, its subscriber a cluster client that sends each SSUBSCRIBE to its slot's node: node-redis's, or ioredis's with shardedSubscribers: true) in cluster mode, redis (createAdapter) otherwise",
        },
    ]);
    // Only where the phase runs queues: its Redis does not evict them.
    // With a queue Redis of their own, BullMQ connects there, a
    // standalone node: no hash tags, whatever the phase's Redis is.
    let queue_cluster = topo.queues_on_cluster();
    if topo.bullmq {
        if let Some(q) = &topo.queue_redis {
            out.push(Var {
                name: "BULLMQ_REDIS_URL",
                value: format!(
                    "redis://{}",
                    at.queue_redis
                        .clone()
                        .unwrap_or_else(|| q.node.endpoint.to_string())
                ),
                what: "BullMQ's own Redis (queue_redis), a standalone node that never evicts: every Queue, Worker and QueueEvents connects here, not to the phase's Redis (the password is REDIS_PASSWORD, TLS as REDIS_TLS)",
            });
        }
        out.push(Var {
            name: "BULLMQ_PREFIX",
            // In a cluster, a queue's keys must share one slot: BullMQ's
            // prefix carries the hash tag.
            value: if queue_cluster { "{bull}" } else { "bull" }.to_owned(),
            what: "BullMQ's prefix for a queue not in BULLMQ_QUEUES (hash-tagged in cluster mode, where every such queue shares the tag's slot); only where the phase runs queues (app.queues, or a worker that uses redis), on a Redis that does not evict",
        });
    }
    // Only where a worker sends notifications: an env file holds no
    // empty value.
    if !topo.queues.is_empty() {
        out.push(Var {
            name: "BULLMQ_QUEUES",
            value: bullmq_queues(&prefixes(topo.queues.clone(), queue_cluster)),
            what: "the workers' BullMQ queues as queue=prefix pairs, comma-separated; in cluster mode each prefix is the queue's own hash tag, so each queue's keys share one slot and different queues spread over the shards",
        });
    }
    out
}

/// `${NAME}` references in `text` replaced by `lookup(NAME)`.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        match tail.find('}') {
            Some(end) => {
                let name = &tail[..end];
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&rest[at..at + 3 + end]),
                }
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_filled_and_unknown_ones_kept() {
        let filled = substitute("postgres://app:${A}@h/${B}x${C", |n| {
            (n == "A").then(|| "pw".to_owned())
        });
        assert_eq!(filled, "postgres://app:pw@h/${B}x${C");
    }

    #[test]
    fn each_mode_gives_its_own_variables_and_urls_name_one_host() {
        for (mode, names) in [
            ("standalone", vec!["REDIS_URL"]),
            ("sentinel", vec!["REDIS_SENTINELS", "REDIS_SENTINEL_NAME"]),
            ("cluster", vec!["REDIS_CLUSTER_NODES"]),
        ] {
            let redis = match mode {
                "sentinel" => {
                    serde_json::json!({"mode": "sentinel", "replicas": 1, "sentinel": {"count": 3, "quorum": 2}})
                }
                "cluster" => serde_json::json!({"mode": "cluster", "cluster": {"shards": 3}}),
                _ => serde_json::json!({}),
            };
            let planned = crate::plan::testing::planned(&[serde_json::json!({
                "redis": redis,
                "postgres": {"read_replicas": 1},
            })]);
            let vars = vars(&planned.compose);
            let all: Vec<&str> = vars.iter().map(|v| v.name).collect();
            for name in names {
                assert!(all.contains(&name), "{mode}: {all:?}");
            }
            let url = &vars
                .iter()
                .find(|v| v.name == "DATABASE_URL")
                .unwrap()
                .value;
            assert_eq!(
                url,
                "postgres://app:${SCALEPLAN_APP_DB_PASSWORD}@pg-proxy:5432/demo"
            );
            assert_eq!(
                vars.iter().find(|v| v.name == "REDIS_MODE").unwrap().value,
                mode
            );
            assert_eq!(
                vars.iter()
                    .find(|v| v.name == "SOCKETIO_ADAPTER")
                    .unwrap()
                    .value,
                if mode == "cluster" {
                    "sharded"
                } else {
                    "redis"
                }
            );
            // No worker sends notifications: no queues.
            assert!(!all.contains(&"BULLMQ_QUEUES"), "{all:?}");
        }
    }

    #[test]
    fn each_notification_queue_gets_its_own_hash_tag_in_a_cluster() {
        let workers = serde_json::json!([
            {"name": "notifications", "image": "x/n:1", "uses": ["redis"],
             "notifications": {"per_user_per_hour": 2, "p95_latency_ms": 200, "concurrency": 50,
                               "broadcasts_per_hour": 1}},
            {"name": "digest", "image": "x/d:1", "uses": ["redis"],
             "notifications": {"per_user_per_hour": 1, "p95_latency_ms": 500, "concurrency": 5}},
            {"name": "etl", "image": "x/e:1", "uses": ["postgres"]},
        ]);
        let spec = crate::spec::testing::phase(&[serde_json::json!({"workers": workers})]);
        assert_eq!(
            queue_names(&spec),
            [
                "push-notifications",
                "broadcast-notifications",
                "push-digest"
            ]
        );
        assert_eq!(
            bullmq_queues(&queue_prefixes(&spec, true)),
            "push-notifications={push-notifications},broadcast-notifications={broadcast-notifications},push-digest={push-digest}"
        );
        assert_eq!(
            bullmq_queues(&queue_prefixes(&spec, false)),
            "push-notifications=bull,broadcast-notifications=bull,push-digest=bull"
        );
        for (redis, expected) in [
            (
                serde_json::json!({"mode": "cluster", "cluster": {"shards": 3}}),
                "push-notifications={push-notifications},broadcast-notifications={broadcast-notifications},push-digest={push-digest}",
            ),
            (
                serde_json::json!({"mode": "sentinel", "replicas": 1, "sentinel": {"count": 3, "quorum": 2}}),
                "push-notifications=bull,broadcast-notifications=bull,push-digest=bull",
            ),
        ] {
            let planned = crate::plan::testing::planned(&[serde_json::json!({
                "redis": redis,
                "workers": workers,
            })]);
            for topo in [&planned.compose, &planned.local] {
                let vars = vars(topo);
                let queues = vars.iter().find(|v| v.name == "BULLMQ_QUEUES").unwrap();
                assert_eq!(queues.value, expected);
            }
        }
        assert_eq!(socketio_adapter(true), "sharded");
        assert_eq!(socketio_adapter(false), "redis");
    }
}
