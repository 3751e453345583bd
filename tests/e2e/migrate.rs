//! `scaleplan migrate` on real servers: launch -> growth -> scale ->
//! enterprise while the app writes, nothing acknowledged lost, each
//! migrated deployment the same as a fresh `up` of its phase; and a failed
//! step that stops the migration, which a second run resumes.

use crate::fingerprint;
use crate::harness::Phase;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Base ports: the migrated deployment, the fresh one it is compared
/// with, the one whose migration fails half-way, and the one that shrinks
/// with its own fresh comparison. Each keeps its
/// cluster bus ports (10000 above) under 32768, where the kernel's
/// ephemeral ports start.
const MIGRATED: u16 = 21500;
const FRESH: u16 = 20500;
const RESUMED: u16 = 19500;
const SHRUNK: u16 = 18500;
const FRESH_SMALL: u16 = 17500;

/// The longest a component may go without an acknowledged write during a
/// migration. PostgreSQL: the primary's restart is the one pause, and
/// PgBouncer holds queries across it (PAUSE ... RESUME), so writes wait
/// for a fast shutdown and a start: seconds at most. Redis: the cut-over
/// pauses writes while every key is copied again and checked (a few
/// thousand keys here, well under a second), then the app's client reads
/// app.env again (polled every 200 ms) and connects to the cluster; a
/// rebalance moves slots with MIGRATE, which holds a key for the length of
/// one batch. 10 s is several times what either takes on two busy cores,
/// and far below what would be an outage.
const GAP_BOUND_MS: u64 = 10_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn app() -> PathBuf {
    let dir = testkit::repo().join("tests/clients");
    assert!(
        dir.join("node_modules/pg").is_dir(),
        "tests/clients has no node_modules: scripts/test runs `npm ci` there"
    );
    dir.join("app.mjs")
}

/// The app's writer (tests/clients, pg and ioredis), killed if the test
/// fails before it stops it.
struct Writer {
    child: Option<Child>,
    run: String,
    acks: PathBuf,
    stop: PathBuf,
}

impl Writer {
    fn start(phase: &Phase) -> Writer {
        let dir = phase.state.parent().unwrap().join(format!(
            "scaleplan-writer-{}-{}",
            phase.base_port,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (acks, stop) = (dir.join("acks.jsonl"), dir.join("stop"));
        let run = format!("m{}", std::process::id());
        let child = Command::new("node")
            .arg(app())
            .arg("migration-writer")
            .arg(phase.state.join("app.env"))
            .args(["--run", &run, "--rate", "20", "--seconds", "900"])
            .arg("--stop")
            .arg(&stop)
            .arg("--out")
            .arg(&acks)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let w = Writer {
            child: Some(child),
            run,
            acks,
            stop,
        };
        crate::harness::eventually("the writer's first writes", Duration::from_secs(30), || {
            w.acked().len() > 10
        });
        w
    }

    /// (component, n, time in ms) of each acknowledged write so far.
    fn acked(&self) -> Vec<(String, u64, u64)> {
        std::fs::read_to_string(&self.acks)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                (
                    v["c"].as_str().unwrap().to_owned(),
                    v["n"].as_u64().unwrap(),
                    v["t"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// The longest time between two acknowledged writes of `component`
    /// that spans any part of [from, to].
    fn longest_gap(&self, component: &str, from: u64, to: u64) -> u64 {
        let times: Vec<u64> = self
            .acked()
            .into_iter()
            .filter(|(c, _, _)| c == component)
            .map(|(_, _, t)| t)
            .collect();
        times
            .windows(2)
            .filter(|w| w[1] >= from && w[0] <= to)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(u64::MAX)
    }

    /// Every acknowledged row and key read back through the app's current
    /// variables.
    fn verify(&self, phase: &Phase) -> serde_json::Value {
        let out = Command::new("node")
            .arg(app())
            .arg("migration-verify")
            .arg(phase.state.join("app.env"))
            .args(["--run", &self.run, "--acks"])
            .arg(&self.acks)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(
            out.status.success() && doc["ok"] == true,
            "acknowledged writes lost: {doc}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        doc
    }

    fn finish(mut self) -> serde_json::Value {
        std::fs::write(&self.stop, "").unwrap();
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the writer did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            out.status.success() && doc["ok"] == true,
            "writer: {doc}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        doc
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.acks.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The migrated deployment against a fresh `up` of the same phase.
fn assert_same_as_fresh(migrated: &Phase, fresh_base: u16) {
    let args: Vec<&str> = migrated.up_args.iter().map(String::as_str).collect();
    let fresh = Phase::start(
        migrated.phases.as_deref(),
        &migrated.name,
        fresh_base,
        &args,
    );
    let (a, b) = (
        fingerprint::of(migrated, migrated.base_port),
        fingerprint::of(&fresh, migrated.base_port),
    );
    fresh.down();
    let differ = fingerprint::differences(&a, &b);
    assert!(
        differ.is_empty(),
        "{}: migrated | fresh differ on {} of {} values:\n{}",
        migrated.name,
        differ.len(),
        a.len(),
        differ.join("\n")
    );
    eprintln!(
        "{}: the migrated deployment equals a fresh one on all {} values",
        migrated.name,
        a.len()
    );
}

/// `migrate TO` while the writer writes: the time it took, every
/// acknowledged write still there, the longest gap per component under
/// the bound, and the result the same as a fresh `up` of TO.
fn migrate_checked(d: &mut Phase, writer: &Writer, to: &str, fresh_base: u16) -> String {
    let from = d.name.clone();
    let (start, began) = (now_ms(), Instant::now());
    let run = d.migrate(to, &[]);
    let took = began.elapsed();
    assert_eq!(
        run.code, 0,
        "migrate {to} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    eprintln!("{}", run.stdout);
    let end = now_ms();
    // Writes continue after the migration: the gap that spans its end is
    // closed by the next acknowledged write.
    std::thread::sleep(Duration::from_secs(2));
    let (pg, redis) = (
        writer.longest_gap("pg", start, end),
        writer.longest_gap("redis", start, end),
    );
    let verified = writer.verify(d);
    let line = format!(
        "{from} -> {to}: {:.1} s; longest write gap PostgreSQL {pg} ms, Redis {redis} ms; {} rows and {} keys acknowledged, 0 lost",
        took.as_secs_f64(),
        verified["pg"]["checked"],
        verified["redis"]["checked"]
    );
    eprintln!("{line}");
    assert!(
        pg < GAP_BOUND_MS && redis < GAP_BOUND_MS,
        "{line}: over the {GAP_BOUND_MS} ms bound"
    );
    let status = d.status();
    assert!(
        status.stdout.contains(&format!("phase {to} ")) && !status.stdout.contains("migrating"),
        "{}",
        status.stdout
    );
    assert_same_as_fresh(d, fresh_base);
    line
}

#[test]
fn a_running_deployment_migrates_through_every_phase_losing_nothing() {
    let mut d = Phase::up_at("launch", MIGRATED);
    let writer = Writer::start(&d);
    let mut summary = Vec::new();
    for to in ["growth", "scale", "enterprise"] {
        summary.push(migrate_checked(&mut d, &writer, to, FRESH));
        d.assert_runs_from_out();
        // The comparison reads what the servers report: here, what the
        // phase changed.
        let f = fingerprint::of(&d, MIGRATED);
        let max_connections = match to {
            "growth" => "300",
            "scale" => "500",
            _ => "800",
        };
        assert_eq!(
            f["postgres postgres-primary max_connections"], max_connections,
            "{to}"
        );
    }
    let done = writer.finish();
    eprintln!("writer: {done}");
    for line in summary {
        eprintln!("migration: {line}");
    }
    d.down();
}

#[test]
fn going_back_to_a_smaller_phase_drains_before_it_stops() {
    let phases = testkit::repo().join("tests/fixtures/shrink");
    // With monitoring, which follows the deployment to the smaller phase.
    let mut d = Phase::start(Some(&phases), "large", SHRUNK, &["--monitoring"]);
    // The notification worker's queues over Sentinel, from the contract:
    // BullMQ's default prefix outside a cluster.
    assert_eq!(
        crate::clients::contract_queues(&d),
        [
            ("push-notifier".to_owned(), "bull".to_owned()),
            ("broadcast-notifier".to_owned(), "bull".to_owned()),
        ]
    );
    crate::clients::bullmq(&d, "sentinel");
    let writer = Writer::start(&d);
    let line = migrate_checked(&mut d, &writer, "small", FRESH_SMALL);
    eprintln!("migration: {line}");
    let f = fingerprint::of(&d, SHRUNK);
    assert_eq!(f["sentinel sentinel-1 num-slaves"], "1");
    assert!(!f.contains_key("process postgres-replica-2"));
    assert!(!f.contains_key("process pgbouncer-2"));
    for gone in ["postgres-replica-2", "pgbouncer-2", "redis-3"] {
        assert!(
            d.state.join("retired/large").join(gone).is_dir(),
            "{gone} not kept under retired/large"
        );
    }
    let slots = crate::harness::psql(
        d.port("postgres-primary"),
        "postgres",
        crate::harness::secret("SCALEPLAN_POSTGRES_PASSWORD"),
        "postgres",
        "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots",
    )
    .unwrap();
    assert_eq!(
        slots, "replica_1",
        "the removed replica's slot must be dropped"
    );
    // Prometheus runs again with the smaller phase's targets: 2 PostgreSQL
    // nodes, the PgBouncer exporter, 2 Redis nodes and 3 sentinels.
    // Where the plan put it, as the bring-up recorded it.
    let prometheus = d.port("prometheus");
    crate::harness::eventually(
        "Prometheus to scrape the smaller phase",
        Duration::from_secs(60),
        || {
            crate::harness::http_get(prometheus, "/api/v1/targets?state=active")
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                .and_then(|doc| doc["data"]["activeTargets"].as_array().cloned())
                .is_some_and(|t| t.len() == 8 && t.iter().all(|t| t["health"] == "up"))
        },
    );
    writer.finish();
    d.down();
}

#[test]
fn a_failed_step_stops_the_migration_and_the_next_run_resumes_it() {
    let mut d = Phase::up_at("launch", RESUMED);
    // pgbouncer-2's port taken: the step that starts it fails. The port
    // is the plan's, read from growth's generated file and moved to this
    // deployment's base port.
    let ini = std::fs::read_to_string(
        testkit::repo().join("out/growth/local/pgbouncer/pgbouncer-2/pgbouncer.ini"),
    )
    .unwrap();
    let port: u16 = crate::harness::shift_ports(&ini, crate::harness::SPEC_BASE_PORT, RESUMED)
        .lines()
        .find_map(|l| l.strip_prefix("listen_port = ")?.trim().parse().ok())
        .expect("pgbouncer-2's listen_port");
    let blocker = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let run = d.migrate("growth", &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("step 7 of 12 (Start PgBouncer instances pgbouncer-2) failed")
            && run.stderr.contains("steps 1-6 are done and checked")
            && run.stderr.contains(&format!(
                "run `scaleplan migrate growth --state {}` to resume at step 7",
                d.state.display()
            )),
        "{}",
        run.stderr
    );
    let status = d.status();
    assert!(
        status.stdout.contains(
            "migrating launch -> growth: step 7 of 12 (Start PgBouncer instances pgbouncer-2)"
        ),
        "{}",
        status.stdout
    );
    // Neither `up` of either phase nor another target interrupts it.
    let up = d.try_bring("launch", &[]);
    assert_eq!(up.code, 1);
    assert!(
        up.stderr
            .contains("migrating launch -> growth: step 7 of 12"),
        "{}",
        up.stderr
    );
    let elsewhere = d.migrate("scale", &["--dry-run"]);
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    drop(blocker);
    let run = d.migrate("growth", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("resuming the migration")
            && run.stdout.contains("at step 7 of 12")
            && !run.stdout.contains("[1/12]"),
        "{}",
        run.stdout
    );
    // Running it again is a no-op.
    let again = d.migrate("growth", &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("runs growth already"),
        "{}",
        again.stdout
    );
    d.assert_runs_from_out();
    d.down();
}
