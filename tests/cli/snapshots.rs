//! One small snapshot per template, of the smallest phases that use them
//! (tests/fixtures/minimal). Whole phases are checked by `build --check`
//! against out/, which is the golden copy; these show a reviewer what a
//! template change does, one file at a time (`cargo insta review`).

use scaleplan::plan;
use scaleplan::render::Renderer;
use scaleplan::render::artifacts::Artifacts;
use scaleplan::render::templates;
use std::collections::BTreeMap;
use testkit::repo;

/// (template, phase, file under out/): every template at least once, and
/// a second file where a target or mode changes what it writes.
const CASES: &[(&str, &str, &str)] = &[
    (
        "postgres/postgresql.conf",
        "one",
        "local/postgres/postgres-primary/postgresql.conf",
    ),
    (
        "postgres/postgresql.conf",
        "two",
        "compose/postgres/postgres-replica-1/postgresql.conf",
    ),
    (
        "postgres/pg_hba.conf",
        "one",
        "local/postgres/postgres-primary/pg_hba.conf",
    ),
    (
        "postgres/init-roles.sql",
        "one",
        "compose/postgres/init-roles.sql",
    ),
    (
        "postgres/standby-start.sh",
        "two",
        "compose/postgres/postgres-replica-1/standby-start.sh",
    ),
    (
        "postgres/standby-start.sh",
        "two",
        "local/postgres/postgres-replica-1/standby-start.sh",
    ),
    (
        "postgres/pgbackrest.ini",
        "one",
        "local/postgres/pgbackrest.conf",
    ),
    (
        "pgbouncer/pgbouncer.ini",
        "one",
        "local/pgbouncer/pgbouncer-1/pgbouncer.ini",
    ),
    (
        "pgbouncer/pgbouncer.ini",
        "two",
        "compose/pgbouncer/pgbouncer-1/pgbouncer.ini",
    ),
    (
        "pgbouncer/pgbouncer.ini",
        "two",
        "terraform/modules/region/pgbouncer.ini.tftpl",
    ),
    ("pgbouncer/start.sh", "one", "compose/pgbouncer/start.sh"),
    ("redis/redis.conf", "one", "local/redis/redis-1/redis.conf"),
    (
        "redis/redis.conf",
        "two",
        "compose/redis/redis-2/redis.conf",
    ),
    (
        "redis/redis.conf",
        "three",
        "compose/redis/redis-shard1-1/redis.conf",
    ),
    (
        "redis/sentinel.conf",
        "two",
        "compose/redis/sentinel-1/sentinel.conf",
    ),
    ("redis/start.sh", "two", "compose/redis/start.sh"),
    ("redis/start.sh", "one", "local/redis/start.sh"),
    (
        "redis/cluster-create.sh",
        "three",
        "compose/redis/cluster-create.sh",
    ),
    (
        "compose/docker-compose.yml",
        "one",
        "compose/docker-compose.yml",
    ),
    (
        "postgres/primary-start.sh",
        "one",
        "compose/postgres/primary-start.sh",
    ),
    (
        "monitoring/pgbouncer-exporter-start.sh",
        "one",
        "compose/monitoring/pgbouncer-exporter-start.sh",
    ),
    (
        "compose/images/Dockerfile",
        "four",
        "compose/images/pgbouncer-exporter/Dockerfile",
    ),
    // A queue Redis (queue_redis): its file, the contract that names it,
    // its ElastiCache group (its Compose service runs in an engine test).
    (
        "redis/redis.conf",
        "four",
        "compose/redis/redis-queues/redis.conf",
    ),
    ("app/app.env", "four", "compose/app.env"),
    ("terraform/main.tf", "four", "terraform/main.tf"),
    ("haproxy/haproxy.cfg", "two", "local/haproxy/haproxy.cfg"),
    ("haproxy/haproxy.cfg", "one", "compose/haproxy/haproxy.cfg"),
    ("haproxy/edge.cfg", "one", "compose/haproxy/edge.cfg"),
    ("app/app.env", "two", "compose/app.env"),
    ("app/app.env", "three", "local/app.env"),
    ("compose/env.example", "two", "compose/.env.example"),
    ("docs/phase-readme.md", "two", "README.md"),
    ("docs/transition.md", "transitions", "one-to-two.md"),
    ("docs/roadmap.md", "transitions", "README.md"),
    ("loadtest/k6.js", "one", "loadtest/k6.js"),
    ("terraform/versions.tf", "one", "terraform/versions.tf"),
    ("terraform/variables.tf", "one", "terraform/variables.tf"),
    ("terraform/main.tf", "two", "terraform/main.tf"),
    ("terraform/outputs.tf", "one", "terraform/outputs.tf"),
    ("terraform/README.md", "one", "terraform/README.md"),
    (
        "terraform/tests/variables.tftest.hcl",
        "one",
        "terraform/tests/variables.tftest.hcl",
    ),
    (
        "terraform/modules/region/versions.tf",
        "one",
        "terraform/modules/region/versions.tf",
    ),
    (
        "terraform/modules/region/variables.tf",
        "one",
        "terraform/modules/region/variables.tf",
    ),
    (
        "terraform/modules/region/security.tf",
        "one",
        "terraform/modules/region/security.tf",
    ),
    ("terraform/secrets.tf", "three", "terraform/secrets.tf"),
    ("terraform/network.tf", "three", "terraform/network.tf"),
    (
        "terraform/modules/region/edge.tf",
        "one",
        "terraform/modules/region/edge.tf",
    ),
    (
        "terraform/modules/region/bootstrap.tf",
        "one",
        "terraform/modules/region/bootstrap.tf",
    ),
    (
        "terraform/modules/region/README.md",
        "three",
        "terraform/modules/region/README.md",
    ),
    (
        "postgres/rds-bootstrap.sql",
        "one",
        "terraform/modules/region/bootstrap.sql",
    ),
    (
        "terraform/modules/region/postgres.tf",
        "two",
        "terraform/modules/region/postgres.tf",
    ),
    (
        "terraform/modules/region/redis.tf",
        "three",
        "terraform/modules/region/redis.tf",
    ),
    (
        "terraform/modules/region/services.tf",
        "one",
        "terraform/modules/region/services.tf",
    ),
    (
        "terraform/modules/region/outputs.tf",
        "one",
        "terraform/modules/region/outputs.tf",
    ),
    (
        "terraform/modules/region/alarms.tf",
        "one",
        "terraform/modules/region/alarms.tf",
    ),
    ("monitoring/rules.yml", "one", "monitoring/rules.yml"),
    (
        "monitoring/rules.test.yml",
        "one",
        "monitoring/rules.test.yml",
    ),
    (
        "monitoring/prometheus.yml",
        "two",
        "local/monitoring/prometheus.yml",
    ),
    (
        "monitoring/prometheus.yml",
        "three",
        "compose/monitoring/prometheus.yml",
    ),
    (
        "monitoring/pgbouncer-exporter.yml",
        "two",
        "local/monitoring/pgbouncer-exporter.yml",
    ),
    (
        "monitoring/grafana-datasource.yml",
        "one",
        "compose/monitoring/grafana/provisioning/datasources/prometheus.yml",
    ),
    (
        "monitoring/grafana-dashboards.yml",
        "one",
        "compose/monitoring/grafana/provisioning/dashboards/scaleplan.yml",
    ),
];

/// The minimal fixture rendered, by phase (and "transitions").
fn rendered() -> BTreeMap<String, Artifacts> {
    let dir = repo().join("tests/fixtures/minimal");
    let planned = plan::plan_dir(&dir, &plan::Options::default()).unwrap();
    assert!(
        !planned.diagnostics.has_errors(),
        "{:?}",
        planned.diagnostics
    );
    let renderer = Renderer::new(None).unwrap();
    let phases: Vec<(&str, Artifacts)> = planned
        .phases
        .iter()
        .map(|p| (p.name(), renderer.render_phase(p).unwrap()))
        .collect();
    let notes = scaleplan::compare::transition_notes(&planned, &phases, &renderer).unwrap();
    let mut out: BTreeMap<String, Artifacts> = phases
        .into_iter()
        .map(|(name, files)| (name.to_owned(), files))
        .collect();
    out.insert("transitions".to_owned(), notes);
    out
}

#[test]
fn every_template_renders_as_snapshotted() {
    let rendered = rendered();
    for (template, phase, path) in CASES {
        let text = rendered[*phase]
            .get(path)
            .unwrap_or_else(|| panic!("{phase} has no {path}"));
        let name = format!("{phase}__{}", path.replace('/', "__"));
        insta::with_settings!({ description => *template, omit_expression => true }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn every_template_has_a_snapshot() {
    for (template, _) in templates::ALL {
        assert!(
            CASES.iter().any(|(t, _, _)| t == template),
            "{template} has no snapshot case: add one to CASES"
        );
    }
}

/// Snapshots stay small enough to review: over 400 lines, nobody reads them.
#[test]
fn no_snapshot_is_over_400_lines() {
    for path in testkit::files_under(&repo().join("tests")) {
        if path.extension().is_some_and(|e| e == "snap") {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            assert!(lines <= 400, "{}: {lines} lines", path.display());
        }
    }
}

/// scaling.json, which the app's ScalingModule serves: written from the
/// plan without a template, so a snapshot of its own (and one parse: it is
/// JSON, with the fields the module reads).
#[test]
fn scaling_json_is_as_snapshotted() {
    let rendered = rendered();
    let text = rendered["two"]
        .get("scaling.json")
        .expect("two has no scaling.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    for field in ["phase", "capacity", "app", "alerts"] {
        assert!(doc[field].is_object(), "no {field} in {text}");
    }
    insta::with_settings!({ omit_expression => true }, {
        insta::assert_snapshot!("two__scaling.json", text);
    });
}
