//! BullMQ's queues moved onto a Redis of their own (`queue_redis`) while
//! the deployment runs: `migrate` starts the queue Redis, refuses to move
//! the queues while a job still waits on the phase's Redis, moves them once
//! drained, and only then lets the phase's Redis evict.

use crate::harness::{Phase, redis, secret};

const QUEUES: u16 = 27000;

/// Each Redis command's count on the node at `port` since its last
/// CONFIG RESETSTAT (INFO commandstats: `cmdstat_<name>:calls=N,...`).
fn calls(port: u16, command: &str) -> u64 {
    let pw = Some(secret("SCALEPLAN_REDIS_PASSWORD"));
    let stats = redis(port, pw, &["INFO", "commandstats"], None);
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn config(port: u16, key: &str) -> String {
    let pw = Some(secret("SCALEPLAN_REDIS_PASSWORD"));
    let out = redis(port, pw, &["CONFIG", "GET", key], None);
    out.lines().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn queues_move_onto_their_own_redis_once_drained_and_a_full_one_gets_room() {
    let phases = testkit::repo().join("tests/fixtures/queues");
    let mut d = Phase::up_from(Some(&phases), "shared", QUEUES);
    let pw = Some(secret("SCALEPLAN_REDIS_PASSWORD"));
    let cache = d.port("redis-1");
    // A job BullMQ left waiting on the phase's Redis, in BullMQ's own key
    // layout (`<prefix>:<queue>:meta` and `:wait`).
    redis(
        cache,
        pw,
        &["HSET", "bull:stuck:meta", "opts.maxLenEvents", "10000"],
        None,
    );
    redis(cache, pw, &["LPUSH", "bull:stuck:wait", "1"], None);

    let run = d.migrate("own", &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("Move BullMQ's queues onto redis-queues")
            && run.stderr.contains(
                "1 BullMQ job(s) are not finished where the queues are now (bull:stuck: 1 wait)"
            ),
        "{}",
        run.stderr
    );
    // Still the cache's old policy, running and in the file it restarts
    // from: the step that lets it evict comes after.
    assert_eq!(config(cache, "maxmemory-policy"), "noeviction");
    let conf =
        std::fs::read_to_string(d.state.join("config/local/redis/redis-1/redis.conf")).unwrap();
    assert!(conf.contains("maxmemory-policy noeviction"), "{conf}");
    let queue_port = d.port("redis-queues");
    assert_eq!(config(queue_port, "maxmemory-policy"), "noeviction");
    assert_eq!(config(queue_port, "appendonly"), "yes");

    // Drained: the migration resumes and finishes.
    redis(
        cache,
        pw,
        &["DEL", "bull:stuck:wait", "bull:stuck:meta"],
        None,
    );
    let run = d.migrate("own", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("resuming the migration"),
        "{}",
        run.stdout
    );
    assert_eq!(config(cache, "maxmemory-policy"), "allkeys-lru");
    let env = std::fs::read_to_string(d.state.join("app.env")).unwrap();
    assert!(
        env.lines()
            .any(|l| l == format!("BULLMQ_REDIS_URL=redis://127.0.0.1:{queue_port}")),
        "{env}"
    );

    // BullMQ through the contract: every script call on the queue Redis,
    // none on the cache.
    for port in [cache, queue_port] {
        redis(port, pw, &["CONFIG", "RESETSTAT"], None);
    }
    let doc = crate::clients::bullmq(&d, "standalone");
    assert_eq!(doc["own_redis"], true, "{doc}");
    assert!(
        calls(queue_port, "evalsha") + calls(queue_port, "eval") >= 1000,
        "{doc}"
    );
    assert_eq!(calls(cache, "evalsha") + calls(cache, "eval"), 0);

    // The queue Redis full (its limit set below what it holds, as a
    // backlog would fill it): a new job is refused, and nothing it held
    // is evicted.
    let keys = redis(queue_port, pw, &["DBSIZE"], None);
    redis(queue_port, pw, &["CONFIG", "SET", "maxmemory", "1mb"], None);
    let refused = redis(queue_port, pw, &["LPUSH", "bull:full:wait", "1"], None);
    assert!(refused.contains("OOM command not allowed"), "{refused}");
    assert_eq!(redis(queue_port, pw, &["DBSIZE"], None), keys);
    // How full it is, as docs/recovery.md looks: past its maxmemory.
    let memory = redis(queue_port, pw, &["INFO", "memory"], None);
    let field = |name: &str| -> u64 {
        memory
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {memory}"))
    };
    assert!(field("used_memory") > field("maxmemory"), "{memory}");
    assert!(memory.contains("maxmemory_policy:noeviction"), "{memory}");
    // More room, as docs/recovery.md says: the next phase's limit, set at
    // run time by `migrate` and read back.
    let run = d.migrate("bigger", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("The queue Redis's maxmemory 64 -> 128 MB"),
        "{}",
        run.stdout
    );
    assert_eq!(config(queue_port, "maxmemory"), (128u64 << 20).to_string());
    let taken = redis(queue_port, pw, &["LPUSH", "bull:full:wait", "1"], None);
    assert_eq!(taken, "1");
    redis(queue_port, pw, &["DEL", "bull:full:wait"], None);

    let status = d.status();
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(status.stdout.contains("redis-queues "), "{}", status.stdout);
    d.down();
}

const EVICTING: u16 = 31000;

/// `used_memory` and `maxmemory` of the node at `port` (INFO memory).
fn memory(port: u16) -> (u64, u64) {
    let pw = Some(secret("SCALEPLAN_REDIS_PASSWORD"));
    let info = redis(port, pw, &["INFO", "memory"], None);
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {info}"))
    };
    (field("used_memory"), field("maxmemory"))
}

#[test]
fn a_cache_near_its_maxmemory_is_not_switched_to_noeviction() {
    let phases = testkit::repo().join("tests/fixtures/evicting");
    let mut d = Phase::up_from(Some(&phases), "cache", EVICTING);
    let pw = Some(secret("SCALEPLAN_REDIS_PASSWORD"));
    let cache = d.port("redis-1");
    assert_eq!(config(cache, "maxmemory-policy"), "allkeys-lru");
    // No queues, no BullMQ in the contract.
    let env = std::fs::read_to_string(d.state.join("app.env")).unwrap();
    assert!(!env.contains("BULLMQ_"), "{env}");

    // Cache keys of 64 KiB each until the node holds 93% of its maxmemory
    // (below it, so LRU has evicted nothing yet).
    let mut written = 0;
    loop {
        let (used, max) = memory(cache);
        if used * 100 >= max * 93 {
            break;
        }
        assert!(
            written < 1000,
            "{written} keys and still {used} of {max} bytes"
        );
        for _ in 0..8 {
            redis(
                cache,
                pw,
                &["SETRANGE", &format!("cache:{written}"), "65535", "x"],
                None,
            );
            written += 1;
        }
    }
    let (used, max) = memory(cache);
    assert!(used < max, "{used} of {max}");
    let held = redis(cache, pw, &["DBSIZE"], None);
    assert_eq!(held, written.to_string());

    // The first step, before anything queues there, refuses: under
    // noeviction this node would refuse writes at once.
    let run = d.migrate("queues", &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("step 1 of")
            && run.stderr.contains("redis-1: used_memory")
            && run.stderr.contains("of maxmemory 16 MB")
            && run.stderr.contains("free memory first"),
        "{}",
        run.stderr
    );
    assert_eq!(config(cache, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(redis(cache, pw, &["DBSIZE"], None), held);
    let env = std::fs::read_to_string(d.state.join("app.env")).unwrap();
    assert!(!env.contains("BULLMQ_"), "{env}");

    // Room made, as the message says: the migration resumes, the node stops
    // evicting and the contract offers BullMQ.
    redis(cache, pw, &["FLUSHALL"], None);
    let run = d.migrate("queues", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(config(cache, "maxmemory-policy"), "noeviction");
    let conf =
        std::fs::read_to_string(d.state.join("config/local/redis/redis-1/redis.conf")).unwrap();
    assert!(conf.contains("maxmemory-policy noeviction"), "{conf}");
    let env = std::fs::read_to_string(d.state.join("app.env")).unwrap();
    assert!(env.contains("BULLMQ_PREFIX="), "{env}");
    d.down();
}
