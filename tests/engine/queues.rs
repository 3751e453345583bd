//! A queue Redis in Compose (`queue_redis`): its own service that never
//! evicts and keeps its data through a kill, the app's BullMQ jobs on it
//! and none on the phase's Redis, which evicts as a cache.

use super::*;

/// A phase after launch: launch, with its queues on a Redis of their own
/// and its cache free to evict.
const QUEUED: &str = "extends: launch
name: queued
order: 5
redis: { maxmemory_policy: allkeys-lru }
queue_redis: { maxmemory_mb: 64 }
";

#[test]
fn the_app_queues_on_its_own_redis_in_compose() {
    let _engine = engine();
    test_images();
    let sandbox = debian_phases("engine-queues");
    // Launch and this phase alone: after enterprise's cluster it would
    // move the queues and change the mode at once (TRN005).
    for later in ["growth.yaml", "scale.yaml", "enterprise.toml"] {
        std::fs::remove_file(sandbox.path(&format!("phases/{later}"))).unwrap();
    }
    std::fs::write(sandbox.path("phases/queued.yaml"), QUEUED).unwrap();
    let _down = Down;
    let (out, took) = up(&sandbox, "queued");
    assert!(out.status.success(), "scaleplan up queued:\n{}", text(&out));
    eprintln!("queued: up and healthy in {:.1} s", took.as_secs_f64());

    let q = |args: &[&str]| redis_cli_on("redis-queues", 6379, args);
    assert_eq!(
        q(&["CONFIG", "GET", "maxmemory-policy"]),
        "maxmemory-policy\nnoeviction"
    );
    assert_eq!(q(&["CONFIG", "GET", "appendonly"]), "appendonly\nyes");
    assert_eq!(
        redis_cli(&["CONFIG", "GET", "maxmemory-policy"]),
        "maxmemory-policy\nallkeys-lru"
    );

    // The app's contract names the queue Redis, and BullMQ through it
    // works from the project's network.
    let env_file = filled_app_env(&sandbox, "queued");
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env.lines()
            .any(|l| l == "BULLMQ_REDIS_URL=redis://redis-queues:6379"),
        "{env}"
    );
    let doc = clients(&env_file, &["bullmq", "--jobs", "200"]);
    assert_eq!(doc["own_redis"], true, "{doc}");

    // The reference backend queues a notification through the edge; its
    // worker completes it on the queue Redis, and the cache holds no
    // BullMQ key.
    let (_, answer) = testkit::http_post(3000, "/notifications", r#"{"user":7,"text":"hi"}"#)
        .expect("POST /notifications answers");
    let job: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    let id = job["id"].as_str().expect("a job id").to_owned();
    let queue = job["queue"].as_str().unwrap().to_owned();
    let key = format!("bull:{queue}:{id}");
    eventually(
        "the job completed on the queue Redis",
        Duration::from_secs(30),
        || !q(&["HGET", &key, "finishedOn"]).is_empty(),
    );
    assert_eq!(redis_cli(&["--scan", "--pattern", "bull:*"]), "");

    // Its data survives a kill: every write appended, fsynced each second.
    assert_eq!(q(&["SET", "engine:queued", "kept"]), "OK");
    std::thread::sleep(Duration::from_secs(2));
    let kill = docker(
        &[
            "compose",
            "-p",
            PROJECT,
            "kill",
            "-s",
            "KILL",
            "redis-queues",
        ],
        Duration::from_secs(60),
    );
    assert!(kill.status.success(), "{}", text(&kill));
    let start = docker(
        &["start", &format!("{PROJECT}-redis-queues-1")],
        Duration::from_secs(60),
    );
    assert!(start.status.success(), "{}", text(&start));
    eventually(
        "the queue Redis answers again",
        Duration::from_secs(60),
        || {
            docker(
                &[
                    "compose",
                    "-p",
                    PROJECT,
                    "exec",
                    "-T",
                    "redis-queues",
                    "redis-cli",
                    "ping",
                ],
                Duration::from_secs(20),
            )
            .status
            .success()
        },
    );
    assert_eq!(q(&["GET", "engine:queued"]), "kept");

    // Every kind of container restarts in place (a crash, the engine or
    // the machine restarting) and serves again: each writes its auth file
    // anew on every start, where its own user can.
    for service in ["postgres-primary", "pgbouncer-1", "redis-1"] {
        let restart = docker(
            &["restart", "--time", "30", &format!("{PROJECT}-{service}-1")],
            Duration::from_secs(120),
        );
        assert!(restart.status.success(), "{service}: {}", text(&restart));
    }
    contract_settles(&env_file, Duration::from_secs(120));
    assert!(!q(&["HGET", &key, "finishedOn"]).is_empty());
}
