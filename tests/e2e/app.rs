//! The reference backend (examples/backend, on packages/nestjs) on a
//! running growth (`up --native`): two replicas from the contract that
//! `up` wrote, each doing the spec's modelled work per request; a room
//! broadcast crosses replicas through the Redis adapter (Sentinel); a
//! notification queued over HTTP is processed by the BullMQ worker; the
//! scaling endpoints answer; readiness goes unready while Redis is down and
//! ready again after.

use crate::clients;
use crate::harness::{Phase, eventually, http_get};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The app's processes, stopped (SIGTERM, then a kill) when the test ends.
struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for child in &mut self.0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn backend() -> PathBuf {
    let main = testkit::repo().join("examples/backend/dist/main.js");
    assert!(
        main.is_file(),
        "examples/backend is not built: scripts/test runs `npm ci` and `npm run build` there"
    );
    main
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One replica: the contract's variables from `up`'s app.env, the phase's
/// scaling.json, its own port; its log in the state directory.
fn start(phase: &Phase, port: u16) -> Child {
    let text = std::fs::read_to_string(phase.state.join("app.env")).unwrap();
    let vars = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='));
    let log = std::fs::File::create(phase.state.join(format!("example-{port}.log"))).unwrap();
    Command::new("node")
        .arg(backend())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars)
        .env(
            "SCALEPLAN_SCALING_FILE",
            testkit::repo().join(format!("out/{}/scaling.json", phase.name)),
        )
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("node starts the backend")
}

fn http_post(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((
        head.split_whitespace().nth(1)?.parse().ok()?,
        body.to_owned(),
    ))
}

fn status(port: u16, path: &str) -> u16 {
    http_get(port, path).map_or(0, |(s, _)| s)
}

fn json(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = http_get(port, path).unwrap_or_else(|| panic!("GET {path}: no answer"));
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[test]
fn the_reference_backend_runs_on_growth() {
    let mut phase = Phase::up_at("growth", 24000);
    let ports = [free_port(), free_port()];
    let replicas = Replicas(ports.iter().map(|&p| start(&phase, p)).collect());
    for &port in &ports {
        eventually("the replica ready", Duration::from_secs(60), || {
            status(port, "/health/ready") == 200
        });
    }

    // The modelled work: 3 queries a request, 80 % reads, 4 Redis
    // operations (phases/base.yaml), on average.
    let (mut reads, mut writes, mut redis) = (0, 0, 0);
    for user in 0..40 {
        let done = json(ports[user % 2], &format!("/work?user={user}"));
        reads += done["reads"].as_u64().unwrap();
        writes += done["writes"].as_u64().unwrap();
        redis += done["redis"].as_u64().unwrap();
    }
    assert_eq!(reads + writes, 120, "3 queries a request");
    assert!(
        reads > writes && writes > 0,
        "reads {reads}, writes {writes}"
    );
    assert!(redis >= 160, "Redis operations: {redis}");

    // A room broadcast from one replica reaches a member on the other.
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    clients::rooms(&phase, &url(ports[0]), &url(ports[1]));

    // A notification queued on one replica is processed by a worker.
    let (code, body) = http_post(ports[1], "/notifications", r#"{"user":7,"text":"hello"}"#)
        .expect("POST /notifications answers");
    assert_eq!(code, 201, "{body}");
    let queue = serde_json::from_str::<serde_json::Value>(&body).unwrap()["queue"]
        .as_str()
        .unwrap()
        .to_owned();
    let completed = format!("bullmq_job_count{{queue=\"{queue}\", state=\"completed\"}} 1");
    eventually(
        "the notification processed",
        Duration::from_secs(30),
        || http_get(ports[1], "/metrics").is_some_and(|(_, m)| m.contains(&completed)),
    );

    // The scaling endpoints.
    assert_eq!(json(ports[0], "/scaling/phase")["name"], "growth");
    assert_eq!(
        json(ports[0], "/scaling/capacity")["bottleneck"],
        "websocket"
    );
    assert_eq!(json(ports[0], "/scaling/status")["phase"], "growth");

    // The real k6 runs the phase's generated load test, smoke and Socket.IO
    // scenarios only (about a minute, a few requests a second, ten
    // connections), against both replicas: every threshold holds, every
    // handshake completes, and broadcasts arrive across replicas.
    let summary = phase.state.join("k6-summary.json");
    let k6 = Command::new("k6")
        .args(["run", "--quiet", "--no-color", "--summary-export"])
        .arg(&summary)
        .args(["-e", &format!("TARGET_URL={}", url(ports[0]))])
        .args([
            "-e",
            &format!(
                "WS_URLS=ws://127.0.0.1:{},ws://127.0.0.1:{}",
                ports[0], ports[1]
            ),
        ])
        .args(["-e", "SCENARIOS=smoke,socket_smoke", "-e", "SHARDS=1"])
        .arg(testkit::repo().join("out/growth/loadtest/k6.js"))
        .stdin(Stdio::null())
        .output()
        .expect("k6 runs (scripts/test installs it)");
    assert!(
        k6.status.success(),
        "k6 failed its thresholds:\n{}{}",
        String::from_utf8_lossy(&k6.stdout),
        String::from_utf8_lossy(&k6.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let metric = |name: &str, field: &str| report["metrics"][name][field].as_f64().unwrap_or(0.0);
    eprintln!(
        "k6: {} requests, {} handshakes ok of {}, {} broadcasts sent, {} received",
        metric("http_reqs", "count"),
        metric("socketio_handshake_ok", "passes"),
        metric("socketio_handshake_ok", "passes") + metric("socketio_handshake_ok", "fails"),
        metric("socketio_broadcasts_sent", "count"),
        metric("socketio_broadcasts_received", "count"),
    );
    assert!(metric("http_reqs", "count") >= 200.0, "{report}");
    assert_eq!(metric("socketio_handshake_ok", "fails"), 0.0, "{report}");
    assert!(
        metric("socketio_handshake_ok", "passes") >= 10.0,
        "{report}"
    );
    // Ten users in one room, each broadcasting every 5 s: every message
    // reaches every member, most of them on the other replica.
    assert!(
        metric("socketio_broadcasts_received", "count")
            >= 5.0 * metric("socketio_broadcasts_sent", "count"),
        "{report}"
    );

    // Redis down: unready; back: ready again.
    for node in ["redis-1", "redis-2", "redis-3"] {
        phase.kill_hard(node);
    }
    eventually("unready without Redis", Duration::from_secs(30), || {
        status(ports[0], "/health/ready") == 503
    });
    phase.bring("growth", &[]);
    eventually("ready again", Duration::from_secs(90), || {
        status(ports[0], "/health/ready") == 200
    });
    drop(replicas);
    phase.down();
}
