//! Watching a running deployment: `up --native --monitoring` runs
//! Prometheus and the exporters from the generated files, Prometheus
//! scrapes every one and records a utilisation series per resource; and
//! `scaleplan observe` names the resource a real load (pgbench through
//! PgBouncer, redis-benchmark) is pressing on.

use crate::harness::{Phase, eventually, http_get, secret};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MONITORED: u16 = 16000;
const OBSERVED: u16 = 15000;

fn query(port: u16, promql: &str) -> Vec<serde_json::Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Some((200, body)) = http_get(port, &format!("/api/v1/query?query={encoded}")) else {
        return Vec::new();
    };
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    doc["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn value(series: &serde_json::Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_scrapes_every_exporter_and_records_each_resource() {
    let d = Phase::up_with("growth", MONITORED, &["--monitoring"]);
    let prometheus = d.port("prometheus");
    // Every exporter reaches its server, not only answers Prometheus.
    let took = eventually(
        "every exporter to reach its server",
        Duration::from_secs(90),
        || {
            ["pg_up", "pgbouncer_up", "redis_up"].iter().all(|m| {
                let found = query(prometheus, m);
                !found.is_empty() && found.iter().all(|s| value(s) == 1.0)
            })
        },
    );
    eprintln!("growth: every exporter up after {took:?}");
    let (_, targets) = http_get(prometheus, "/api/v1/targets?state=active").unwrap();
    let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let targets = targets["data"]["activeTargets"].as_array().unwrap();
    // 3 PostgreSQL nodes, the PgBouncer exporter, 3 Redis nodes, 3 sentinels.
    assert_eq!(targets.len(), 10, "{targets:?}");
    assert!(targets.iter().all(|t| t["health"] == "up"), "{targets:?}");
    // A utilisation series for each resource the servers show; WebSocket
    // and the app's CPU come from the app's own metrics.
    let expected: BTreeSet<&str> = [
        "database_primary",
        "database_replicas",
        "pgbouncer_clients",
        "redis_throughput",
        "redis_memory",
    ]
    .into();
    eventually(
        "a utilisation series per resource",
        Duration::from_secs(60),
        || {
            let found = query(prometheus, "scaleplan:utilisation");
            let resources: BTreeSet<String> = found
                .iter()
                .map(|s| s["metric"]["resource"].as_str().unwrap().to_owned())
                .collect();
            expected.iter().all(|r| resources.contains(*r))
        },
    );
    // The capacity recorded is the model's: 4 cpu x 1,000 queries/s.
    let capacity = query(
        prometheus,
        "scaleplan:capacity{resource=\"database_primary\"}",
    );
    assert_eq!(value(&capacity[0]), 4000.0);
    let (_, rules) = http_get(prometheus, "/api/v1/rules").unwrap();
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let mut count = 0;
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            count += 1;
            assert_eq!(rule["health"], "ok", "{rule}");
        }
    }
    assert!(count > 40, "{count} rules");
    // `serve` reports the same deployment: status, and with monitoring
    // the utilisation `observe` reads.
    // A port no deployment's plan uses: one the kernel hands out free.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut serve = Command::new(testkit::bin())
        .current_dir(testkit::repo())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--state"])
        .arg(&d.state)
        .env_remove("SCALEPLAN_SERVE_TOKEN")
        .envs(testkit::SECRETS)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut deployment = serde_json::Value::Null;
    eventually(
        "serve to answer /v1/deployment",
        Duration::from_secs(30),
        || match http_get(port, "/v1/deployment") {
            Some((200, body)) => {
                deployment = serde_json::from_str(&body).unwrap();
                true
            }
            _ => false,
        },
    );
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(deployment["status"]["phase"], "growth", "{deployment}");
    assert_eq!(deployment["status"]["up"], true, "{deployment}");
    assert_eq!(deployment["status"]["monitoring"], true, "{deployment}");
    let readings = deployment["observation"]["readings"].as_array().unwrap();
    assert!(
        readings
            .iter()
            .any(|r| r["resource"] == "database_primary" && r["utilisation"].is_number()),
        "{deployment}"
    );
    d.down();
}

fn observe(d: &Phase) -> serde_json::Value {
    let run = testkit::run_for(
        &testkit::repo(),
        &[
            "--format",
            "json",
            "observe",
            "--state",
            &d.state.to_string_lossy(),
            "--window",
            "4",
        ],
        &testkit::SECRETS,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn utilisation(o: &serde_json::Value, resource: &str) -> f64 {
    o["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == resource)
        .and_then(|r| r["utilisation"].as_f64())
        .unwrap()
}

/// A load generator, killed if the test ends first.
struct Load(Child);

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn observe_names_the_resource_a_real_load_presses_on() {
    let d = Phase::up_at("launch", OBSERVED);
    let idle = observe(&d);
    let idle_db = utilisation(&idle, "database_primary");
    let idle_redis = utilisation(&idle, "redis_throughput");
    assert_eq!(idle["phase"], "launch");

    // Read-only transactions through PgBouncer's write database, as the
    // app would send them.
    let bouncer = d.port("pgbouncer-1").to_string();
    let pgbench = |args: &[&str]| {
        let mut cmd = Command::new(
            std::fs::read_dir("/usr/lib/postgresql")
                .ok()
                .and_then(|mut d| d.next())
                .and_then(Result::ok)
                .map(|e| e.path().join("bin/pgbench"))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| "pgbench".into()),
        );
        cmd.args(["-h", "127.0.0.1", "-p", &bouncer, "-U", "app"])
            .args(args)
            .arg("sikka")
            .env("PGPASSWORD", secret("SCALEPLAN_APP_DB_PASSWORD"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    assert!(
        pgbench(&["-i", "-s", "1", "-q"])
            .status()
            .unwrap()
            .success()
    );
    let load = Load(
        pgbench(&["-S", "-c", "8", "-j", "2", "-T", "20"])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let busy = observe(&d);
    drop(load);
    let busy_db = utilisation(&busy, "database_primary");
    eprintln!(
        "launch: database primary at {:.0}% idle, {:.0}% under pgbench; advice: {}",
        idle_db * 100.0,
        busy_db * 100.0,
        busy["advice"]["message"]
    );
    assert_eq!(busy["bottleneck"], "database_primary", "{busy}");
    assert!(busy_db > idle_db && busy_db > 0.5, "{busy}");
    assert_ne!(busy["advice"]["action"], "stay", "{busy}");
    assert!(
        busy["advice"]["message"]
            .as_str()
            .unwrap()
            .contains("scaleplan migrate growth"),
        "{busy}"
    );

    let redis_port = d.port("redis-1").to_string();
    let load = Load(
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &redis_port])
            .args(["-a", secret("SCALEPLAN_REDIS_PASSWORD")])
            .args([
                "-t", "set,get", "-n", "5000000", "-c", "50", "-P", "16", "-q",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let busy = observe(&d);
    drop(load);
    let busy_redis = utilisation(&busy, "redis_throughput");
    eprintln!(
        "launch: Redis throughput at {:.1}% idle, {:.0}% under redis-benchmark",
        idle_redis * 100.0,
        busy_redis * 100.0
    );
    assert_eq!(busy["bottleneck"], "redis_throughput", "{busy}");
    assert!(busy_redis > idle_redis && busy_redis > 0.5, "{busy}");
    d.down();
}
