//! The app's side, with the drivers a NestJS backend uses: the Node.js
//! program in tests/clients (pg, ioredis, bullmq from npm, pinned in its
//! package-lock.json) reads only the app.env `up --native` wrote, and
//! proves the contract: writes, reads from a standby, Redis in the phase's
//! mode, a BullMQ round trip, and what the client sees when a node fails.

use crate::harness::Phase;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn app() -> PathBuf {
    let dir = testkit::repo().join("tests/clients");
    assert!(
        dir.join("node_modules/pg").is_dir(),
        "tests/clients has no node_modules: scripts/test runs `npm ci` there"
    );
    dir.join("app.mjs")
}

fn node(args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(app())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a subcommand to the end (bounded) and returns its JSON document.
fn run(args: &[&str], limit: Duration) -> serde_json::Value {
    let child = node(args).spawn().expect("node starts");
    finish(child, args, limit)
}

fn finish(child: Child, args: &[&str], limit: Duration) -> serde_json::Value {
    let (ok, doc, stderr) = finish_any(child, args, limit);
    assert!(ok, "node {args:?} failed:\n{doc}\n{stderr}");
    doc
}

/// The program's document and stderr, and whether it exited 0.
fn finish_any(
    mut child: Child,
    args: &[&str],
    limit: Duration,
) -> (bool, serde_json::Value, String) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("node {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.success(), doc, stderr)
}

fn env_file(phase: &Phase) -> String {
    let path = phase.state.join("app.env");
    let mode = std::fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077,
        0,
        "app.env is readable by others"
    );
    path.to_string_lossy().into_owned()
}

/// pg writes through DATABASE_URL, reads through DATABASE_READ_URL from a
/// standby where the phase has one and sees the write within a second;
/// ioredis in the phase's mode sets and reads 1,000 keys and runs a MULTI;
/// BullMQ completes 1,000 jobs on each of the contract's queues. Returns
/// the BullMQ run's document.
pub fn contract(phase: &Phase, mode: &str, standby: bool) -> serde_json::Value {
    let env = env_file(phase);
    let doc = run(&["contract", &env], Duration::from_secs(90));
    assert_eq!(doc["ok"], true, "{doc}");
    let pg = &doc["postgres"];
    assert_eq!(pg["read_from_standby"], standby, "{doc}");
    assert!(pg["replication_delay_ms"].as_u64().unwrap() < 1000, "{doc}");
    assert_eq!(doc["redis"]["mode"], mode, "{doc}");
    assert_eq!(doc["redis"]["keys"], 1000);
    assert_eq!(doc["redis"]["multi"], true);
    eprintln!("{}: contract {doc}", phase.name);
    pubsub(phase, mode);
    bullmq(phase, mode)
}

/// The Socket.IO adapter's transport as SOCKETIO_ADAPTER says: in cluster
/// mode SSUBSCRIBE/SPUBLISH on channels in every master's slots, through an
/// ioredis Cluster with `shardedSubscribers: true`, every message arriving;
/// and the counter-proof, that without the option a channel on another
/// shard is lost (what the README's example warns of). Elsewhere plain
/// SUBSCRIBE/PUBLISH.
pub fn pubsub(phase: &Phase, mode: &str) {
    let env = env_file(phase);
    let doc = run(&["pubsub", &env], Duration::from_secs(120));
    let adapter = if mode == "cluster" {
        "sharded"
    } else {
        "redis"
    };
    assert_eq!(
        (doc["ok"].as_bool(), doc["adapter"].as_str()),
        (Some(true), Some(adapter)),
        "{doc}"
    );
    assert_eq!(doc["received"], doc["channels"], "{doc}");
    if mode == "cluster" {
        let masters = doc["masters"].as_u64().unwrap();
        assert!(masters >= 3, "{doc}");
        assert_eq!(doc["channels"].as_u64(), Some(4 * masters), "{doc}");
        let args = ["pubsub", env.as_str(), "--plain-subscriber", "1"];
        let (ok, plain, _) = finish_any(
            node(&args).spawn().unwrap(),
            &args,
            Duration::from_secs(120),
        );
        assert!(
            !ok && plain["ok"] == false,
            "a plain cluster subscriber got every sharded message: {plain}"
        );
        eprintln!(
            "{}: without shardedSubscribers: {}",
            phase.name, plain["error"]
        );
    }
    eprintln!("{}: pubsub {doc}", phase.name);
}

/// The queues app.env gives BullMQ (BULLMQ_QUEUES: queue=prefix pairs),
/// in order; none when the variable is absent.
pub fn contract_queues(phase: &Phase) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(phase.state.join("app.env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("BULLMQ_QUEUES="))
        .map(|v| {
            v.split(',')
                .map(|pair| {
                    let (queue, prefix) = pair.split_once('=').unwrap();
                    (queue.to_owned(), prefix.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// BullMQ (Queue, Worker, QueueEvents) over connections built from app.env
/// alone: 1,000 jobs enqueued, processed and completed on each queue the
/// contract names (BULLMQ_QUEUES; else one queue on BULLMQ_PREFIX), every
/// completion seen by the Worker and by QueueEvents, every return value
/// stored, and BullMQ's own Prometheus metrics counting the backlog before
/// and the completions after. In cluster mode every key of a queue is in
/// its hash tag's slot on one master, and no two queues share a slot.
pub fn bullmq(phase: &Phase, mode: &str) -> serde_json::Value {
    let env = env_file(phase);
    let expected = contract_queues(phase);
    let doc = run(
        &["bullmq", &env, "--jobs", "1000"],
        Duration::from_secs(150),
    );
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["mode"], mode, "{doc}");
    assert_eq!(doc["from_contract"], !expected.is_empty(), "{doc}");
    let queues = doc["queues"].as_array().unwrap();
    let names: Vec<(&str, &str)> = queues
        .iter()
        .map(|q| (q["name"].as_str().unwrap(), q["prefix"].as_str().unwrap()))
        .collect();
    if expected.is_empty() {
        assert_eq!(names.len(), 1, "{doc}");
    } else {
        let expected: Vec<(&str, &str)> = expected
            .iter()
            .map(|(q, p)| (q.as_str(), p.as_str()))
            .collect();
        assert_eq!(names, expected, "{doc}");
    }
    for q in queues {
        for (field, want) in [
            ("completed", 1000),
            ("completion_events", 1000),
            ("stored_return_values_ok", 1000),
            ("failed", 0),
            ("waiting_before", 1000),
            ("waiting_after", 0),
            ("completed_total", 1000),
        ] {
            assert_eq!(q[field], want, "{field}: {q}");
        }
        assert!(q["keys"].as_u64().unwrap() >= 1000, "{q}");
        if mode == "cluster" {
            let tag = &q["tag_slot"];
            assert_eq!(q["slots"], serde_json::json!([tag]), "{q}");
            assert_eq!(q["nodes"].as_array().unwrap().len(), 1, "{q}");
        }
    }
    if mode == "cluster" {
        let mut slots: Vec<u64> = queues
            .iter()
            .map(|q| q["tag_slot"].as_u64().unwrap())
            .collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), queues.len(), "two queues share a slot: {doc}");
    }
    eprintln!(
        "{}: BullMQ 1,000 jobs on each of {} in {} s: {}",
        phase.name,
        names
            .iter()
            .map(|(q, p)| format!("{p}:{q}"))
            .collect::<Vec<_>>()
            .join(", "),
        doc["seconds"],
        queues
            .iter()
            .map(|q| format!(
                "{} {} keys on {} (slot {})",
                q["name"], q["keys"], q["nodes"], q["tag_slot"]
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    doc
}

/// A writer through ioredis (WAIT 1 in Sentinel mode, the owning master in
/// a cluster) while `kill` takes a master down: the client follows by
/// itself, and every acknowledged key is readable afterwards. Returns the
/// longest gap between acknowledged writes, in ms.
pub fn redis_failover(phase: &Phase, kill: impl FnOnce()) -> u64 {
    let env = env_file(phase);
    let out = phase.state.join("writer.json");
    let out_arg = out.to_string_lossy().into_owned();
    let args = [
        "redis-writer",
        env.as_str(),
        "--seconds",
        "20",
        "--rate",
        "50",
        "--out",
        out_arg.as_str(),
    ];
    let writer = node(&args).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    kill();
    finish(writer, &args, Duration::from_secs(60));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let acked = written["acked"].as_array().unwrap().len();
    assert!(acked > 300, "only {acked} writes acknowledged: {written}");
    let verify = run(
        &["redis-verify", &env, "--in", &out_arg],
        Duration::from_secs(60),
    );
    assert_eq!(verify["ok"], true, "acknowledged keys lost: {verify}");
    assert_eq!(verify["checked"].as_u64().unwrap() as usize, acked);
    let gap = written["longest_gap_ms"].as_u64().unwrap();
    eprintln!(
        "{}: {acked} acknowledged writes, 0 lost; the client's longest gap {gap} ms",
        phase.name
    );
    gap
}

/// Reads through DATABASE_READ_URL every 100 ms while `stop` takes a
/// replica down: they fail for a bounded window, then succeed again.
/// Returns the longest failure window, in ms.
pub fn read_probe(phase: &Phase, stop: impl FnOnce()) -> u64 {
    let env = env_file(phase);
    let args = ["read-probe", env.as_str(), "--seconds", "12"];
    let probe = node(&args).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stop();
    let doc = finish(probe, &args, Duration::from_secs(60));
    let window = doc["longest_failure_window_ms"].as_u64().unwrap();
    let attempts = doc["attempts"].as_u64().unwrap();
    let failures = doc["failures"].as_u64().unwrap();
    assert!(attempts > 50, "{doc}");
    eprintln!(
        "{}: reads with a replica down: {failures} of {attempts} failed, longest window {window} ms",
        phase.name
    );
    // The last attempts succeed again: reads recovered.
    let windows = doc["windows"].as_array().unwrap();
    if let Some(last) = windows.last() {
        let end = last[1].as_u64().unwrap();
        assert!(end < 11_000, "reads had not recovered by the end: {doc}");
    }
    window
}

/// Socket.IO across two replicas of the reference backend: a member on
/// replica A receives a broadcast sent through replica B.
pub fn rooms(phase: &Phase, a: &str, b: &str) -> serde_json::Value {
    let env = env_file(phase);
    run(
        &["rooms", &env, "--a", a, "--b", b],
        Duration::from_secs(60),
    )
}
