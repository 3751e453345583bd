//! The app's side of a deployment: the variables every target gives the
//! backend app, under the same names everywhere, so one image runs on
//! Compose, on the local target and on ECS. Each database URL names one
//! host (the proxy's endpoint for its role), so any driver parses it.

use super::identity::Secret;
use super::target::Target;
use super::topology::{RedisLayout, Topology};
use serde::Serialize;

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

/// The contract on a target with its own processes (Compose, local).
pub fn vars(topo: &Topology) -> Vec<Var> {
    let pg = &topo.postgres;
    let proxy = &topo.proxy;
    let password = secret_ref(Secret::AppDb);
    let mut out = vec![
        Var {
            name: "DATABASE_URL",
            value: format!(
                "postgres://{}:{password}@{}/{}",
                pg.user, proxy.write, topo.pgbouncer.write_db.alias
            ),
            what: "writes: one host, the proxy's write endpoint, balanced over every PgBouncer",
        },
        Var {
            name: "DATABASE_READ_URL",
            value: format!(
                "postgres://{}:{password}@{}/{}",
                pg.user, proxy.read, topo.pgbouncer.read_alias
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
            value: topo.redis.mode().to_owned(),
            what: "standalone, sentinel or cluster: how to build the Redis client",
        },
    ];
    let list = |nodes: Vec<String>| nodes.join(",");
    match &topo.redis {
        RedisLayout::Standalone { node, .. } => out.push(Var {
            name: "REDIS_URL",
            value: format!("redis://{}", node.endpoint),
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
            name: "BULLMQ_PREFIX",
            // In a cluster, a queue's keys must share one slot: BullMQ's
            // prefix carries the hash tag.
            value: if cluster { "{bull}" } else { "bull" }.to_owned(),
            what: "BullMQ's queue prefix (hash-tagged in cluster mode)",
        },
    ]);
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
        }
    }
}
