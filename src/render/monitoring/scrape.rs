//! Each target's Prometheus configuration: its scrape jobs, and the
//! PgBouncer exporter's configuration.

use crate::plan::target::Target;
use crate::plan::topology::{PGBOUNCER_EXPORTER, RedisLayout, Topology};
use serde::Serialize;

/// A scrape target: an address and the labels that name the node.
#[derive(Serialize)]
pub(super) struct Scrape {
    pub(super) job: &'static str,
    /// The exporter names each node itself (the PgBouncer exporter's
    /// `node` label): keep its labels over the target's.
    pub(super) honor_labels: bool,
    /// A service found by DNS (every replica of the app in Compose: the
    /// service name resolves to each container), scraped on this port.
    pub(super) dns: Option<(String, u16)>,
    /// Set for exporters that take the target as a parameter (redis).
    pub(super) exporter: Option<String>,
    pub(super) targets: Vec<Target_>,
}

#[derive(Serialize)]
pub(super) struct Target_ {
    pub(super) address: String,
    pub(super) node: String,
    /// The label beside `node` that says what it is: `role` for
    /// PostgreSQL (primary, replica), `component` for Redis, whose
    /// exporter has a `role` label of its own (master, slave).
    pub(super) kind_label: &'static str,
    pub(super) kind: &'static str,
}

#[derive(Serialize)]
pub(super) struct PrometheusCtx<'a> {
    pub(super) phase: &'a str,
    pub(super) scrape_interval: &'static str,
    pub(super) rules: &'static str,
    pub(super) jobs: Vec<Scrape>,
}

#[derive(Serialize)]
pub(super) struct PgbouncerExporterCtx {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) bouncers: Vec<(String, String, u16)>,
    pub(super) admin_var: &'static str,
}

pub(super) fn scrape_jobs(topo: &Topology) -> Vec<Scrape> {
    let e = &topo.monitor;
    let mut jobs = Vec::new();
    jobs.push(Scrape {
        job: "postgres",
        honor_labels: false,
        dns: None,
        exporter: None,
        targets: e
            .postgres_exporters
            .iter()
            .map(|x| Target_ {
                address: x.endpoint.to_string(),
                node: x.node.clone(),
                kind_label: "role",
                kind: if x.node == topo.postgres.primary.name {
                    "primary"
                } else {
                    "replica"
                },
            })
            .collect(),
    });
    jobs.push(Scrape {
        job: "pgbouncer",
        honor_labels: true,
        dns: None,
        exporter: None,
        targets: vec![Target_ {
            address: e.pgbouncer_exporter.to_string(),
            node: PGBOUNCER_EXPORTER.to_owned(),
            kind_label: "component",
            kind: "pgbouncer",
        }],
    });
    // The queue Redis is a Redis data node like the others: its memory and
    // its refused writes alert the same way.
    let mut redis: Vec<Target_> = topo
        .redis
        .data_nodes()
        .into_iter()
        .chain(topo.queue_redis.as_ref().map(|q| &q.node))
        .map(|n| Target_ {
            address: format!("redis://{}:{}", n.endpoint.host, n.endpoint.port),
            node: n.name.clone(),
            kind_label: "component",
            kind: "redis",
        })
        .collect();
    if let RedisLayout::Sentinel { sentinels, .. } = &topo.redis {
        redis.extend(sentinels.iter().map(|n| Target_ {
            address: format!("redis://{}:{}", n.endpoint.host, n.endpoint.port),
            node: n.name.clone(),
            kind_label: "component",
            kind: "sentinel",
        }));
    }
    // The app's own metrics (WebSocket connections, CPU): every replica,
    // where the target runs the app.
    if !matches!(topo.target, Target::Local { .. }) {
        jobs.push(Scrape {
            job: "app",
            honor_labels: false,
            dns: Some((topo.app.name.clone(), topo.app.port)),
            exporter: None,
            targets: Vec::new(),
        });
    }
    jobs.push(Scrape {
        job: "redis",
        honor_labels: false,
        dns: None,
        exporter: Some(e.redis_exporter.to_string()),
        targets: redis,
    });
    jobs
}
