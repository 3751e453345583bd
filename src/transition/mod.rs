//! Stage 5, transition: moving a running phase to the next. The ordered
//! steps between two planned phases, each with its risk, the reason, what
//! it does (an `Action` the native target executes and Compose names as
//! commands), and where it cannot run. Node names come from the two plans:
//! a step names the nodes one phase has and the other lacks. `diff`,
//! out/transitions and `migrate` all read this one list.
//!
//! One file per component: `postgres`, `pgbouncer`, `redis` (every mode
//! pair), `app` (the app, services, workers and regions); `action` is what
//! a step does, `compose` the Compose commands that do it.

pub mod action;
mod app;
pub mod compose;
mod pgbouncer;
mod postgres;
mod queues;
mod redis;

use crate::plan::PlannedPhase;
use crate::plan::capacity::Resource;
use crate::plan::topology::{RedisLayout, Topology};
use crate::render::format::thousands;
use crate::spec::params::{self, Apply};
use crate::spec::types::{ParamValue, PoolMode, RedisMode, RegionRole};
use crate::validate::transition::Measure;
pub use action::Action;
use action::{pgbouncers, postgres_replicas, sentinels};
use serde::Serialize;

/// How much a step disturbs the running system, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    NoOp,
    Online,
    RollingRestart,
    BriefWriteUnavailability,
    DataMigration,
    ClientChangeRequired,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::NoOp => "no-op",
            Risk::Online => "online",
            Risk::RollingRestart => "rolling restart",
            Risk::BriefWriteUnavailability => "brief write unavailability",
            Risk::DataMigration => "data migration",
            Risk::ClientChangeRequired => "client change required",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub title: String,
    pub risk: Risk,
    pub why: String,
    /// The step removes capacity the earlier phase had.
    pub capacity_loss: bool,
    pub action: Action,
    /// The commands that carry it out on Compose, from the directory of the
    /// new phase's docker-compose.yml.
    pub compose: Vec<String>,
    /// Why `migrate` cannot carry it out on the local target, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_native: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub from: String,
    pub to: String,
    /// Estimated concurrent users before and after, with the bottlenecks.
    pub capacity: CapacityChange,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CapacityChange {
    pub before: u64,
    pub after: u64,
    pub bottleneck_before: Resource,
    pub bottleneck_after: Resource,
}

impl CapacityChange {
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) -> {} ({})",
            thousands(self.before),
            self.bottleneck_before.label(),
            thousands(self.after),
            self.bottleneck_after.label()
        )
    }
}

impl Plan {
    pub fn highest_risk(&self) -> Risk {
        self.steps
            .iter()
            .map(|s| s.risk)
            .max()
            .unwrap_or(Risk::NoOp)
    }
}

fn step(title: impl Into<String>, risk: Risk, why: impl Into<String>, action: Action) -> Step {
    Step {
        title: title.into(),
        risk,
        why: why.into(),
        capacity_loss: false,
        not_native: action.not_native().map(str::to_owned),
        compose: Vec::new(),
        action,
    }
}

fn loss(title: impl Into<String>, risk: Risk, why: impl Into<String>, action: Action) -> Step {
    Step {
        capacity_loss: true,
        ..step(title, risk, why, action)
    }
}

fn elsewhere(reason: &str) -> Action {
    Action::Elsewhere {
        reason: reason.to_owned(),
    }
}

fn manual(reason: &str) -> Action {
    Action::Manual {
        reason: reason.to_owned(),
    }
}

/// The names in `these` that `those` lacks.
fn only_in(these: &[&str], those: &[&str]) -> Vec<String> {
    these
        .iter()
        .filter(|n| !those.contains(n))
        .map(|n| (*n).to_owned())
        .collect()
}

/// The data nodes that are not the initial master.
fn redis_replicas(t: &Topology) -> Vec<&str> {
    match &t.redis {
        RedisLayout::Sentinel { nodes, .. } => nodes[1..].iter().map(|n| n.name.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn data_nodes(t: &Topology) -> Vec<&str> {
    t.redis
        .data_nodes()
        .into_iter()
        .map(|n| n.name.as_str())
        .collect()
}

/// Steps by the stage of a rollout they belong to; a plan lists the stages
/// in this order.
#[derive(Default)]
struct Stages {
    add: Vec<Step>,
    settings: Vec<Step>,
    routing: Vec<Step>,
    clients: Vec<Step>,
    remove: Vec<Step>,
}

/// The steps that take a running `from` to `to`, in the order to apply
/// them: add capacity, change settings, move traffic, change clients, and
/// only then remove what is no longer needed.
pub fn plan(from: &PlannedPhase, to: &PlannedPhase) -> Plan {
    let mut stages = Stages::default();
    postgres::steps(from, to, &mut stages);
    pgbouncer::steps(from, to, &mut stages);
    redis::steps(from, to, &mut stages);
    queues::steps(from, to, &mut stages);
    app::steps(from, to, &mut stages);
    let Stages {
        add,
        settings,
        routing,
        clients,
        remove,
    } = stages;
    let mut steps: Vec<Step> = [add, settings, routing, clients, remove]
        .into_iter()
        .flatten()
        .collect();
    if let Some(monitoring) = monitoring(from, to) {
        steps.push(monitoring);
    }
    if steps.is_empty() {
        steps.push(step(
            "Nothing to do",
            Risk::NoOp,
            "the two phases render the same topology and settings",
            Action::Nothing,
        ));
    }
    for s in &mut steps {
        s.compose = compose::commands(&s.action, &from.compose, &to.compose);
    }
    let (before, after) = (&from.capacity, &to.capacity);
    Plan {
        from: from.name().to_owned(),
        to: to.name().to_owned(),
        capacity: CapacityChange {
            before: before.capacity,
            after: after.capacity,
            bottleneck_before: before.bottleneck,
            bottleneck_after: after.bottleneck,
        },
        steps,
    }
}

/// Last: monitoring follows what the steps above added and removed, when
/// what it watches or how it judges it changed.
fn monitoring(from: &PlannedPhase, to: &PlannedPhase) -> Option<Step> {
    let (a, b) = (&from.compose, &to.compose);
    let watched = |t: &Topology, p: &PlannedPhase| {
        serde_json::json!({
            "monitor": t.monitor,
            "rules": p.monitoring,
            "postgres": postgres_replicas(t),
            "pgbouncer": pgbouncers(t),
            "redis": data_nodes(t),
            "sentinels": sentinels(t),
        })
    };
    if watched(a, from) == watched(b, to) {
        return None;
    }
    let (old, new) = (a.monitor.services(), b.monitor.services());
    let retire = only_in(
        &old.iter().map(String::as_str).collect::<Vec<_>>(),
        &new.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    Some(step(
        "Monitoring follows the new phase: exporters started or retired, Prometheus reloaded",
        Risk::Online,
        "each new node gets its exporter, and Prometheus scrapes the new targets with the new phase's rules and thresholds; until then the new nodes are unwatched",
        Action::Monitoring { retire },
    ))
}

/// Notes `name old -> new` when the value changed.
fn changed<T: PartialEq + std::fmt::Display>(out: &mut Vec<String>, name: &str, old: T, new: T) {
    if old != new {
        out.push(format!("{name} {old} -> {new}"));
    }
}

fn show(v: &ParamValue) -> String {
    match v {
        ParamValue::Bool(b) => if *b { "on" } else { "off" }.to_owned(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::Text(t) => t.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(overlay: serde_json::Value) -> PlannedPhase {
        crate::plan::testing::planned(&[overlay])
    }

    fn titles(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| format!("[{}] {}", s.risk.label(), s.title))
            .collect()
    }

    fn position(p: &Plan, needle: &str) -> usize {
        p.steps
            .iter()
            .position(|s| s.title.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle:?} in {:#?}", titles(p)))
    }

    #[test]
    fn identical_phases_need_nothing() {
        let a = phase(serde_json::json!({}));
        let p = plan(&a, &a);
        assert_eq!(titles(&p), ["[no-op] Nothing to do"]);
    }

    #[test]
    fn a_redis_that_will_hold_queues_stops_evicting_before_anything_else() {
        let a = phase(serde_json::json!({"redis": {"maxmemory_policy": "allkeys-lru"}}));
        let b = phase(serde_json::json!({
            "redis": {"maxmemory_policy": "noeviction"},
            "postgres": {"read_replicas": 1},
            "workers": [{"name": "push", "image": "x/push:1", "uses": ["redis"]}],
        }));
        let p = plan(&a, &b);
        assert!(
            p.steps[0]
                .title
                .contains("maxmemory-policy allkeys-lru -> noeviction"),
            "{:?}",
            titles(&p)
        );
        assert!(matches!(p.steps[0].action, Action::RedisSettings));
        assert!(p.steps[0].why.contains("first"), "{}", p.steps[0].why);
        // Back to an evicting policy: an ordinary setting change.
        let p = plan(&b, &a);
        let i = position(&p, "maxmemory-policy noeviction -> allkeys-lru");
        assert!(i > 0, "{:?}", titles(&p));
    }

    #[test]
    fn replicas_are_added_before_reads_are_routed_to_them() {
        let a = phase(serde_json::json!({}));
        let b = phase(serde_json::json!({"postgres": {"read_replicas": 2}}));
        let p = plan(&a, &b);
        let added = position(
            &p,
            "Add read replicas postgres-replica-1, postgres-replica-2",
        );
        let routed = position(&p, "Route reads");
        assert!(added < routed, "{:#?}", titles(&p));
        assert_eq!(p.steps[added].risk, Risk::Online);
        // A RELOAD of each PgBouncer and of the proxy: no client dropped.
        assert_eq!(p.steps[routed].risk, Risk::Online);
        assert_eq!(p.steps[routed].action, Action::RouteReads);
    }

    #[test]
    fn pool_changes_reload_and_a_new_version_restarts() {
        let a = phase(serde_json::json!({}));
        let b = phase(serde_json::json!({"pgbouncer": {"default_pool_size": 40, "instances": 2}}));
        let p = plan(&a, &b);
        let start = &p.steps[position(&p, "Start PgBouncer instances pgbouncer-2")];
        assert_eq!(start.risk, Risk::Online);
        assert_eq!(
            start.action,
            Action::StartPgbouncers {
                nodes: vec!["pgbouncer-2".to_owned()]
            }
        );
        let reload = &p.steps[position(&p, "Reload PgBouncer: default_pool_size 20 -> 40")];
        assert_eq!(reload.risk, Risk::Online);
        assert_eq!(reload.action, Action::RollPgbouncers { restart: false });
        assert!(
            reload
                .compose
                .contains(&"docker compose kill -s HUP pgbouncer-1".to_owned()),
            "{:?}",
            reload.compose
        );
        let c = phase(serde_json::json!({"pgbouncer": {"version": "1.24"}}));
        let p = plan(&a, &c);
        let roll = &p.steps[position(&p, "Roll PgBouncer: version 1.25 -> 1.24")];
        assert_eq!(roll.risk, Risk::RollingRestart);
        assert_eq!(roll.action, Action::RollPgbouncers { restart: true });
    }

    #[test]
    fn aws_takes_redis_into_cluster_mode_in_three_applies_of_one_change_each() {
        let a = phase(
            serde_json::json!({"redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}}),
        );
        let b = phase(
            serde_json::json!({"redis": {"mode": "cluster", "replicas": null, "sentinel": null, "cluster": {"shards": 3, "replicas_per_shard": 1}}}),
        );
        let p = plan(&a, &b);
        let one = position(&p, "apply 1 of 3");
        let switch = position(&p, "Switch clients to cluster-aware clients");
        let two = position(&p, "apply 2 of 3");
        let three = position(&p, "apply 3 of 3");
        assert!(
            one < switch && switch < two && two < three,
            "{:#?}",
            titles(&p)
        );
        assert!(
            p.steps[one]
                .why
                .contains("redis_cluster_mode_override=compatible")
        );
        assert!(
            p.steps[two]
                .why
                .contains("redis_cluster_mode_override=enabled")
        );
        assert!(p.steps[three].title.contains("3 shards x 1 replica(s)"));
        assert!(!p.steps[three].why.contains("override="));
        for i in [one, two, three] {
            assert!(p.steps[i].not_native.is_some(), "{}", p.steps[i].title);
        }
    }

    #[test]
    fn steps_outside_the_local_target_say_why_and_manual_ones_are_marked() {
        let a = phase(
            serde_json::json!({"redis": {"mode": "cluster", "replicas": null, "sentinel": null, "cluster": {"shards": 3, "replicas_per_shard": 1}}}),
        );
        let b = phase(serde_json::json!({"allow_downgrade": true, "app": {"replicas": 3}}));
        let p = plan(&a, &b);
        let back = &p.steps[position(&p, "Move Redis back")];
        assert!(matches!(back.action, Action::Manual { .. }), "{back:?}");
        assert!(back.not_native.is_some());
        // Not the local target's, but Compose runs the app: the new file's
        // replicas.
        let app = &p.steps[position(&p, "Scale the app")];
        assert!(matches!(app.action, Action::Workloads { .. }), "{app:?}");
        assert!(app.not_native.is_some());
        assert_eq!(
            app.compose,
            [
                "docker compose up -d --wait --no-deps app",
                // The edge's server slots follow the replicas.
                "docker compose kill -s USR2 edge"
            ]
        );
    }

    #[test]
    fn restart_settings_are_told_from_reload_settings() {
        let a = phase(serde_json::json!({}));
        let b = phase(
            serde_json::json!({"postgres": {"parameters": {"work_mem": "64MB", "shared_preload_libraries": "pg_stat_statements"}}}),
        );
        let p = plan(&a, &b);
        let reload = &p.steps[position(&p, "Reload PostgreSQL settings")];
        assert!(
            reload.title.contains("work_mem 5MB -> 64MB"),
            "{}",
            reload.title
        );
        assert_eq!(reload.risk, Risk::Online);
        let restart = &p.steps[position(&p, "Restart PostgreSQL for shared_preload_libraries")];
        assert_eq!(restart.risk, Risk::BriefWriteUnavailability);
        assert!(!restart.title.contains("work_mem"));
    }

    #[test]
    fn raising_max_connections_restarts_replicas_first() {
        let a = phase(serde_json::json!({"postgres": {"read_replicas": 1}}));
        let b = phase(
            serde_json::json!({"postgres": {"read_replicas": 1, "primary": {"max_connections": 300}}}),
        );
        let p = plan(&a, &b);
        let restart = &p.steps[position(&p, "Restart PostgreSQL for max_connections 200 -> 300")];
        assert!(
            restart.why.contains("restart the replicas first"),
            "{}",
            restart.why
        );
    }

    #[test]
    fn standalone_to_sentinel_needs_sentinel_aware_clients() {
        let a = phase(serde_json::json!({}));
        let b = phase(
            serde_json::json!({"redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}}),
        );
        let p = plan(&a, &b);
        assert_eq!(
            p.steps[position(&p, "Make clients Sentinel-aware")].risk,
            Risk::ClientChangeRequired
        );
        assert!(position(&p, "Start 3 sentinels") < position(&p, "Make clients Sentinel-aware"));
    }

    /// What the engine found rolling launch -> growth forward on Compose:
    /// the standalone node takes its Sentinel-phase definition once the
    /// app follows the sentinels, containers whose open-file limit grows are
    /// recreated before the reload, and monitoring follows the new nodes.
    #[test]
    fn compose_steps_carry_what_a_reload_cannot() {
        let a = phase(serde_json::json!({}));
        let b = phase(serde_json::json!({
            "redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}},
            "postgres": {"read_replicas": 1},
            "pgbouncer": {"max_client_conn": 3000},
        }));
        let p = plan(&a, &b);
        // Once the app follows a failover.
        let switch = &p.steps[position(&p, "Make clients Sentinel-aware")];
        assert_eq!(
            switch.compose.last().map(String::as_str),
            Some("docker compose up -d --wait --no-deps redis-1")
        );
        let reload = &p.steps[position(&p, "Reload PgBouncer")];
        assert_eq!(
            reload.compose[..2],
            [
                "docker compose up -d --wait --no-deps pgbouncer-1",
                "docker compose kill -s HUP pgbouncer-1"
            ]
        );
        assert!(
            reload
                .compose
                .contains(&"docker compose up -d --wait --no-deps pg-proxy".to_owned()),
            "{:?}",
            reload.compose
        );
        let last = p.steps.last().unwrap();
        assert!(matches!(last.action, Action::Monitoring { .. }), "{last:?}");
        assert!(
            last.compose[0].contains("postgres-replica-1-exporter")
                && last.compose[1] == "docker compose kill -s HUP prometheus",
            "{:?}",
            last.compose
        );
    }

    #[test]
    fn sentinel_to_cluster_is_a_data_migration_with_cluster_aware_clients() {
        let a = phase(
            serde_json::json!({"redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}}),
        );
        let b = phase(serde_json::json!({"redis": {"mode": "cluster", "cluster": {"shards": 3}}}));
        let p = plan(&a, &b);
        assert_eq!(
            p.steps[position(&p, "Migrate the data into the cluster's slots")].risk,
            Risk::DataMigration
        );
        let clients = &p.steps[position(&p, "Switch clients to cluster-aware clients")];
        assert_eq!(clients.risk, Risk::ClientChangeRequired);
        assert!(clients.why.contains("hash tags") && clients.why.contains("database 0"));
        assert!(position(&p, "Build the Redis Cluster") < position(&p, "Migrate"));
        assert!(position(&p, "Migrate") < position(&p, "Retire the sentinel Redis"));
    }

    #[test]
    fn leaving_session_pooling_breaks_session_features() {
        let a = phase(serde_json::json!({"pgbouncer": {"pool_mode": "session"}}));
        let b = phase(serde_json::json!({"pgbouncer": {"pool_mode": "transaction"}}));
        let p = plan(&a, &b);
        let s = &p.steps[position(&p, "Make clients safe for transaction pooling")];
        assert_eq!(s.risk, Risk::ClientChangeRequired);
        for feature in [
            "LISTEN/NOTIFY",
            "advisory locks",
            "PREPARE",
            "temporary tables",
        ] {
            assert!(s.why.contains(feature), "{feature}");
        }
    }

    #[test]
    fn scale_down_is_flagged_as_capacity_loss_and_comes_last() {
        let a = phase(
            serde_json::json!({"app": {"replicas": 4}, "postgres": {"read_replicas": 2}, "pgbouncer": {"instances": 2}}),
        );
        let b = phase(
            serde_json::json!({"app": {"replicas": 2}, "postgres": {"read_replicas": 1}, "pgbouncer": {"instances": 1}}),
        );
        let p = plan(&a, &b);
        let losses: Vec<&Step> = p.steps.iter().filter(|s| s.capacity_loss).collect();
        assert_eq!(losses.len(), 3, "{:#?}", titles(&p));
        let first_loss = p.steps.iter().position(|s| s.capacity_loss).unwrap();
        assert!(
            position(&p, "Route reads") < first_loss,
            "reads move away before replicas stop"
        );
        // Then only losses, and monitoring following them last.
        let (last, losses) = p.steps[first_loss..].split_last().unwrap();
        assert!(losses.iter().all(|s| s.capacity_loss), "{:#?}", titles(&p));
        assert!(
            matches!(&last.action, Action::Monitoring { retire } if retire.contains(&"postgres-replica-2-exporter".to_owned())),
            "{last:?}"
        );
    }

    #[test]
    fn only_secondary_regions_are_new_deployments() {
        let single = phase(serde_json::json!({}));
        let regions = phase(serde_json::json!({"regions": [
            {"name": "eu-west", "role": "primary", "cloud_region": "eu-west-1"},
            {"name": "us-east", "role": "secondary", "cloud_region": "us-east-1", "read_replicas": 2},
        ]}));
        let p = plan(&single, &regions);
        assert!(
            p.steps.iter().all(|s| !s.title.contains("eu-west")),
            "{:#?}",
            titles(&p)
        );
        assert_eq!(
            p.steps[position(&p, "Stand up region us-east (us-east-1)")].risk,
            Risk::Online
        );
    }

    #[test]
    fn services_the_new_phase_drops_are_addressed_by_container() {
        let a = phase(
            serde_json::json!({"postgres": {"read_replicas": 2}, "pgbouncer": {"instances": 2}}),
        );
        let b = phase(serde_json::json!({"allow_downgrade": true}));
        let p = plan(&a, &b);
        let all: Vec<&String> = p.steps.iter().flat_map(|s| &s.compose).collect();
        let project = &a.compose.project;
        for expected in [
            format!("docker stop {project}-postgres-replica-1-1 {project}-postgres-replica-2-1"),
            format!("docker kill -s INT {project}-pgbouncer-2-1"),
            "docker compose exec -u postgres postgres-primary psql -U postgres -c \"SELECT pg_drop_replication_slot('replica_1')\"".to_owned(),
        ] {
            assert!(all.contains(&&expected), "no `{expected}` in {all:#?}");
        }
        assert!(
            !all.iter().any(|c| c.contains("--remove-orphans")),
            "{all:#?}"
        );
    }
}
