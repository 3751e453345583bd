//! The architecture diagram of a planned phase: clients, the edge, the app
//! with its services and workers, the PgBouncers and the proxy, PostgreSQL
//! with its replication, Redis in its mode, the monitoring, and one
//! subgraph per region where the phase has regions. Read from the plan
//! only (the cloud nodes: Compose's names at the spec's sizes; the cloud
//! plan's regions), so the diagram cannot drift from the files beside it.
//!
//! The primary region is drawn as the Compose and local targets run it
//! (the edge, pg-proxy, Prometheus); in the cloud a load balancer, service
//! discovery and CloudWatch take those places.

use super::format::thousands;
use super::mermaid::{Direction, Edge, Flowchart, Group, Kind, Line, Node, id};
use crate::plan::PlannedPhase;
use crate::plan::cloud::RegionPlan;
use crate::plan::names;
use crate::plan::topology::{RedisLayout, RedisNode, Resources, ServiceTier, Topology};

/// The ids a region's tiers are drawn with, for its edges.
struct Tiers {
    pgbouncer: String,
    redis: String,
    postgres: String,
    /// The read replicas' subgraph, where there are replicas.
    replicas: Option<String>,
}

fn size(r: &Resources) -> String {
    format!("{} vCPU · {} MB", r.cpu, r.memory_mb)
}

/// The architecture of `phase`.
pub fn architecture(phase: &PlannedPhase) -> Flowchart {
    let spec = phase.spec();
    // The cloud's nodes: the same names as Compose's, at the spec's sizes
    // rather than capped to one machine.
    let topo = &phase.cloud_nodes;
    let mut c = Flowchart::new(Direction::LeftRight);
    let users = id("c", "users");
    c.nodes.push(Node::new(
        users.clone(),
        Kind::Client,
        vec![
            "users".into(),
            format!(
                "{}-{} concurrent",
                thousands(spec.users.min.into()),
                thousands(spec.users.max.into())
            ),
        ],
    ));
    if spec.regions.is_empty() {
        let (groups, nodes, tiers) = primary_region(topo, "");
        c.groups.extend(groups);
        c.nodes.extend(nodes);
        wire_primary(&mut c, topo, &users, "", &tiers);
        monitoring(&mut c, topo, &tiers);
    } else {
        let mut primary_tiers = None;
        for region in &phase.cloud.regions {
            let label = format!(
                "region {} · {} · {}",
                region.name,
                if region.primary {
                    "primary"
                } else {
                    "secondary"
                },
                region.aws_region
            );
            let mut g = Group::new(id("region", &region.name), label);
            if region.primary {
                // Unprefixed: the primary region is the deployment the
                // earlier phases ran, and a diff shows it unchanged.
                let (groups, nodes, tiers) = primary_region(topo, "");
                g.groups.extend(groups);
                g.nodes.extend(nodes);
                c.groups.push(g);
                wire_primary(&mut c, topo, &users, "", &tiers);
                primary_tiers = Some(tiers);
            } else {
                c.groups.push(g);
            }
        }
        // Secondary regions after the primary: their replicas stream from
        // the primary's writer and their writes cross to it.
        let writer = id("pg", &topo.postgres.primary.name);
        for (i, region) in phase.cloud.regions.iter().enumerate() {
            if !region.primary {
                secondary_region(&mut c, i, region, topo, &users, &writer);
            }
        }
        if let Some(tiers) = primary_tiers {
            monitoring(&mut c, topo, &tiers);
        }
    }
    c
}

/// The tiers of the region that holds the writer (or of a phase without
/// regions), named as the Compose and local targets name them; `prefix`
/// keeps the ids apart from other regions'.
fn primary_region(topo: &Topology, prefix: &str) -> (Vec<Group>, Vec<Node>, Tiers) {
    let p = |name: &str| format!("{prefix}{name}");
    let mut groups = Vec::new();
    let mut nodes = Vec::new();
    nodes.push(Node::new(
        id("edge", &p("edge")),
        Kind::Edge,
        vec!["edge".into(), "load balancer, sticky sessions".into()],
    ));
    // The app and what runs beside it.
    let mut app = Group::new(id("tier", &p("app")), "app");
    app.nodes.push(Node::new(
        id("app", &p(&topo.app.name)),
        Kind::App,
        vec![
            format!("{} × {}", topo.app.name, topo.app.replicas),
            size(&topo.app.resources),
            format!(":{}", topo.app.port),
        ],
    ));
    for s in &topo.services {
        app.nodes.push(workload(s, Kind::Service, prefix));
    }
    for w in &topo.workers {
        app.nodes.push(workload(w, Kind::Worker, prefix));
    }
    groups.push(app);
    nodes.push(Node::new(
        id("proxy", &p(&topo.proxy.name)),
        Kind::Proxy,
        vec![
            format!("{} (HAProxy)", topo.proxy.name),
            "one endpoint for writes, one for reads".into(),
        ],
    ));
    let pgb = &topo.pgbouncer;
    let mut bouncers = Group::new(
        id("tier", &p("pgbouncer")),
        format!(
            "PgBouncer {} · {} pooling · pool {}",
            pgb.version,
            pool_mode(pgb),
            pgb.default_pool_size
        ),
    );
    for b in &pgb.instances {
        bouncers.nodes.push(Node::new(
            id("pgb", &p(&b.name)),
            Kind::Pgbouncer,
            vec![
                b.name.clone(),
                format!("{} clients max", thousands(pgb.max_client_conn.into())),
            ],
        ));
    }
    groups.push(bouncers);
    let pg = &topo.postgres;
    let mut postgres = Group::new(
        id("tier", &p("postgres")),
        format!("PostgreSQL {}", pg.version),
    );
    postgres.nodes.push(Node::new(
        id("pg", &p(&pg.primary.name)),
        Kind::Primary,
        vec![
            format!("{} (writes)", pg.primary.name),
            size(&pg.primary.resources),
        ],
    ));
    let replicas_id = id("tier", &p("replicas"));
    if !pg.replicas.is_empty() {
        let mut replicas = Group::new(replicas_id.clone(), "read replicas");
        for r in &pg.replicas {
            replicas.nodes.push(Node::new(
                id("pg", &p(&r.name)),
                Kind::Replica,
                vec![r.name.clone(), size(&r.resources)],
            ));
        }
        postgres.groups.push(replicas);
    }
    groups.push(postgres);
    let redis = redis_group(&topo.redis, prefix);
    let tiers = Tiers {
        pgbouncer: id("tier", &p("pgbouncer")),
        redis: redis.id.clone(),
        postgres: id("tier", &p("postgres")),
        replicas: (!pg.replicas.is_empty()).then_some(replicas_id),
    };
    groups.push(redis);
    (groups, nodes, tiers)
}

fn pool_mode(pgb: &crate::plan::topology::PgbouncerTier) -> String {
    serde_json::to_value(pgb.pool_mode)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn workload(s: &ServiceTier, kind: Kind, prefix: &str) -> Node {
    let mut label = vec![format!("{} × {}", s.name, s.replicas), size(&s.resources)];
    match s.port {
        Some(port) => label.push(format!(":{port}")),
        None => label.push("worker".into()),
    }
    Node::new(id("svc", &format!("{prefix}{}", s.name)), kind, label)
}

fn redis_node(n: &RedisNode, kind: Kind, prefix: &str, role: &str) -> Node {
    Node::new(
        id("redis", &format!("{prefix}{}", n.name)),
        kind,
        vec![n.name.clone(), role.to_owned()],
    )
}

/// Redis as the topology runs it; replication edges are added by the
/// caller from the ids this returns in the group.
fn redis_group(layout: &RedisLayout, prefix: &str) -> Group {
    let gid = id("tier", &format!("{prefix}redis"));
    match layout {
        RedisLayout::Standalone { common, node } => {
            let mut g = Group::new(gid, format!("Redis {} · standalone", common.version));
            g.nodes
                .push(redis_node(node, Kind::RedisMaster, prefix, "master"));
            g
        }
        RedisLayout::Sentinel {
            common,
            master_name,
            nodes,
            sentinels,
            quorum,
            ..
        } => {
            let mut g = Group::new(
                gid,
                format!(
                    "Redis {} · Sentinel · master '{master_name}' · quorum {quorum}",
                    common.version
                ),
            );
            for (i, n) in nodes.iter().enumerate() {
                let (kind, role) = if i == 0 {
                    (Kind::RedisMaster, "master")
                } else {
                    (Kind::RedisReplica, "replica")
                };
                g.nodes.push(redis_node(n, kind, prefix, role));
            }
            let mut s = Group::new(id("tier", &format!("{prefix}sentinels")), "sentinels");
            for n in sentinels {
                s.nodes.push(Node::new(
                    id("sentinel", &format!("{prefix}{}", n.name)),
                    Kind::Sentinel,
                    vec![n.name.clone()],
                ));
            }
            g.groups.push(s);
            g
        }
        RedisLayout::Cluster {
            common,
            shards,
            replicas_per_shard,
            ..
        } => {
            let mut g = Group::new(
                gid,
                format!(
                    "Redis {} · Cluster · {} shards × {} replica(s)",
                    common.version,
                    shards.len(),
                    replicas_per_shard
                ),
            );
            for s in shards {
                let mut sg = Group::new(
                    id("shard", &format!("{prefix}{}", s.index)),
                    format!("shard {}", s.index),
                );
                sg.nodes
                    .push(redis_node(&s.master, Kind::RedisMaster, prefix, "master"));
                for r in &s.replicas {
                    sg.nodes
                        .push(redis_node(r, Kind::RedisReplica, prefix, "replica"));
                }
                g.groups.push(sg);
            }
            g
        }
    }
}

/// Redis replication inside a layout: each master to its replicas, the
/// sentinels to the master they watch.
fn redis_edges(c: &mut Flowchart, layout: &RedisLayout, prefix: &str) {
    let rid = |n: &RedisNode| id("redis", &format!("{prefix}{}", n.name));
    match layout {
        RedisLayout::Standalone { .. } => {}
        RedisLayout::Sentinel { nodes, .. } => {
            if let Some((master, replicas)) = nodes.split_first() {
                for r in replicas {
                    c.edges.push(Edge::new(
                        &rid(master),
                        &rid(r),
                        Some("replication"),
                        Line::Dotted,
                    ));
                }
                c.edges.push(Edge::new(
                    &id("tier", &format!("{prefix}sentinels")),
                    &rid(master),
                    Some("monitor, fail over"),
                    Line::Dotted,
                ));
            }
        }
        RedisLayout::Cluster { shards, .. } => {
            for s in shards {
                for r in &s.replicas {
                    c.edges.push(Edge::new(
                        &rid(&s.master),
                        &rid(r),
                        Some("replication"),
                        Line::Dotted,
                    ));
                }
            }
        }
    }
}

/// The request and replication paths of the primary region.
fn wire_primary(c: &mut Flowchart, topo: &Topology, users: &str, prefix: &str, t: &Tiers) {
    let p = |name: &str| format!("{prefix}{name}");
    let edge = id("edge", &p("edge"));
    let app = id("app", &p(&topo.app.name));
    let proxy = id("proxy", &p(&topo.proxy.name));
    let primary = id("pg", &p(&topo.postgres.primary.name));
    c.edges.push(Edge::new(
        users,
        &edge,
        Some("HTTP, WebSocket"),
        Line::Solid,
    ));
    c.edges.push(Edge::new(&edge, &app, None, Line::Solid));
    for s in &topo.services {
        if s.port.is_some() {
            c.edges
                .push(Edge::new(&edge, &id("svc", &p(&s.name)), None, Line::Solid));
        }
    }
    // Who talks to PostgreSQL (through the proxy) and to Redis.
    let mut clients: Vec<(String, bool, bool)> = vec![(app, true, true)];
    for s in topo.services.iter().chain(topo.workers.iter()) {
        clients.push((id("svc", &p(&s.name)), s.uses_postgres, s.uses_redis));
    }
    for (from, pg, redis) in &clients {
        if *pg {
            c.edges
                .push(Edge::new(from, &proxy, Some("SQL"), Line::Solid));
        }
        if *redis {
            c.edges.push(Edge::new(from, &t.redis, None, Line::Solid));
        }
    }
    c.edges
        .push(Edge::new(&proxy, &t.pgbouncer, None, Line::Solid));
    match &t.replicas {
        Some(replicas) => {
            c.edges.push(Edge::new(
                &t.pgbouncer,
                &primary,
                Some("writes"),
                Line::Solid,
            ));
            c.edges.push(Edge::new(
                &t.pgbouncer,
                replicas,
                Some("reads, balanced by pg-proxy"),
                Line::Solid,
            ));
        }
        None => c.edges.push(Edge::new(
            &t.pgbouncer,
            &primary,
            Some("writes, reads"),
            Line::Solid,
        )),
    }
    for r in &topo.postgres.replicas {
        c.edges.push(Edge::new(
            &primary,
            &id("pg", &p(&r.name)),
            Some("streaming"),
            Line::Dotted,
        ));
    }
    redis_edges(c, &topo.redis, prefix);
}

/// A region that holds read replicas of the writer, its own app and
/// PgBouncers, and its own Redis, as the cloud plan sizes them.
fn secondary_region(
    c: &mut Flowchart,
    index: usize,
    region: &RegionPlan,
    topo: &Topology,
    users: &str,
    writer: &str,
) {
    let prefix = format!("{}_", region.name);
    let p = |name: &str| format!("{prefix}{name}");
    let edge = id("edge", &p("edge"));
    let app = id("app", &p(&topo.app.name));
    let pgb = id("pgb", &p("pgbouncer"));
    let replicas = id("tier", &p("replicas"));
    let Some(g) = c.groups.get_mut(index) else {
        return;
    };
    g.nodes.push(Node::new(
        edge.clone(),
        Kind::Edge,
        vec!["edge".into(), "load balancer, sticky sessions".into()],
    ));
    let mut app_tier = Group::new(id("tier", &p("app")), "app");
    app_tier.nodes.push(Node::new(
        app.clone(),
        Kind::App,
        vec![
            format!("{} × {}", topo.app.name, region.app_replicas),
            size(&topo.app.resources),
        ],
    ));
    // The services and workers run in every region (the cloud plan).
    for s in &topo.services {
        app_tier.nodes.push(workload(s, Kind::Service, &prefix));
    }
    for w in &topo.workers {
        app_tier.nodes.push(workload(w, Kind::Worker, &prefix));
    }
    g.groups.push(app_tier);
    g.nodes.push(Node::new(
        pgb.clone(),
        Kind::Pgbouncer,
        vec![
            format!("pgbouncer × {}", topo.pgbouncer.instances.len()),
            "reads in-region, writes to the primary region".into(),
        ],
    ));
    let mut reps = Group::new(replicas.clone(), "cross-region read replicas");
    let mut replica_ids = Vec::new();
    for n in 1..=region.read_replicas {
        let name = names::postgres_replica(n);
        let rid = id("pg", &p(&name));
        reps.nodes
            .push(Node::new(rid.clone(), Kind::Replica, vec![name]));
        replica_ids.push(rid);
    }
    let redis = secondary_redis(region, &prefix);
    let redis_id = redis.0.id.clone();
    g.groups.push(reps);
    g.groups.push(redis.0);
    c.edges.push(Edge::new(
        users,
        &edge,
        Some("HTTP, WebSocket"),
        Line::Solid,
    ));
    c.edges.push(Edge::new(&edge, &app, None, Line::Solid));
    c.edges
        .push(Edge::new(&app, &pgb, Some("SQL"), Line::Solid));
    c.edges.push(Edge::new(&app, &redis_id, None, Line::Solid));
    for s in topo.services.iter().chain(topo.workers.iter()) {
        let sid = id("svc", &p(&s.name));
        if s.port.is_some() {
            c.edges.push(Edge::new(&edge, &sid, None, Line::Solid));
        }
        if s.uses_postgres {
            c.edges
                .push(Edge::new(&sid, &pgb, Some("SQL"), Line::Solid));
        }
        if s.uses_redis {
            c.edges.push(Edge::new(&sid, &redis_id, None, Line::Solid));
        }
    }
    if !replica_ids.is_empty() {
        c.edges
            .push(Edge::new(&pgb, &replicas, Some("reads"), Line::Solid));
    }
    c.edges.push(Edge::new(
        &pgb,
        writer,
        Some("writes, cross-region"),
        Line::Solid,
    ));
    for rid in &replica_ids {
        c.edges.push(Edge::new(
            writer,
            rid,
            Some("cross-region streaming"),
            Line::Dotted,
        ));
    }
    c.edges.extend(redis.1);
}

/// A secondary region's Redis from the cloud plan's sizes (the Compose
/// topology holds only the primary region's).
fn secondary_redis(region: &RegionPlan, prefix: &str) -> (Group, Vec<Edge>) {
    let r = &region.redis;
    let gid = id("tier", &format!("{prefix}redis"));
    let node = |name: String, kind: Kind, role: &str| {
        Node::new(
            id("redis", &format!("{prefix}{name}")),
            kind,
            vec![name, role.to_owned()],
        )
    };
    let mut edges = Vec::new();
    match (r.num_node_groups, r.replicas_per_node_group) {
        (Some(shards), Some(per)) => {
            let mut g = Group::new(
                gid,
                format!(
                    "Redis · Cluster · {shards} shards × {per} replica(s) · {}",
                    r.node_type
                ),
            );
            for s in 1..=shards {
                let mut sg = Group::new(id("shard", &format!("{prefix}{s}")), format!("shard {s}"));
                let master = names::cluster_node(s, 1);
                sg.nodes
                    .push(node(master.clone(), Kind::RedisMaster, "master"));
                for n in 1..=per {
                    let name = names::cluster_node(s, n + 1);
                    edges.push(Edge::new(
                        &id("redis", &format!("{prefix}{master}")),
                        &id("redis", &format!("{prefix}{name}")),
                        Some("replication"),
                        Line::Dotted,
                    ));
                    sg.nodes.push(node(name, Kind::RedisReplica, "replica"));
                }
                g.groups.push(sg);
            }
            (g, edges)
        }
        _ => {
            let nodes = r.num_cache_clusters.unwrap_or(1);
            let mut g = Group::new(gid, format!("Redis · {} · {}", r.mode, r.node_type));
            g.nodes
                .push(node(names::redis(1), Kind::RedisMaster, "primary"));
            for n in 2..=nodes {
                let name = names::redis(n);
                edges.push(Edge::new(
                    &id("redis", &format!("{prefix}{}", names::redis(1))),
                    &id("redis", &format!("{prefix}{name}")),
                    Some("replication"),
                    Line::Dotted,
                ));
                g.nodes.push(node(name, Kind::RedisReplica, "replica"));
            }
            (g, edges)
        }
    }
}

/// Prometheus, Grafana and the exporters, as the Compose and local targets
/// run them beside the primary region's servers.
fn monitoring(c: &mut Flowchart, topo: &Topology, t: &Tiers) {
    let mut g = Group::new(id("tier", "monitoring"), "monitoring");
    let prometheus = id("mon", "prometheus");
    let grafana = id("mon", "grafana");
    let pg_exp = id("mon", "postgres_exporter");
    let pgb_exp = id("mon", "pgbouncer_exporter");
    let redis_exp = id("mon", "redis_exporter");
    let pg_nodes = 1 + topo.postgres.replicas.len();
    g.nodes.push(Node::new(
        prometheus.clone(),
        Kind::Monitor,
        vec!["Prometheus".into(), "capacity rules and alerts".into()],
    ));
    g.nodes.push(Node::new(
        grafana.clone(),
        Kind::Monitor,
        vec!["Grafana".into()],
    ));
    g.nodes.push(Node::new(
        pg_exp.clone(),
        Kind::Monitor,
        vec![format!("postgres_exporter × {pg_nodes}")],
    ));
    g.nodes.push(Node::new(
        pgb_exp.clone(),
        Kind::Monitor,
        vec!["pgbouncer exporter".into()],
    ));
    g.nodes.push(Node::new(
        redis_exp.clone(),
        Kind::Monitor,
        vec!["redis_exporter".into()],
    ));
    c.groups.push(g);
    c.edges
        .push(Edge::new(&grafana, &prometheus, None, Line::Dotted));
    for exp in [&pg_exp, &pgb_exp, &redis_exp] {
        c.edges
            .push(Edge::new(&prometheus, exp, Some("scrapes"), Line::Dotted));
    }
    c.edges
        .push(Edge::new(&pg_exp, &t.postgres, None, Line::Dotted));
    c.edges
        .push(Edge::new(&pgb_exp, &t.pgbouncer, None, Line::Dotted));
    c.edges
        .push(Edge::new(&redis_exp, &t.redis, None, Line::Dotted));
}
