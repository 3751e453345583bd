//! The Compose commands of each step of a transition plan: what an
//! operator runs for the step that `scaleplan migrate` carries out on the
//! local target.
//!
//! They assume one deployment directory that holds the running phase's
//! compose/ files, with the new phase's copied over them in place (`cp -R
//! out/<to>/compose/. <dir>/`): cp rewrites each file where it is, and a
//! container's single-file mount sees the new contents, so a reload reads
//! the new settings. The new docker-compose.yml no longer names the
//! services the new phase drops, so those are addressed by container name
//! (`<project>-<service>-1`, Compose's own).

use super::action::{Action, pgbouncers, postgres_replicas, sentinels};
use crate::plan::bullmq::{self, JobSet};
use crate::plan::identity::SUPERUSER;
use crate::plan::names;
use crate::plan::redisconf::{self, Directive};
use crate::plan::topology::{self, RedisLayout, RedisNode, Topology};

pub fn commands(action: &Action, from: &Topology, to: &Topology) -> Vec<String> {
    let list = |nodes: &[String]| nodes.join(" ");
    let up = |nodes: &str| format!("docker compose up -d --wait --no-deps {nodes}");
    let recreate = |n: &str| format!("docker compose up -d --wait --no-deps --force-recreate {n}");
    // A container's open-file limit applies when it starts: where the new
    // phase raises it, the proxy and the running PgBouncers are recreated
    // (`up` recreates a service whose definition changed, and is a no-op
    // once it matches), one at a time, before the reload.
    let proxy_limit = from.proxy.nofile != to.proxy.nofile;
    let bouncer_limit = from.pgbouncer.nofile != to.pgbouncer.nofile;
    let reload_proxy = format!("docker compose kill -s USR2 {}", to.proxy.name);
    let reload_proxy_cmds: Vec<String> = proxy_limit
        .then(|| up(&to.proxy.name))
        .into_iter()
        .chain([reload_proxy.clone()])
        .collect();
    let psql = |node: &str, sql: &str| {
        format!("docker compose exec -u postgres {node} psql -U {SUPERUSER} -c \"{sql}\"")
    };
    // A container of the old phase that the new file no longer names.
    let container = |name: &str| names::compose_container(&from.project, name);
    let retire_nodes = |nodes: &[String]| {
        if nodes.is_empty() {
            return Vec::new();
        }
        let names: Vec<String> = nodes.iter().map(|n| container(n)).collect();
        vec![
            format!("docker stop {}", names.join(" ")),
            // Their volumes stay until `docker volume rm`.
            format!("docker rm {}", names.join(" ")),
        ]
    };
    let redis_cli = |node: &RedisNode, args: &str| {
        format!(
            "docker compose exec {} redis-cli -p {} {args}",
            node.name, node.endpoint.port
        )
    };
    let pg = &to.postgres;
    // The standbys that run already: new ones start with the new files.
    let replicas: Vec<&str> = postgres_replicas(to)
        .into_iter()
        .filter(|r| postgres_replicas(from).contains(r))
        .collect();
    let bouncers = pgbouncers(to);
    let apps = app_services(to).join(" ");
    match action {
        Action::Nothing | Action::ClientCode | Action::Elsewhere { .. } | Action::Manual { .. } => {
            Vec::new()
        }
        Action::AddPostgresReplicas { nodes } | Action::StartSentinels { nodes } => {
            vec![up(&list(nodes))]
        }
        // Each container with its new limits, the replicas first (`up`
        // leaves one that a restart above already recreated).
        Action::ResizePostgres => replicas
            .iter()
            .copied()
            .chain([pg.primary.name.as_str()])
            .map(up)
            .collect(),
        Action::StartRedisReplicas { nodes } => {
            let mut out = vec![up(&list(nodes))];
            if let (
                Some(master),
                RedisLayout::Sentinel {
                    min_replicas_to_write,
                    nodes: all,
                    ..
                },
            ) = (data_nodes_of(to).first(), &to.redis)
            {
                // The master asks for replicas only once they are in sync
                // (given up after five minutes: a sync that long needs a
                // look).
                out.push(format!(
                    "docker compose exec {} timeout 300 sh -c 'until [ \"$(redis-cli -p {} INFO replication | grep -c state=online)\" -ge {} ]; do sleep 1; done'",
                    master.name,
                    master.endpoint.port,
                    all.len() - 1
                ));
                // What refuses writes without replicas, from the plan's
                // list of run-time settings (as `migrate` sets it).
                if min_replicas_to_write.is_some() {
                    let conf = redisconf::plan(&to.redis, master, to.target);
                    let later: Vec<&Directive> = conf
                        .replication
                        .iter()
                        .filter(|d| d.key.starts_with("min-replicas"))
                        .collect();
                    out.push(redis_cli(master, &config_set(&later)));
                }
            }
            out
        }
        Action::StartPgbouncers { nodes } => std::iter::once(up(&list(nodes)))
            .chain(reload_proxy_cmds)
            .collect(),
        Action::ReloadPostgres => std::iter::once(pg.primary.name.as_str())
            .chain(replicas.iter().copied())
            .map(|n| psql(n, "SELECT pg_reload_conf()"))
            .collect(),
        Action::RestartPostgres { replicas_first } => {
            let mut order: Vec<&str> = replicas.clone();
            if *replicas_first {
                order.push(&pg.primary.name);
            } else {
                order.insert(0, &pg.primary.name);
            }
            order.into_iter().map(recreate).collect()
        }
        Action::RollPgbouncers { restart: false } | Action::RouteReads => bouncers
            .iter()
            .flat_map(|n| {
                let kept = bouncer_ran(from, n) && bouncer_limit;
                kept.then(|| up(n))
                    .into_iter()
                    .chain([format!("docker compose kill -s HUP {n}")])
            })
            .chain(reload_proxy_cmds)
            .collect(),
        Action::RollPgbouncers { restart: true } => bouncers
            .iter()
            .map(|n| recreate(n))
            .chain(reload_proxy_cmds)
            .collect(),
        Action::RemovePostgresReplicas { nodes } => {
            // Out of the proxy's rotation first.
            let mut out = vec![reload_proxy];
            out.extend(retire_nodes(nodes));
            // A slot left behind keeps WAL on the primary for no one.
            let slots = from
                .postgres
                .replicas
                .iter()
                .filter(|r| nodes.contains(&r.name))
                .filter_map(|r| r.slot.as_deref());
            out.extend(slots.map(|slot| {
                psql(
                    &pg.primary.name,
                    &format!("SELECT pg_drop_replication_slot('{slot}')"),
                )
            }));
            out
        }
        Action::StopPgbouncers { nodes } => {
            let names: Vec<String> = nodes.iter().map(|n| container(n)).collect();
            vec![
                reload_proxy,
                // SIGINT: PgBouncer's safe shutdown, after the transactions
                // in flight.
                format!("docker kill -s INT {}", names.join(" ")),
                format!("docker wait {}", names.join(" ")),
                format!("docker rm {}", names.join(" ")),
            ]
        }
        Action::StopRedisReplicas { nodes } | Action::StopSentinels { nodes } => {
            let mut out = retire_nodes(nodes);
            if let RedisLayout::Sentinel {
                sentinels,
                master_name,
                ..
            } = &to.redis
            {
                out.extend(
                    sentinels
                        .iter()
                        .map(|s| redis_cli(s, &format!("SENTINEL RESET {master_name}"))),
                );
            }
            out
        }
        Action::RetireRedis { nodes } => {
            // Sentinels first, so none fails over a master that is merely
            // stopping.
            let mut order: Vec<String> = nodes.clone();
            let old_sentinels = sentinels(from);
            order.sort_by_key(|n| !old_sentinels.contains(&n.as_str()));
            retire_nodes(&order)
        }
        Action::SentinelSettings => match &to.redis {
            RedisLayout::Sentinel {
                sentinels,
                master_name,
                ..
            } => {
                let settings: String = to
                    .redis
                    .sentinel_settings()
                    .iter()
                    .map(|(k, v)| format!(" {k} {v}"))
                    .collect();
                sentinels
                    .iter()
                    .map(|s| redis_cli(s, &format!("SENTINEL SET {master_name}{settings}")))
                    .collect()
            }
            _ => Vec::new(),
        },
        // Every run-time setting of each node, from the plan's list (the
        // one its redis.conf holds and `migrate` sets).
        Action::RedisSettings => data_nodes_of(to)
            .iter()
            .map(|n| {
                let conf = redisconf::plan(&to.redis, n, to.target);
                redis_cli(n, &config_set(&conf.all().collect::<Vec<_>>()))
            })
            .collect(),
        Action::BuildCluster { nodes } | Action::GrowCluster { nodes } => vec![
            up(&list(nodes)),
            format!(
                "docker compose run --rm --no-deps {}",
                topology::CLUSTER_CREATE
            ),
        ],
        Action::CopyIntoCluster => import(from, to).into_iter().collect(),
        // redis-cli's import moves keys with MIGRATE, a write that a pause
        // or a fence on the source would refuse: with Compose, the app
        // stops writing for the copy instead.
        Action::CutOverToCluster => {
            let mut out = vec![format!("docker compose stop {apps}")];
            out.extend(import(from, to));
            out.push(up(&apps));
            out
        }
        Action::Workloads { run, retire } => {
            // Compose's own rollout of a changed service: new replicas
            // added, changed ones recreated.
            let mut out = vec![up(&list(run))];
            out.extend(retire_nodes(retire));
            // The edge's server slots follow the replica count in its
            // rewritten edge.cfg: a reload reads them.
            out.push(format!("docker compose kill -s USR2 {}", topology::EDGE));
            out
        }
        Action::Monitoring { retire } => {
            let mut out = retire_nodes(retire);
            out.push(up(&to.monitor.services().join(" ")));
            // prometheus.yml and the rules were rewritten in place: a
            // reload reads them.
            out.push(format!(
                "docker compose kill -s HUP {}",
                to.monitor.prometheus.host
            ));
            out
        }
        Action::StartQueueRedis => vec![up(names::QUEUE_REDIS)],
        // At run time, then the container's new memory limit (`up` is a
        // no-op where the definition did not change).
        Action::QueueRedisSettings => to
            .queue_redis
            .iter()
            .flat_map(|q| {
                let conf = redisconf::plan(&q.layout(), &q.node, to.target);
                [
                    redis_cli(&q.node, &config_set(&conf.all().collect::<Vec<_>>())),
                    up(&q.node.name),
                ]
            })
            .collect(),
        // First the check that no job is left where the queues were (on
        // every node of it: a replica holds its master's keys, and the
        // count only has to find one), then the clients reconnect from the
        // new contract.
        Action::MoveQueues { own_redis } => {
            let source: Vec<&RedisNode> = if *own_redis {
                data_nodes_of(from)
            } else {
                from.queue_redis.iter().map(|q| &q.node).collect()
            };
            source
                .into_iter()
                .map(unfinished_check)
                .chain([format!(
                    "docker compose up -d --wait --no-deps --force-recreate {apps}"
                )])
                .collect()
        }
        Action::SwitchRedisClients { .. } => {
            let mut out = vec![format!(
                "docker compose up -d --wait --no-deps --force-recreate {apps}"
            )];
            // Then, with clients that follow a failover, the data nodes that
            // ran before take their new definition (one that starts as
            // `replicated` follows the master it followed last; one left on
            // its standalone definition would come back a master after a
            // failover). `up` recreates only a node whose definition changed.
            out.extend(
                data_nodes_of(to)
                    .into_iter()
                    .filter(|n| data_nodes_of(from).iter().any(|o| o.name == n.name))
                    .map(|n| up(&n.name)),
            );
            out
        }
    }
}

/// A command that fails while `node` holds an unfinished BullMQ job (a
/// queue found by its meta hash; its waiting, paused and active lists and
/// delayed, prioritized and waiting-children sets counted).
fn unfinished_check(node: &RedisNode) -> String {
    let cli = format!("redis-cli -p {}", node.endpoint.port);
    let counts: Vec<String> = [JobSet::List, JobSet::SortedSet]
        .into_iter()
        .map(|set| {
            let suffixes: Vec<&str> = bullmq::UNFINISHED
                .iter()
                .filter(|(_, s)| *s == set)
                .map(|(suffix, _)| *suffix)
                .collect();
            format!(
                "for s in {}; do n=$((n + $({cli} {} \"$b:$s\"))); done;",
                suffixes.join(" "),
                set.count_command()
            )
        })
        .collect();
    format!(
        "docker compose exec -T {name} sh -c 'n=0; for m in $({cli} --scan --pattern \"*{meta}\"); do b=${{m%{meta}}}; {counts} done; echo \"$n unfinished BullMQ job(s) on {name}\"; [ \"$n\" -eq 0 ]'",
        name = node.name,
        meta = bullmq::META_SUFFIX,
        counts = counts.join(" ")
    )
}

/// Every key of the old master copied into the cluster with its TTL,
/// replacing what the cluster holds under the same name. `--cluster-copy`
/// keeps the source's keys: without it redis-cli deletes each one from the
/// live source as it moves it. The source is the master the sentinels name
/// now, asked from inside the network.
fn import(from: &Topology, to: &Topology) -> Option<String> {
    let seed = data_nodes_of(to).first().copied()?;
    let old = data_nodes_of(from).first().copied()?;
    let source = match &from.redis {
        RedisLayout::Sentinel {
            sentinels,
            master_name,
            ..
        } => {
            let s = sentinels.first()?;
            format!(
                "\"$(redis-cli -h {} -p {} SENTINEL get-master-addr-by-name {master_name} | paste -sd: -)\"",
                s.name, s.endpoint.port
            )
        }
        _ => format!("{}:{}", old.name, old.endpoint.port),
    };
    Some(format!(
        "docker compose exec {} sh -c 'redis-cli --cluster import {}:{} --cluster-from {source} --cluster-from-pass \"$REDISCLI_AUTH\" --cluster-copy --cluster-replace'",
        seed.name, seed.name, seed.endpoint.port
    ))
}

/// The PgBouncer `name` ran in the old phase (a new one starts with the
/// new limits).
fn bouncer_ran(from: &Topology, name: &str) -> bool {
    pgbouncers(from).contains(&name)
}

fn data_nodes_of(t: &Topology) -> Vec<&RedisNode> {
    t.redis.data_nodes()
}

fn app_services(t: &Topology) -> Vec<String> {
    t.workloads().into_iter().map(|w| w.name).collect()
}

/// One CONFIG SET of several settings (Redis 7 takes pairs).
fn config_set(settings: &[&Directive]) -> String {
    let pairs: Vec<String> = settings
        .iter()
        .map(|d| format!("{} {}", d.key, d.value.as_arg()))
        .collect();
    format!("CONFIG SET {}", pairs.join(" "))
}
