//! Rules beyond the schema: what each component needs from the others.
//! Every rule has a stable code, points at the value that breaks it and
//! says what to change.

use crate::diag::{Code, Diagnostic};
use crate::spec::SourceMap;
use crate::spec::images;
use crate::spec::params;
use crate::spec::types::{
    Dependency, EvictionPolicy, ImageSource, ParamValue, Phase, Redis, RedisMode, RegionRole,
};
use std::collections::BTreeMap;

/// Rules on one phase.
pub fn check_phase(phase: &Phase, src: &SourceMap) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    users(phase, src, &mut out);
    pgbouncer(phase, src, &mut out);
    cloud_read_spread(phase, src, &mut out);
    parameters(phase, src, &mut out);
    backup(phase, src, &mut out);
    terraform_state(phase, src, &mut out);
    redis(&phase.redis, "/redis", src, &mut out);
    regions(phase, src, &mut out);
    names(phase, src, &mut out);
    notifications(phase, src, &mut out);
    queue_redis(phase, src, &mut out);
    cloud_queue_redis(phase, src, &mut out);
    compose_images(phase, src, &mut out);
    out
}

/// CMP001: images built from Debian's packages run the one version of each
/// server Debian ships; a spec that names another would be configured for
/// a server it does not get.
fn compose_images(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let compose = &phase.targets.compose;
    if !compose.enabled || compose.images != ImageSource::Debian {
        return;
    }
    let release = images::DEBIAN_RELEASE;
    let mut wrong = |pointer: &str, field: &str, have: String, want: String| {
        if have != want {
            out.push(Diagnostic::error(
                Code::Cmp001,
                src.value_at(pointer),
                format!(
                    "{field} is {have}, but targets.compose.images: debian builds on Debian {release}, which ships {want}"
                ),
                format!("set {field}: {want}, or targets.compose.images: official"),
            ));
        }
    };
    wrong(
        "/postgres/version",
        "postgres.version",
        phase.postgres.version.to_string(),
        images::DEBIAN_POSTGRES.to_string(),
    );
    wrong(
        "/redis/version",
        "redis.version",
        phase.redis.version.to_string(),
        images::DEBIAN_REDIS.to_string(),
    );
    wrong(
        "/pgbouncer/version",
        "pgbouncer.version",
        phase.pgbouncer.version.to_string(),
        images::DEBIAN_PGBOUNCER.to_owned(),
    );
    if phase.pgbouncer.image.is_some() {
        out.push(Diagnostic::error(
            Code::Cmp001,
            src.value_at("/pgbouncer/image"),
            "pgbouncer.image names an image, but targets.compose.images: debian builds PgBouncer from Debian's package".to_owned(),
            "remove pgbouncer.image, or use targets.compose.images: official",
        ));
    }
}

/// Rules across the phases of one directory.
pub fn check_together<'a>(
    phases: impl IntoIterator<Item = (&'a Phase, &'a SourceMap)>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut by_name: BTreeMap<&str, &SourceMap> = BTreeMap::new();
    let mut by_order: BTreeMap<u32, (&str, &SourceMap)> = BTreeMap::new();
    for (phase, src) in phases {
        if let Some(first) = by_name.get(phase.name.as_str()) {
            out.push(
                Diagnostic::error(
                    Code::Phase002,
                    src.value_at("/name"),
                    format!("two phases are named '{}'", phase.name),
                    "give each phase its own name: it is the directory under out/",
                )
                .with_related(first.value_at("/name")),
            );
        } else {
            by_name.insert(phase.name.as_str(), src);
        }
        if let Some((other, first)) = by_order.get(&phase.order) {
            out.push(
                Diagnostic::error(
                    Code::Phase003,
                    src.value_at("/order"),
                    format!(
                        "phases '{}' and '{other}' both have order {}",
                        phase.name, phase.order
                    ),
                    "give each phase its own order: it is the sequence the plan is rolled out in",
                )
                .with_related(first.value_at("/order")),
            );
        } else {
            by_order.insert(phase.order, (phase.name.as_str(), src));
        }
    }
    out
}

fn users(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    if phase.users.min > phase.users.max {
        out.push(Diagnostic::error(
            Code::Phase001,
            src.value_at("/users/min"),
            format!(
                "users.min {} is above users.max {}",
                phase.users.min, phase.users.max
            ),
            "swap the two values, or raise users.max",
        ));
    }
}

/// PgBouncer's version and image (its pools against PostgreSQL's limits
/// need the plan's budget: `plan::pools`).
fn pgbouncer(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let pgb = &phase.pgbouncer;
    if pgb.max_prepared_statements.is_some() && pgb.version.minor() < 21 {
        out.push(Diagnostic::error(
            Code::Pgb004,
            src.key_at("/pgbouncer/max_prepared_statements"),
            format!(
                "pgbouncer.max_prepared_statements needs PgBouncer 1.21 or later, but pgbouncer.version is {}",
                pgb.version
            ),
            "raise pgbouncer.version to 1.21 or later, or remove max_prepared_statements",
        ));
    }
    if phase.targets.compose.enabled
        && pgb.image.is_none()
        && images::pgbouncer_image(pgb.version.minor()).is_none()
    {
        let known: Vec<String> = images::PGBOUNCER_IMAGES
            .iter()
            .map(|(m, i)| format!("1.{m} ({i})"))
            .collect();
        out.push(Diagnostic::error(
            Code::Pgb005,
            src.value_at("/pgbouncer/version"),
            format!("scaleplan knows no pinned container image for PgBouncer {}", pgb.version),
            format!("set pgbouncer.image to an image of that version, or use a version with a known image: {}", known.join(", ")),
        ));
    }
}

/// PGB006: on AWS each PgBouncer task reads from every replica of its
/// region through one host list, and verifies each server's certificate
/// and name (verify-full). Before 1.25 PgBouncer checks the certificate
/// against the whole comma-separated list (pgbouncer/pgbouncer#1300), so
/// every read login to a region with two replicas or more would fail.
fn cloud_read_spread(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let pgb = &phase.pgbouncer;
    let replicas = phase.most_read_replicas_in_a_region();
    if phase.targets.terraform.enabled && pgb.version.minor() < 25 && replicas >= 2 {
        out.push(Diagnostic::error(
            Code::Pgb006,
            src.value_at("/pgbouncer/version"),
            format!(
                "on AWS PgBouncer reads from the {replicas} replicas of a region through one host list, and PgBouncer {} checks each replica's certificate against the whole list, so every read login would fail its TLS check",
                pgb.version
            ),
            "set pgbouncer.version to \"1.25\" or later (it checks each host on its own), or keep at most one read replica per region",
        ));
    }
}

/// TF001: without a backend, Terraform keeps its state (every generated
/// password) in a local file: unencrypted, unlocked, on one machine.
fn terraform_state(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let tf = &phase.targets.terraform;
    if tf.enabled && tf.state.is_none() {
        out.push(Diagnostic::warning(
            Code::Tf001,
            src.key_at("/targets/terraform"),
            "targets.terraform has no state: Terraform would keep its state, with every generated password, in a local terraform.tfstate, unencrypted and unlocked",
            "set targets.terraform.state.bucket to an S3 bucket (created once before the first apply, docs/terraform.md): the state is then encrypted and locked while a plan or an apply runs",
        ));
    }
}

/// PG003: RDS refuses a backup window under 30 minutes, and a backup of
/// a busy database needs that long anyway.
fn backup(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let window = &phase.postgres.backup.window;
    let minutes = window.length_minutes();
    if minutes < 30 {
        out.push(Diagnostic::error(
            Code::Pg003,
            src.value_at("/postgres/backup/window"),
            format!(
                "postgres.backup.window {window} is {minutes} minutes long; RDS needs at least 30"
            ),
            format!(
                "widen it, for example to {}-{}",
                window.start(),
                window.plus_minutes(60)
            ),
        ));
    }
}

fn parameters(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let known: Vec<String> = params::KNOWN.iter().map(|(k, _)| (*k).to_owned()).collect();
    for (name, value) in &phase.postgres.parameters {
        let pointer = format!(
            "/postgres/parameters/{}",
            crate::spec::node::escape_pointer(name)
        );
        if let Some(field) = params::controlled_by(name) {
            out.push(Diagnostic::error(
                Code::Pg002,
                src.key_at(&pointer),
                format!(
                    "postgres.parameters.{name} is set by {field}, not by a parameter override"
                ),
                format!("remove it from postgres.parameters and change {field} instead"),
            ));
        } else if params::known(name).is_none() {
            let help = match crate::validate::schema::closest(name, &known) {
                Some(best) => format!("did you mean '{best}'? a misspelt key would stop PostgreSQL from starting"),
                None => "scaleplan knows the common postgresql.conf keys (docs/spec.md); a misspelt key would stop PostgreSQL from starting".to_owned(),
            };
            out.push(Diagnostic::error(
                Code::Pg001,
                src.key_at(&pointer),
                format!("unknown PostgreSQL parameter '{name}'"),
                help,
            ));
        } else if name == "password_encryption"
            && matches!(value, ParamValue::Text(t) if t.as_str() != "scram-sha-256")
        {
            out.push(Diagnostic::warning(
                Code::Sec001,
                src.value_at(&pointer),
                "postgres.parameters.password_encryption weakens the default scram-sha-256",
                "remove the override: PgBouncer and pg_hba.conf use scram-sha-256",
            ));
        }
    }
}

fn redis(r: &Redis, at: &str, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let p = |suffix: &str| format!("{at}{suffix}");
    let field = |suffix: &str| crate::validate::schema::display_path(&format!("{at}{suffix}"));
    let misplaced = |block: &str, out: &mut Vec<Diagnostic>| {
        let pointer = p(&format!("/{block}"));
        let location = src.key_at(&pointer);
        out.push(Diagnostic::error(
            Code::Red009,
            location,
            format!("{} only applies to {} mode, but {} is {}", field(&format!("/{block}")), owner_mode(block), field("/mode"), r.mode.as_str()),
            format!(
                "remove it; if a parent spec sets it, write `{block}: null` under redis in this phase to drop the inherited value"
            ),
        ));
    };
    match r.mode {
        RedisMode::Standalone => {
            for block in ["replicas", "sentinel", "cluster", "min_replicas_to_write"] {
                if src.contains(&p(&format!("/{block}"))) {
                    misplaced(block, out);
                }
            }
        }
        RedisMode::Sentinel => {
            if src.contains(&p("/cluster")) {
                misplaced("cluster", out);
            }
            let replicas = r.replicas.unwrap_or(0);
            if replicas == 0 {
                out.push(Diagnostic::error(
                    Code::Red001,
                    src.value_at(&p("/replicas")),
                    format!("sentinel mode needs at least one replica to fail over to, {} is {replicas}", field("/replicas")),
                    format!("set {} (2 is usual)", field("/replicas")),
                ));
            }
            match &r.sentinel {
                None => out.push(Diagnostic::error(
                    Code::Red009,
                    src.value_at(&p("/mode")),
                    "sentinel mode needs a sentinel block",
                    format!("add {} = {{ count: 3, quorum: 2 }}", field("/sentinel")),
                )),
                Some(s) => {
                    if s.count < 3 {
                        out.push(Diagnostic::error(
                            Code::Red002,
                            src.value_at(&p("/sentinel/count")),
                            format!(
                                "{} is {}, but Sentinel needs at least 3 to survive losing one",
                                field("/sentinel/count"),
                                s.count
                            ),
                            "run 3 sentinels (5 to survive losing two), each on its own host",
                        ));
                    }
                    if s.quorum > s.count {
                        out.push(Diagnostic::error(
                            Code::Red003,
                            src.value_at(&p("/sentinel/quorum")),
                            format!("{} is {}, above the {} sentinels: no failure could ever be agreed on", field("/sentinel/quorum"), s.quorum, s.count),
                            format!("set quorum between 1 and {} ({} is a majority)", s.count, s.count / 2 + 1),
                        ));
                    } else if s.quorum < s.count / 2 + 1 {
                        out.push(Diagnostic::warning(
                            Code::Red004,
                            src.value_at(&p("/sentinel/quorum")),
                            format!("{} is {}, below a majority of {} sentinels: a minority can flag the master as down", field("/sentinel/quorum"), s.quorum, s.count),
                            format!("set quorum to {} (failover itself always needs a majority)", s.count / 2 + 1),
                        ));
                    }
                    if s.count % 2 == 0 {
                        out.push(Diagnostic::warning(
                            Code::Red005,
                            src.value_at(&p("/sentinel/count")),
                            format!(
                                "{} is {}: an even count tolerates no more failures than {}",
                                field("/sentinel/count"),
                                s.count,
                                s.count - 1
                            ),
                            format!("run {} sentinels", s.count + 1),
                        ));
                    }
                }
            }
            if let Some(min) = r.min_replicas_to_write {
                if min > replicas {
                    out.push(Diagnostic::error(
                        Code::Red010,
                        src.value_at(&p("/min_replicas_to_write")),
                        format!("{} is {min}, above the {replicas} replicas: the master would refuse every write", field("/min_replicas_to_write")),
                        format!("set it to at most {replicas} (1 bounds what a failover can lose)"),
                    ));
                }
            }
        }
        RedisMode::Cluster => {
            for block in ["replicas", "sentinel", "min_replicas_to_write"] {
                if src.contains(&p(&format!("/{block}"))) {
                    misplaced(block, out);
                }
            }
            match &r.cluster {
                None => out.push(Diagnostic::error(
                    Code::Red009,
                    src.value_at(&p("/mode")),
                    "cluster mode needs a cluster block",
                    format!(
                        "add {} = {{ shards: 3, replicas_per_shard: 1 }}",
                        field("/cluster")
                    ),
                )),
                Some(c) => {
                    if r.version < 7 {
                        out.push(Diagnostic::error(
                            Code::Red011,
                            src.value_at(&p("/version")),
                            format!("cluster mode needs Redis 7 for cluster-announce-hostname, but {} is {}", field("/version"), r.version),
                            "set the Redis version to 7: without announced host names a cluster cannot work behind Compose or NAT",
                        ));
                    }
                    if c.shards < 3 {
                        out.push(Diagnostic::error(
                            Code::Red006,
                            src.value_at(&p("/cluster/shards")),
                            format!("{} is {}, but Redis Cluster needs at least 3 masters to agree on failures", field("/cluster/shards"), c.shards),
                            "use 3 or more shards, or sentinel mode for a single data set",
                        ));
                    }
                    if c.replicas_per_shard == 0 {
                        out.push(Diagnostic::warning(
                            Code::Red007,
                            src.value_at(&p("/cluster/replicas_per_shard")),
                            format!(
                                "{} is 0: losing any master loses its slots and stops the cluster",
                                field("/cluster/replicas_per_shard")
                            ),
                            "give each shard at least one replica",
                        ));
                    }
                }
            }
        }
    }
    if r.maxmemory_mb > r.memory_mb {
        out.push(Diagnostic::error(
            Code::Red008,
            src.value_at(&p("/maxmemory_mb")),
            format!("{} {} is above the node's {} {}", field("/maxmemory_mb"), r.maxmemory_mb, field("/memory_mb"), r.memory_mb),
            format!("keep maxmemory at most 75% of the node's memory: lower maxmemory_mb or raise memory_mb to {} or more", r.maxmemory_mb * 4 / 3 + 1),
        ));
    } else if u64::from(r.maxmemory_mb) * 100 > u64::from(r.memory_mb) * 80 {
        out.push(Diagnostic::warning(
            Code::Red008,
            src.value_at(&p("/maxmemory_mb")),
            format!(
                "{} {} is over 80% of the node's {} MB: a background save can double memory by copy-on-write",
                field("/maxmemory_mb"), r.maxmemory_mb, r.memory_mb
            ),
            format!("raise memory_mb to {} or lower maxmemory_mb", r.maxmemory_mb * 4 / 3 + 1),
        ));
    }
}

fn owner_mode(block: &str) -> &'static str {
    match block {
        "cluster" => "cluster",
        _ => "sentinel",
    }
}

/// An ElastiCache global datastore: one Redis whose copies live in the
/// secondary regions.
fn global_datastore(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let terraform = &phase.targets.terraform;
    if !terraform.redis_global_datastore {
        return;
    }
    let at = src.value_at("/targets/terraform/redis_global_datastore");
    if !phase
        .regions
        .iter()
        .any(|r| r.role == RegionRole::Secondary)
    {
        out.push(Diagnostic::error(
            Code::Reg003,
            at.clone(),
            "targets.terraform.redis_global_datastore needs a secondary region to hold a copy, and the phase has none",
            "add a `role: secondary` region, or leave redis_global_datastore out",
        ));
    }
    for (i, region) in phase.regions.iter().enumerate() {
        if region.role == RegionRole::Secondary && region.redis.is_some() {
            out.push(
                Diagnostic::error(
                    Code::Reg004,
                    src.value_at(&format!("/regions/{i}/redis")),
                    format!(
                        "region '{}' declares its own Redis, but with redis_global_datastore its Redis is the primary region's copy, of the same shape",
                        region.name
                    ),
                    "remove this region's `redis` block (its copy follows the phase's `redis`), or turn redis_global_datastore off to give each region its own",
                )
                .with_related(at.clone()),
            );
        }
    }
    if let Some(class) = &terraform.instance_classes.redis
        && class.as_str().starts_with("cache.t")
    {
        out.push(
            Diagnostic::error(
                Code::Reg005,
                src.value_at("/targets/terraform/instance_classes/redis"),
                format!(
                    "{class} is a burstable node type, which an ElastiCache global datastore does not take"
                ),
                "choose an M or R node type, e.g. cache.m7g.large, or leave instance_classes.redis out (scaleplan then picks one)",
            )
            .with_related(at),
        );
    }
}

fn regions(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    global_datastore(phase, src, out);
    if phase.regions.is_empty() {
        return;
    }
    let primaries: Vec<usize> = phase
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| r.role == RegionRole::Primary)
        .map(|(i, _)| i)
        .collect();
    if primaries.len() != 1 {
        let at = match primaries.get(1) {
            Some(i) => src.value_at(&format!("/regions/{i}/role")),
            None => src.value_at("/regions"),
        };
        out.push(Diagnostic::error(
            Code::Reg001,
            at,
            format!("regions need exactly one primary, found {}", primaries.len()),
            "mark the region that holds the writable database `role: primary` and the others `role: secondary`",
        ));
    }
    for (i, region) in phase.regions.iter().enumerate() {
        if let Some(r) = &region.redis {
            redis(r, &format!("/regions/{i}/redis"), src, out);
        }
    }
}

/// Names become Compose services and host names, so they must not collide
/// with each other or with the names scaleplan generates.
fn names(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    for (i, region) in phase.regions.iter().enumerate() {
        let pointer = format!("/regions/{i}/name");
        if let Some(first) = seen.insert(region.name.as_str(), pointer.clone()) {
            out.push(
                Diagnostic::error(
                    Code::Reg002,
                    src.value_at(&pointer),
                    format!("two regions are named '{}'", region.name),
                    "give each region its own name",
                )
                .with_related(src.value_at(&first)),
            );
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (list, services) in [("services", &phase.services), ("workers", &phase.workers)] {
        for (i, service) in services.iter().enumerate() {
            let pointer = format!("/{list}/{i}/name");
            let name = service.name.as_str();
            // A name scaleplan generates is the plan's rule (REG002 there).
            if let Some(first) = seen.insert(name.to_owned(), pointer.clone()) {
                out.push(
                    Diagnostic::error(
                        Code::Reg002,
                        src.value_at(&pointer),
                        format!("two services or workers are named '{name}'"),
                        "give each service and worker its own name",
                    )
                    .with_related(src.value_at(&first)),
                );
            }
        }
    }
}

/// Notifications are sent by workers, from BullMQ queues in Redis.
fn notifications(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    for (i, service) in phase.services.iter().enumerate() {
        if service.notifications.is_some() {
            out.push(Diagnostic::error(
                Code::Ntf001,
                src.key_at(&format!("/services/{i}/notifications")),
                format!(
                    "services[{i}] ('{}') declares notifications, but only a worker sends them: the capacity model sizes the workers' replicas and concurrency, and the app contract gives the workers their queues",
                    service.name
                ),
                "move the service (or its notifications block) under `workers`: a BullMQ worker that consumes the push queue",
            ));
        }
    }
    for (i, worker) in phase.workers.iter().enumerate() {
        if worker.notifications.is_some() && !worker.uses.contains(&Dependency::Redis) {
            let uses = format!("/workers/{i}/uses");
            let at = if src.contains(&uses) {
                src.value_at(&uses)
            } else {
                src.key_at(&format!("/workers/{i}/notifications"))
            };
            out.push(Diagnostic::error(
                Code::Ntf002,
                at,
                format!(
                    "worker '{}' declares notifications but does not use redis: its BullMQ queues live in Redis",
                    worker.name
                ),
                format!("add redis to workers[{i}].uses"),
            ));
        }
    }
}

/// BullMQ keeps its jobs and their locks in Redis: a policy that evicts
/// keys under memory pressure loses work. BullMQ asks for noeviction and
/// warns at start on any other policy; the volatile-* policies count too,
/// since BullMQ's lock keys carry a TTL and so can be evicted.
/// RED013: on AWS, a Redis without a replica loses every queued job when
/// ElastiCache replaces its node (it keeps no copy of the data).
fn cloud_queue_redis(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let tf = &phase.targets.terraform;
    // A queue Redis on AWS always has a replica in another zone.
    if !tf.enabled || !phase.runs_queues() || phase.queue_redis.is_some() {
        return;
    }
    let lone = match (phase.redis.mode, &phase.redis.cluster) {
        (RedisMode::Standalone, _) => !tf.redis_replica,
        (RedisMode::Cluster, Some(c)) => c.replicas_per_shard == 0,
        _ => false,
    };
    if lone {
        out.push(Diagnostic::warning(
            Code::Red013,
            src.value_at("/redis/mode"),
            format!(
                "this phase runs BullMQ queues on a Redis without a replica on AWS ({} mode): when ElastiCache replaces its node, every queued job is lost",
                phase.redis.mode.as_str()
            ),
            "set targets.terraform.redis_replica: true (a second node in another zone, with automatic failover), or run redis in sentinel mode, or give each cluster shard a replica, or give the queues a Redis of their own (queue_redis: its group always has a replica)",
        ));
    }
}

/// RED012: BullMQ's queues never on a Redis that evicts. A queue Redis of
/// the phase's own (`queue_redis`) holds them and cannot evict, so the
/// phase's Redis may then; RED014: a queue Redis where nothing queues.
fn queue_redis(phase: &Phase, src: &SourceMap, out: &mut Vec<Diagnostic>) {
    if phase.queue_redis.is_some() {
        if !phase.runs_queues() {
            out.push(Diagnostic::warning(
                Code::Red014,
                src.value_at("/queue_redis"),
                "queue_redis gives BullMQ a Redis of its own, but nothing in this phase runs queues: it would hold nothing, and the contract names no queue".to_owned(),
                "set app.queues: true if the app runs BullMQ, or give a worker uses: [redis]; else remove queue_redis",
            ));
        }
        return;
    }
    // Who declares the queues: the app (`app.queues`), else the first
    // worker that uses Redis.
    let (who, declared_at) = if phase.app.queues {
        ("the app (app.queues)".to_owned(), "/app/queues".to_owned())
    } else {
        match phase
            .workers
            .iter()
            .position(|w| w.uses.contains(&Dependency::Redis))
        {
            Some(w) => (
                format!("worker '{}'", phase.workers[w].name),
                format!("/workers/{w}/uses"),
            ),
            None => return,
        }
    };
    let redises = std::iter::once(("/redis".to_owned(), &phase.redis)).chain(
        phase.regions.iter().enumerate().filter_map(|(i, r)| {
            r.redis
                .as_ref()
                .map(|redis| (format!("/regions/{i}/redis"), redis))
        }),
    );
    for (at, redis) in redises {
        if redis.maxmemory_policy == EvictionPolicy::Noeviction {
            continue;
        }
        let pointer = format!("{at}/maxmemory_policy");
        let field = crate::validate::schema::display_path(&pointer);
        let policy = redis.maxmemory_policy.as_str();
        let which = if policy.starts_with("volatile") {
            "BullMQ sets a TTL on its lock keys, so a volatile-* policy can evict them: two workers then run one job"
        } else {
            "Redis may evict a waiting job, its data or its lock: the job is lost or runs twice"
        };
        out.push(
            Diagnostic::error(
                Code::Red012,
                src.value_at(&pointer),
                format!(
                    "{who} runs BullMQ queues on this Redis, but {field} is {policy}: at maxmemory {which}"
                ),
                format!(
                    "set {field} to noeviction, as BullMQ requires (the app's cache keys then need TTLs of their own, and a full Redis refuses writes instead of evicting); or give the queues a Redis of their own, which never evicts (queue_redis: {{maxmemory_mb: 256}}), and keep {policy} for the cache"
                ),
            )
            .with_related(src.value_at(&declared_at)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;

    fn check(spec: serde_json::Value) -> Vec<Diagnostic> {
        let phase = crate::spec::testing::phase(&[spec]);
        let file = std::sync::Arc::new(std::path::PathBuf::from("t.yaml"));
        let src = crate::spec::node::Node::new(
            crate::spec::node::Kind::Map(Vec::new()),
            crate::diag::Location::start_of(&file),
        )
        .into_json()
        .1;
        check_phase(&phase, &src)
    }

    fn codes(d: &[Diagnostic]) -> Vec<(&str, Severity)> {
        d.iter().map(|d| (d.code.as_str(), d.severity)).collect()
    }

    fn worker(uses: &[&str], notifications: bool) -> serde_json::Value {
        let mut w = serde_json::json!({"name": "push", "image": "x/push:1", "uses": uses});
        if notifications {
            w["notifications"] = serde_json::json!({"per_user_per_hour": 2, "p95_latency_ms": 200, "concurrency": 50});
        }
        w
    }

    #[test]
    fn an_evicting_policy_under_queues_is_an_error() {
        for (policy, warns) in [
            ("noeviction", false),
            ("allkeys-lru", true),
            ("allkeys-random", true),
            ("volatile-lru", true),
            ("volatile-ttl", true),
        ] {
            let d = check(serde_json::json!({
                "redis": {"maxmemory_policy": policy},
                "workers": [worker(&["redis"], false)],
            }));
            let red012: Vec<_> = d.iter().filter(|d| d.code == Code::Red012).collect();
            assert_eq!(red012.len(), usize::from(warns), "{policy}: {d:?}");
            if let Some(w) = red012.first() {
                assert_eq!(w.severity, Severity::Error);
                assert!(w.help.contains("noeviction"), "{}", w.help);
                assert!(
                    w.help.contains("queue_redis: {maxmemory_mb: 256}"),
                    "{}",
                    w.help
                );
                assert!(w.message.contains(policy), "{}", w.message);
                assert!(w.message.contains("worker 'push'"), "{}", w.message);
            }
        }
        // The app's own queues count the same.
        let d = check(serde_json::json!({
            "redis": {"maxmemory_policy": "allkeys-lru"},
            "app": {"queues": true},
        }));
        let red012: Vec<_> = d.iter().filter(|d| d.code == Code::Red012).collect();
        assert_eq!(red012.len(), 1, "{d:?}");
        assert!(red012[0].message.contains("the app (app.queues)"));
        // No queues: the app's cache may evict.
        let d = check(serde_json::json!({
            "redis": {"maxmemory_policy": "allkeys-lru"},
            "workers": [worker(&["postgres"], false)],
        }));
        assert!(d.iter().all(|d| d.code != Code::Red012), "{d:?}");
        // Queues on a Redis of their own: the cache may evict.
        let d = check(serde_json::json!({
            "redis": {"maxmemory_policy": "allkeys-lru"},
            "app": {"queues": true},
            "queue_redis": {"maxmemory_mb": 64},
        }));
        assert!(
            d.iter()
                .all(|d| d.code != Code::Red012 && d.code != Code::Red014),
            "{d:?}"
        );
    }

    #[test]
    fn a_queue_redis_where_nothing_queues_warns() {
        let d = check(serde_json::json!({
            "queue_redis": {"maxmemory_mb": 64},
        }));
        let red014: Vec<_> = d.iter().filter(|d| d.code == Code::Red014).collect();
        assert_eq!(red014.len(), 1, "{d:?}");
        assert_eq!(red014[0].severity, Severity::Warning);
        assert!(
            red014[0].help.contains("app.queues: true"),
            "{}",
            red014[0].help
        );
    }

    #[test]
    fn a_queue_redis_on_aws_needs_no_replica_of_the_cache() {
        let d = check(serde_json::json!({
            "app": {"queues": true},
            "redis": {"maxmemory_policy": "allkeys-lru"},
            "queue_redis": {"maxmemory_mb": 64},
            "targets": {"terraform": {"enabled": true, "state": {"bucket": "b"}}},
        }));
        assert!(d.iter().all(|d| d.code != Code::Red013), "{d:?}");
    }

    #[test]
    fn queues_on_a_cloud_redis_without_a_replica_warn() {
        let red013 = |spec: serde_json::Value| {
            check(spec)
                .into_iter()
                .filter(|d| d.code == Code::Red013)
                .collect::<Vec<_>>()
        };
        let lone = red013(serde_json::json!({
            "app": {"queues": true},
            "redis": {"maxmemory_policy": "noeviction"},
            "targets": {"terraform": {"enabled": true, "state": {"bucket": "b"}}},
        }));
        assert_eq!(lone.len(), 1);
        assert_eq!(lone[0].severity, Severity::Warning);
        assert!(
            lone[0]
                .help
                .contains("targets.terraform.redis_replica: true")
        );
        // The replica, no queues, or no cloud: no warning.
        for spec in [
            serde_json::json!({
                "app": {"queues": true},
                "redis": {"maxmemory_policy": "noeviction"},
                "targets": {"terraform": {"enabled": true, "redis_replica": true, "state": {"bucket": "b"}}},
            }),
            serde_json::json!({
                "targets": {"terraform": {"enabled": true, "state": {"bucket": "b"}}},
            }),
            serde_json::json!({
                "app": {"queues": true},
                "redis": {"maxmemory_policy": "noeviction"},
            }),
        ] {
            assert!(red013(spec.clone()).is_empty(), "{spec}");
        }
    }

    #[test]
    fn terraform_without_a_state_backend_warns() {
        let tf = |state: serde_json::Value| {
            let d = check(serde_json::json!({
                "targets": {"terraform": {"enabled": true, "state": state}},
            }));
            d.into_iter()
                .filter(|d| d.code == Code::Tf001)
                .collect::<Vec<_>>()
        };
        let warned = tf(serde_json::Value::Null);
        assert_eq!(warned.len(), 1);
        assert_eq!(warned[0].severity, Severity::Warning);
        assert!(warned[0].help.contains("targets.terraform.state.bucket"));
        assert!(tf(serde_json::json!({"bucket": "sikka-state"})).is_empty());
        // Not rendered, not warned.
        let d = check(serde_json::json!({"targets": {"terraform": {"enabled": false}}}));
        assert!(d.iter().all(|d| d.code != Code::Tf001), "{d:?}");
    }

    #[test]
    fn a_region_with_its_own_evicting_redis_counts_too() {
        let d = check(serde_json::json!({
            "workers": [worker(&["redis"], true)],
            "regions": [
                {"name": "eu", "role": "primary", "cloud_region": "eu-west-1"},
                {"name": "us", "role": "secondary", "cloud_region": "us-east-1",
                 "redis": {"maxmemory_policy": "volatile-lfu"}},
            ],
        }));
        let red012: Vec<_> = d.iter().filter(|d| d.code == Code::Red012).collect();
        assert_eq!(red012.len(), 1, "{d:?}");
        assert!(
            red012[0]
                .message
                .contains("regions[1].redis.maxmemory_policy"),
            "{}",
            red012[0].message
        );
    }

    #[test]
    fn notifications_belong_to_workers_that_use_redis() {
        let mut service = worker(&["redis"], true);
        service["port"] = 3001.into();
        let d = check(serde_json::json!({"services": [service]}));
        assert_eq!(codes(&d), [("NTF001", Severity::Error)]);
        let d = check(serde_json::json!({"workers": [worker(&["postgres"], true)]}));
        assert_eq!(codes(&d), [("NTF002", Severity::Error)]);
        let d = check(serde_json::json!({"workers": [worker(&["redis"], true)]}));
        assert!(d.is_empty(), "{d:?}");
    }
}
