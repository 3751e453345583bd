//! Redis's steps for every pair of modes: standalone, Sentinel and
//! Cluster, growing, shrinking or changing settings.

use super::*;
use crate::spec::types::EvictionPolicy;

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.spec().redis, &to.spec().redis);
    let (ta, tb) = (&from.compose, &to.compose);
    let cluster_aware = "cluster-aware clients follow MOVED/ASK redirects; multi-key commands and transactions need all their keys in one slot (hash tags such as {user:42}); only database 0 exists";
    match (a.mode, b.mode) {
        (RedisMode::Standalone, RedisMode::Sentinel) => {
            s.add.push(step(
                format!(
                    "Start Redis replicas {} of the current master",
                    redis_replicas(tb).join(", ")
                ),
                Risk::Online,
                "replicas sync from the running standalone node, which becomes the Sentinel-watched master without a restart",
                Action::StartRedisReplicas {
                    nodes: redis_replicas(tb).iter().map(|n| (*n).to_owned()).collect(),
                },
            ));
            s.add.push(step(
                format!(
                    "Start {} sentinels",
                    b.sentinel.as_ref().map_or(0, |s| s.count)
                ),
                Risk::Online,
                "they discover the replicas and each other from the master",
                Action::StartSentinels {
                    nodes: sentinels(tb).iter().map(|n| (*n).to_owned()).collect(),
                },
            ));
            s.clients.push(step(
                "Make clients Sentinel-aware",
                Risk::ClientChangeRequired,
                format!("clients ask the sentinels for master '{}' instead of a fixed address, or a failover leaves them writing to a replica", to.spec().project),
                Action::SwitchRedisClients {
                    mode: RedisMode::Sentinel,
                },
            ));
        }
        (RedisMode::Standalone | RedisMode::Sentinel, RedisMode::Cluster) => {
            let c = b.cluster.as_ref();
            s.add.push(step(
                format!(
                    "Build the Redis Cluster: {} shards x {} replica(s), beside the running Redis",
                    c.map_or(0, |c| c.shards),
                    c.map_or(0, |c| c.replicas_per_shard)
                ),
                Risk::Online,
                "a cluster cannot be converted from a non-cluster node in place: start the nodes and create the cluster empty",
                Action::BuildCluster {
                    nodes: data_nodes(tb).iter().map(|n| (*n).to_owned()).collect(),
                },
            ));
            // ElastiCache converts a group in place, in two modifications
            // that may carry no other change ("Modifying cluster mode"),
            // and reshards only once the group is a cluster: three
            // applies, each changing one thing (TRN004 refuses a pair
            // whose Redis ElastiCache cannot convert).
            s.add.push(step(
                "On AWS, apply 1 of 3: the ElastiCache group into cluster mode compatible, the services onto cluster clients",
                Risk::ClientChangeRequired,
                format!("AWS only. Drain the BullMQ queues first (stop adding jobs, let the workers finish): the services come back with the cluster prefix {{bull}}, and jobs left under bull are not seen. Then apply {from}'s Terraform again with -var redis_cluster_mode_override=compatible: the group's mode and its cluster-enabled parameter group change, nothing else of it; its data and endpoints stay, and the services are redeployed with cluster clients on its configuration endpoint, as ElastiCache requires before the next apply", from = from.name()),
                elsewhere("AWS only: ElastiCache's own conversion"),
            ));
            s.add.push(step(
                "Migrate the data into the cluster's slots",
                Risk::DataMigration,
                "copy every key with its TTL into the master of its slot (DUMP, then RESTORE ... REPLACE; never MIGRATE or redis-cli --cluster import without --cluster-copy, which delete from the live source), then compare the key count and a checksum of the values; keys in databases other than 0 must be merged into 0 first. `scaleplan migrate` copies while clients still write and checks at the cut-over; `scaleplan up --native` copies a stopped deployment",
                Action::CopyIntoCluster,
            ));
            s.clients.push(step(
                "Switch clients to cluster-aware clients",
                Risk::ClientChangeRequired,
                format!("{cluster_aware}. The cut-over: writes to the old Redis stop, the keys written since the copy are copied and checked again, then the clients move"),
                Action::CutOverToCluster,
            ));
            s.clients.push(step(
                "On AWS, apply 2 of 3: cluster mode enabled, one shard",
                Risk::ClientChangeRequired,
                format!("AWS only, once every service runs the cluster client on the configuration endpoint (apply 1 redeployed them): apply {from}'s Terraform with -var redis_cluster_mode_override=enabled. The mode changes alone and cannot be undone; the group is then a cluster of one shard", from = from.name()),
                elsewhere("AWS only: ElastiCache's own conversion"),
            ));
            s.clients.push(step(
                format!(
                    "On AWS, apply 3 of 3: {}'s Terraform, {} shards x {} replica(s)",
                    to.name(),
                    c.map_or(0, |c| c.shards),
                    c.map_or(0, |c| c.replicas_per_shard)
                ),
                Risk::Online,
                "AWS only: the cluster phase's files without the override. ElastiCache reshards online (slots move while the shards serve) and sets each shard's replicas",
                elsewhere("AWS only: ElastiCache's online resharding"),
            ));
            let mut old: Vec<String> = data_nodes(ta).iter().map(|n| (*n).to_owned()).collect();
            old.extend(sentinels(ta).iter().map(|n| (*n).to_owned()));
            s.remove.push(step(
                format!("Retire the {} Redis: {}", a.mode.as_str(), old.join(", ")),
                Risk::Online,
                "once no client uses it and the copy is checked; their data stays (Compose: `docker compose up -d --remove-orphans` stops them and keeps their volumes until `docker volume rm`; the local target keeps their directories under retired/)",
                Action::RetireRedis { nodes: old },
            ));
        }
        (x, y) if y < x => {
            s.add.push(loss(
                format!("Move Redis back from {} to {}", x.as_str(), y.as_str()),
                Risk::DataMigration,
                "a smaller topology is a new deployment: build it, copy the data, switch clients, retire the old one; failover protection is lost",
                manual("moving Redis back is a new deployment beside this one"),
            ));
            s.clients.push(step(
                format!("Switch clients to {} Redis", y.as_str()),
                Risk::ClientChangeRequired,
                "the discovery method changes with the mode",
                Action::SwitchRedisClients { mode: y },
            ));
        }
        (RedisMode::Sentinel, RedisMode::Sentinel) => {
            let added = only_in(&redis_replicas(tb), &redis_replicas(ta));
            let removed = only_in(&redis_replicas(ta), &redis_replicas(tb));
            if !added.is_empty() {
                s.add.push(step(
                    format!("Start Redis replicas {}", added.join(", ")),
                    Risk::Online,
                    "they sync from the master; the sentinels discover them",
                    Action::StartRedisReplicas { nodes: added },
                ));
            } else if !removed.is_empty() {
                s.remove.push(loss(
                    format!("Stop Redis replicas {}", removed.join(", ")),
                    Risk::Online,
                    "fewer replicas, fewer failover candidates; then SENTINEL RESET on each sentinel",
                    Action::StopRedisReplicas { nodes: removed },
                ));
            }
            if let (Some(sa), Some(sb)) = (&a.sentinel, &b.sentinel) {
                if sb.count != sa.count {
                    let title = format!("Change sentinels {} -> {}", sa.count, sb.count);
                    let why = "add or remove one sentinel at a time, waiting for the others to see it; SENTINEL RESET after removing";
                    if sb.count > sa.count {
                        s.add.push(step(
                            title,
                            Risk::Online,
                            why,
                            Action::StartSentinels {
                                nodes: only_in(&sentinels(tb), &sentinels(ta)),
                            },
                        ))
                    } else {
                        s.remove.push(loss(
                            title,
                            Risk::Online,
                            why,
                            Action::StopSentinels {
                                nodes: only_in(&sentinels(ta), &sentinels(tb)),
                            },
                        ))
                    }
                }
                if (
                    sb.quorum,
                    sb.down_after_ms,
                    sb.failover_timeout_ms,
                    sb.parallel_syncs,
                ) != (
                    sa.quorum,
                    sa.down_after_ms,
                    sa.failover_timeout_ms,
                    sa.parallel_syncs,
                ) {
                    s.settings.push(step(
                        "Update Sentinel settings with SENTINEL SET on each sentinel",
                        Risk::Online,
                        "quorum and timeouts change at run time",
                        Action::SentinelSettings,
                    ));
                }
            }
        }
        (RedisMode::Cluster, RedisMode::Cluster) => {
            if let (Some(ca), Some(cb)) = (&a.cluster, &b.cluster) {
                let added = only_in(&data_nodes(tb), &data_nodes(ta));
                if cb.shards > ca.shards {
                    s.add.push(step(
                        format!("Add {} shards and rebalance slots", cb.shards - ca.shards),
                        Risk::DataMigration,
                        "add the masters (redis-cli --cluster add-node) and move slots to them (--cluster rebalance --cluster-use-empty-masters); keys migrate online, slot by slot",
                        Action::GrowCluster {
                            nodes: added.clone(),
                        },
                    ));
                } else if cb.shards < ca.shards {
                    s.remove.push(loss(
                        format!("Remove {} shards", ca.shards - cb.shards),
                        Risk::DataMigration,
                        "move their slots to the remaining masters (--cluster reshard) before removing the nodes",
                        manual("removing shards moves slots off them first: redis-cli --cluster reshard"),
                    ));
                }
                if cb.replicas_per_shard > ca.replicas_per_shard {
                    s.add.push(step(
                        "Add replicas to every shard",
                        Risk::Online,
                        "redis-cli --cluster add-node --cluster-slave for each",
                        Action::GrowCluster { nodes: added },
                    ));
                } else if cb.replicas_per_shard < ca.replicas_per_shard {
                    s.remove.push(loss(
                        "Remove replicas from every shard",
                        Risk::Online,
                        "fewer replicas, less failover protection",
                        manual("removing cluster replicas: redis-cli --cluster del-node for each"),
                    ));
                }
            }
        }
        _ => {}
    }
    let mut runtime = Vec::new();
    changed(
        &mut runtime,
        "maxmemory (MB)",
        a.maxmemory_mb,
        b.maxmemory_mb,
    );
    changed(
        &mut runtime,
        "maxmemory-policy",
        a.maxmemory_policy.as_str(),
        b.maxmemory_policy.as_str(),
    );
    if !runtime.is_empty() && a.mode == b.mode {
        let shrink = b.maxmemory_mb < a.maxmemory_mb;
        let apply = step(
            format!(
                "Apply Redis {} with CONFIG SET on every node",
                runtime.join(", ")
            ),
            Risk::Online,
            if shrink {
                "a lower maxmemory evicts (or refuses writes under noeviction) at once"
            } else {
                "takes effect without a restart"
            },
            Action::RedisSettings,
        );
        let to_noeviction = b.maxmemory_policy == EvictionPolicy::Noeviction
            && a.maxmemory_policy != EvictionPolicy::Noeviction;
        if to_noeviction {
            // Before anything else: a worker or replica deployed by a later
            // step would queue jobs on a Redis that can still evict them.
            s.add.insert(
                0,
                Step {
                    why: "first, before anything queues on it: BullMQ's jobs and locks must never be evicted; migrate refuses while a node's used_memory is near maxmemory (noeviction would refuse writes at once), and cache keys need TTLs of their own from now on".to_owned(),
                    capacity_loss: shrink,
                    ..apply
                },
            )
        } else if shrink {
            s.remove.push(Step {
                capacity_loss: true,
                ..apply
            })
        } else if from.compose.queue_redis.is_none()
            && to.compose.queue_redis.is_some()
            && b.maxmemory_policy != EvictionPolicy::Noeviction
        {
            // The queues leave this Redis in the clients' stage: only then
            // may it evict (RED012's other way out).
            s.remove.insert(
                0,
                Step {
                    why: "only once the queues have moved onto their own Redis: until then an evicting policy could drop a waiting job or its lock".to_owned(),
                    ..apply
                },
            )
        } else {
            s.settings.push(apply)
        }
    }
    if a.version != b.version {
        s.settings.push(step(
            format!("Upgrade Redis {} -> {}", a.version, b.version),
            Risk::RollingRestart,
            "replicas first, then fail over and upgrade each old master",
            elsewhere("an upgrade needs the new version's binaries"),
        ));
    }
}
