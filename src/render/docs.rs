//! The phase summary (README.md) and the k6 load test.

use super::artifacts::Artifacts;
use super::format::thousands;
use super::templates as t;
use super::{Renderer, generated};
use crate::plan::PlannedPhase;
use crate::plan::layout::PhaseFile;
use crate::plan::loadtest::LoadTest;
use crate::plan::topology::{self, RedisLayout};
use serde::Serialize;

impl Renderer {
    /// The phase summary (README.md) and the load test, which belong to no
    /// target.
    pub(super) fn render_docs(
        &self,
        phase: &PlannedPhase,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let spec = phase.spec();
        let g = generated(phase);
        let e = &phase.capacity;
        let topo = &phase.compose;
        let load = &phase.loadtest;
        files.insert(
            PhaseFile::LoadTest.rel().to_owned(),
            self.render(
                t::K6_JS,
                &g,
                LoadtestCtx {
                    phase: spec.name.as_str(),
                    users_min: spec.users.min,
                    users_max: spec.users.max,
                    load,
                    // One process needs no flags; more must be asked for.
                    default_shards: u64::from(load.shards == 1),
                },
            )?,
        );
        files.insert(
            PhaseFile::Scaling.rel().to_owned(),
            super::scaling::scaling_json(phase, &g)?,
        );
        let redis_summary = match &topo.redis {
            RedisLayout::Standalone { .. } => "standalone".to_owned(),
            RedisLayout::Sentinel {
                nodes,
                sentinels,
                quorum,
                ..
            } => format!(
                "Sentinel: 1 master, {} replicas, {} sentinels (quorum {quorum})",
                nodes.len() - 1,
                sentinels.len()
            ),
            RedisLayout::Cluster {
                shards,
                replicas_per_shard,
                ..
            } => {
                format!(
                    "Cluster: {} shards x {replicas_per_shard} replica(s)",
                    shards.len()
                )
            }
        };
        let arch = super::diagram::architecture(phase);
        arch.check()
            .map_err(|e| anyhow::anyhow!("the architecture diagram: {e}"))?;
        let architecture = arch.to_mermaid();
        files.insert(
            PhaseFile::Architecture.rel().to_owned(),
            format!("{}\n{architecture}", g.lines("%%")),
        );
        let mut listed: Vec<String> = files.iter().map(|(p, _)| p.to_owned()).collect();
        listed.push(PhaseFile::Readme.rel().to_owned());
        listed.sort();
        let doc = PhaseDocCtx {
            phase: spec.name.as_str(),
            title: phase.title.clone(),
            project: spec.project.as_str(),
            order: spec.order,
            users_min: thousands(spec.users.min.into()),
            users_max: thousands(spec.users.max.into()),
            capacity: thousands(e.capacity),
            headroom: format!("{:.2}x", e.headroom),
            bottleneck: e.bottleneck.label(),
            remedy: e.bottleneck.remedy(),
            lines: e
                .lines
                .iter()
                .map(|l| DocLine {
                    label: l.resource.label(),
                    users: l.users.map_or_else(
                        || {
                            if l.resource == crate::plan::capacity::Resource::PgbouncerClients {
                                "not per user".to_owned()
                            } else {
                                "no limit".to_owned()
                            }
                        },
                        thousands,
                    ),
                    work: l.work.clone(),
                    bottleneck: l.resource == e.bottleneck,
                })
                .collect(),
            postgres: &topo.postgres,
            pgbouncer: &topo.pgbouncer,
            redis: &topo.redis,
            redis_summary,
            queue_redis: topo.queue_redis.as_ref(),
            app: &topo.app,
            services: topo.services.iter().chain(topo.workers.iter()).collect(),
            regions: spec
                .regions
                .iter()
                .map(|r| format!("{} ({}, {:?})", r.name, r.cloud_region, r.role).to_lowercase())
                .collect(),
            files: listed,
            base_port: spec.targets.local.base_port,
            // Built and escaped by the diagram module, not a spec value.
            architecture: minijinja::Value::from_safe_string(architecture),
            notifications: {
                let prefixes =
                    crate::plan::contract::queue_prefixes(spec, topo.queues_on_cluster());
                crate::plan::capacity::notification_workers(spec)
                    .map(|(w, n)| NotificationDoc {
                        worker: w.name.as_str(),
                        replicas: w.replicas,
                        per_user_per_hour: decimal(n.per_user_per_hour),
                        fan_out: decimal(n.fan_out),
                        p95_latency_ms: decimal(n.p95_latency_ms),
                        concurrency: n.concurrency,
                        in_flight: u64::from(w.replicas) * u64::from(n.concurrency),
                        // This worker's own queues, by name: a suffix match
                        // would give worker `a` the queues of `b-a`.
                        queues: {
                            let own = crate::plan::topology::worker_queues(w);
                            prefixes
                                .iter()
                                .filter(|q| own.contains(&q.queue))
                                .cloned()
                                .collect()
                        },
                    })
                    .collect()
            },
            notification_lines: e
                .lines
                .iter()
                .filter(|l| {
                    matches!(
                        l.resource,
                        crate::plan::capacity::Resource::Notifications
                            | crate::plan::capacity::Resource::PushQuota
                    )
                })
                .map(|l| {
                    format!(
                        "{}: {} ({})",
                        l.resource.label(),
                        l.users.map_or_else(
                            || "no limit".to_owned(),
                            |u| format!("{} users", thousands(u))
                        ),
                        l.work
                    )
                })
                .collect(),
            cloud: spec.targets.terraform.enabled.then(|| CloudDoc {
                regions: &phase.cloud.regions,
                primary: phase
                    .cloud
                    .regions
                    .iter()
                    .find(|r| r.primary)
                    .map_or("", |r| r.name.as_str()),
                idle_timeout: phase.cloud.edge_idle_timeout,
                ping_interval_s: phase.cloud.ping_interval_s,
                web: phase
                    .cloud
                    .services
                    .iter()
                    .filter_map(|s| Some((s.name.as_str(), s.port?, s.health_path.as_str())))
                    .collect(),
                proxy: &phase.cloud_nodes.proxy,
            }),
        };
        files.insert(
            PhaseFile::Readme.rel().to_owned(),
            self.render(t::PHASE_README, &g, doc)?,
        );
        Ok(())
    }
}

#[derive(Serialize)]
struct LoadtestCtx<'a> {
    phase: &'a str,
    users_min: u32,
    users_max: u32,
    #[serde(flatten)]
    load: &'a LoadTest,
    default_shards: u64,
}

#[derive(Serialize)]
struct DocLine {
    label: &'static str,
    users: String,
    work: String,
    bottleneck: bool,
}

#[derive(Serialize)]
struct PhaseDocCtx<'a> {
    phase: &'a str,
    title: String,
    project: &'a str,
    order: u32,
    users_min: String,
    users_max: String,
    capacity: String,
    headroom: String,
    bottleneck: &'a str,
    remedy: &'a str,
    lines: Vec<DocLine>,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    redis: &'a RedisLayout,
    redis_summary: String,
    queue_redis: Option<&'a topology::QueueRedis>,
    app: &'a topology::AppTier,
    services: Vec<&'a topology::ServiceTier>,
    regions: Vec<String>,
    files: Vec<String>,
    base_port: u16,
    architecture: minijinja::Value,
    /// The AWS target, when the phase renders it.
    cloud: Option<CloudDoc<'a>>,
    /// The workers that send push notifications, and how.
    notifications: Vec<NotificationDoc<'a>>,
    /// The capacity model's lines for them.
    notification_lines: Vec<String>,
}

/// One worker's notification path, for the phase README.
#[derive(Serialize)]
struct NotificationDoc<'a> {
    worker: &'a str,
    replicas: u32,
    per_user_per_hour: String,
    fan_out: String,
    p95_latency_ms: String,
    concurrency: u32,
    /// Jobs in flight across the worker's replicas.
    in_flight: u64,
    /// queue=prefix as the phase's own Redis mode gives them (Compose,
    /// local and every region's Redis here share the mode).
    queues: Vec<crate::plan::contract::QueuePrefix>,
}

/// What the phase README says about the AWS target: its regions, the
/// edge and PgBouncer's endpoint.
#[derive(Serialize)]
struct CloudDoc<'a> {
    regions: &'a [crate::plan::cloud::RegionPlan],
    primary: &'a str,
    idle_timeout: u32,
    ping_interval_s: u32,
    web: Vec<(&'a str, u16, &'a str)>,
    proxy: &'a topology::PgProxy,
}

/// A spec's number as people write it: 2, 1.5, 0.25 (no trailing zeros).
fn decimal(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
