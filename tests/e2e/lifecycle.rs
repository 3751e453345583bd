//! One deployment through its phases and its restarts: rows and keys
//! survive every offline phase change, a replica recovers from a wiped or
//! half-cloned data directory and a lost slot, a rotated Redis password is
//! the only one that works after a restart, and a cluster comes back whole.

use crate::harness::{Phase, eventually, pid_alive, psql, redis, secret};
use std::time::{Duration, Instant};

const ROWS: usize = 500;
const KEYS: usize = 300;

fn pg_super() -> &'static str {
    secret("SCALEPLAN_POSTGRES_PASSWORD")
}

fn write_rows(phase: &Phase) {
    let bouncer = phase.port("pgbouncer-1");
    let app = secret("SCALEPLAN_APP_DB_PASSWORD");
    psql(
        bouncer,
        "app",
        app,
        "sikka",
        &format!(
            "CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept SELECT i, md5(i::text) FROM generate_series(1, {ROWS}) i"
        ),
    )
    .unwrap();
}

/// Every row is there, read on the primary and through PgBouncer.
fn assert_rows(phase: &Phase, password: &str) {
    let sum = psql(
        phase.port("postgres-primary"),
        "postgres",
        pg_super(),
        "sikka",
        "SELECT count(*) || ' ' || sum(length(v)) FROM kept",
    )
    .unwrap();
    assert_eq!(sum, format!("{ROWS} {}", ROWS * 32), "{}", phase.name);
    let through = psql(
        phase.port("pgbouncer-1"),
        "app",
        secret("SCALEPLAN_APP_DB_PASSWORD"),
        "sikka",
        "SELECT count(*) FROM kept",
    )
    .unwrap();
    assert_eq!(through, ROWS.to_string());
    let _ = password;
}

/// Keys k:0.. with values, every tenth with a TTL of an hour.
fn write_keys(port: u16, password: &str) {
    let script: String = (0..KEYS)
        .map(|i| {
            if i % 10 == 0 {
                format!("SET k:{i} v{i} EX 3600\n")
            } else {
                format!("SET k:{i} v{i}\n")
            }
        })
        .collect();
    let reply = redis(port, Some(password), &[], Some(&script));
    assert_eq!(
        reply.lines().filter(|l| *l == "OK").count(),
        KEYS,
        "{reply}"
    );
}

/// Every key is readable with its value, and the ones written with a TTL
/// still have one. `cluster` follows redirects.
fn assert_keys(port: u16, password: &str, cluster: bool) {
    let args: &[&str] = if cluster { &["-c"] } else { &[] };
    let script: String = (0..KEYS)
        .map(|i| format!("GET k:{i}\nTTL k:{i}\n"))
        .collect();
    let reply = redis(port, Some(password), args, Some(&script));
    let lines: Vec<&str> = reply
        .lines()
        .filter(|l| !l.starts_with("-> Redirected"))
        .collect();
    assert_eq!(lines.len(), KEYS * 2, "{reply}");
    for i in 0..KEYS {
        assert_eq!(lines[2 * i], format!("v{i}"), "k:{i}");
        let ttl: i64 = lines[2 * i + 1].parse().unwrap();
        if i % 10 == 0 {
            assert!(ttl > 0 && ttl <= 3600, "k:{i} lost its TTL: {ttl}");
        } else {
            assert_eq!(ttl, -1, "k:{i} gained a TTL");
        }
    }
}

fn pw_everywhere(phase: &Phase, password: &str, kind: &str) -> Vec<(String, String)> {
    phase
        .of_kind(kind)
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                redis(p.port, Some(password), &["PING"], None),
            )
        })
        .collect()
}

/// launch -> growth -> scale -> enterprise, each moved offline (down, then
/// up of the next phase in the same state directory): every row and key
/// stays. Along the way a Redis password is rotated, and a cluster phase
/// is brought down and up again.
#[test]
fn one_deployment_grows_through_every_phase_keeping_every_byte() {
    let redis_pw = secret("SCALEPLAN_REDIS_PASSWORD");
    let mut d = Phase::up_at("launch", 21000);
    write_rows(&d);
    write_keys(d.port("redis-1"), redis_pw);
    let mut times = Vec::new();

    for (next, seed) in [("growth", "redis-1"), ("scale", "redis-shard1-1")] {
        d.stop_checked();
        let started = Instant::now();
        d.bring(next, &[]);
        times.push((next, started.elapsed()));
        d.assert_runs_from_out();
        assert_rows(&d, redis_pw);
        assert_keys(d.port(seed), redis_pw, next == "scale");
    }
    // scale brought the data into the cluster and retired the Sentinel
    // group's directories, which it keeps.
    for old in ["redis-1", "redis-2", "redis-3", "sentinel-1"] {
        assert!(!d.state.join(old).exists(), "{old} was not retired");
        assert!(d.state.join("retired/growth").join(old).is_dir());
    }

    // A cluster comes back after down and up: every slot covered, every
    // key readable.
    d.stop_checked();
    d.bring("scale", &[]);
    let seed = d.port("redis-shard1-1");
    let check = redis(
        seed,
        Some(redis_pw),
        &["--cluster", "check", &format!("127.0.0.1:{seed}")],
        None,
    );
    assert!(check.contains("[OK] All 16384 slots covered"), "{check}");
    assert_keys(seed, redis_pw, true);

    d.stop_checked();
    let started = Instant::now();
    d.bring("enterprise", &[]);
    times.push(("enterprise", started.elapsed()));
    d.assert_runs_from_out();
    assert_rows(&d, redis_pw);
    assert_keys(d.port("redis-shard1-1"), redis_pw, true);
    let info = redis(seed, Some(redis_pw), &["CLUSTER", "INFO"], None);
    assert!(info.contains("cluster_size:6"), "{info}");
    for (phase, took) in times {
        eprintln!("offline change to {phase}: {:.1} s", took.as_secs_f64());
    }
    d.down();
}

/// A rotated Redis password: after a restart the old one is refused and the
/// new one accepted on every node and every sentinel, and the data stays.
#[test]
fn a_rotated_redis_password_is_the_only_one_after_a_restart() {
    let old = secret("SCALEPLAN_REDIS_PASSWORD");
    let new = "e2e-Redis-rotated-4r9q";
    let mut d = Phase::up_at("growth", 22000);
    write_keys(d.port("redis-1"), old);
    // A failover makes Sentinel and the nodes rewrite their files with
    // the password in them: the restart must not read it back.
    let sentinel = d.port("sentinel-1");
    assert_eq!(
        redis(
            sentinel,
            Some(old),
            &["SENTINEL", "FAILOVER", "sikka"],
            None
        ),
        "OK"
    );
    eventually("the failover", Duration::from_secs(30), || {
        !redis(
            sentinel,
            Some(old),
            &["SENTINEL", "get-master-addr-by-name", "sikka"],
            None,
        )
        .ends_with(&d.port("redis-1").to_string())
    });
    eventually("the old master to follow", Duration::from_secs(30), || {
        redis(d.port("redis-1"), Some(old), &["ROLE"], None).starts_with("slave")
    });
    d.stop_checked();
    d.bring("growth", &[("SCALEPLAN_REDIS_PASSWORD", new)]);
    for kind in ["redis", "sentinel"] {
        for (name, reply) in pw_everywhere(&d, old, kind) {
            assert!(
                reply.contains("WRONGPASS") || reply.contains("invalid"),
                "{name} still takes the old password: {reply}"
            );
        }
        for (name, reply) in pw_everywhere(&d, new, kind) {
            assert_eq!(reply, "PONG", "{name} refuses the new password");
        }
    }
    let master = redis(
        d.port("sentinel-2"),
        Some(new),
        &["SENTINEL", "get-master-addr-by-name", "sikka"],
        None,
    );
    let master_port: u16 = master.lines().last().unwrap().parse().unwrap();
    assert_keys(master_port, new, false);
    // No password in clear in a file a start reads back.
    for node in ["redis-1", "redis-2", "redis-3", "sentinel-1"] {
        let conf = if node.starts_with("sentinel") {
            "sentinel.conf"
        } else {
            "redis.conf"
        };
        let text = std::fs::read_to_string(d.state.join(node).join(conf)).unwrap();
        assert!(!text.contains(old), "{node}/{conf} keeps the old password");
    }
    d.down();
}

fn streaming(phase: &Phase, replica: &str) -> bool {
    psql(
        phase.port(replica),
        "postgres",
        pg_super(),
        "postgres",
        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
    )
    .is_ok_and(|n| n == "1")
}

/// A replica comes back from a wiped data directory, from a dropped slot,
/// and from a clone killed half-way, each time with `up` of the running
/// phase, which starts only what is not running.
#[test]
fn a_replica_recovers_from_a_wiped_directory_a_lost_slot_and_a_broken_clone() {
    let mut d = Phase::up_at("growth", 23000);
    write_rows(&d);
    let primary_pid = d.proc("postgres-primary").pid;
    let data = d.state.join("postgres-replica-1/data");

    // Wiped while the primary runs.
    d.kill_group("postgres-replica-1");
    std::fs::remove_dir_all(&data).unwrap();
    let run = d.bring("growth", &[]);
    assert!(
        run.stdout
            .contains("postgres-primary       already running"),
        "{}",
        run.stdout
    );
    assert_eq!(
        d.proc("postgres-primary").pid,
        primary_pid,
        "the primary was restarted"
    );
    assert!(streaming(&d, "postgres-replica-1"));
    let log = std::fs::read_to_string(d.state.join("logs/postgres-replica-1.log")).unwrap();
    assert!(log.contains("(no complete clone)"), "{log}");

    // Its slot dropped while it is down: cloned again, with a new slot.
    d.kill_group("postgres-replica-1");
    psql(
        d.port("postgres-primary"),
        "postgres",
        pg_super(),
        "postgres",
        "SELECT pg_drop_replication_slot('replica_1')",
    )
    .unwrap();
    d.bring("growth", &[]);
    assert!(streaming(&d, "postgres-replica-1"));
    let log = std::fs::read_to_string(d.state.join("logs/postgres-replica-1.log")).unwrap();
    assert!(log.contains("(its replication slot is gone)"), "{log}");

    // A clone killed half-way: the next start begins it again. The clone
    // is slowed down so that it can be caught in the middle.
    d.kill_group("postgres-replica-1");
    std::fs::remove_dir_all(&data).unwrap();
    let state = d.state.clone();
    let port = d.base_port.to_string();
    let mut slow = std::process::Command::new(testkit::bin())
        .args([
            "up",
            "growth",
            "--native",
            "--state",
            &state.to_string_lossy(),
            "--base-port",
            &port,
        ])
        .envs(testkit::SECRETS)
        .env("SCALEPLAN_CLONE_MAX_RATE", "1M")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .current_dir(testkit::repo())
        .spawn()
        .unwrap();
    let clone = state.join("postgres-replica-1/data.clone");
    eventually("the clone to start", Duration::from_secs(30), || {
        std::fs::read_dir(&clone).is_ok_and(|mut d| d.next().is_some())
    });
    let _ = slow.kill();
    let _ = slow.wait();
    let record = std::fs::read_to_string(state.join("state.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&record).unwrap();
    let cloning = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "postgres-replica-1")
        .and_then(|p| p["pid"].as_u64())
        .unwrap() as u32;
    let _ = std::process::Command::new("kill")
        .args(["-9", "--", &format!("-{cloning}")])
        .status();
    eventually("the clone to stop", Duration::from_secs(10), || {
        !pid_alive(cloning)
    });
    assert!(clone.is_dir() && !data.exists(), "not caught half-way");
    d.bring("growth", &[]);
    assert!(streaming(&d, "postgres-replica-1"));
    assert!(!clone.exists(), "the broken clone was left behind");
    let count = psql(
        d.port("postgres-replica-1"),
        "postgres",
        pg_super(),
        "sikka",
        "SELECT count(*) FROM kept",
    )
    .unwrap();
    assert_eq!(count, ROWS.to_string());
    d.down();
}

/// Going back to an earlier phase needs allow_downgrade: refused, and
/// nothing is started.
#[test]
fn an_earlier_phase_is_refused_over_a_later_one() {
    let sandbox = testkit::Sandbox::new("downgrade");
    let state = sandbox.path("st");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("state.json"),
        r#"{"phase": "growth", "order": 2, "base_port": 17000, "processes": []}"#,
    )
    .unwrap();
    let run = testkit::run_in(
        &testkit::repo(),
        &[
            "up",
            "launch",
            "--native",
            "--state",
            &state.to_string_lossy(),
        ],
        &testkit::SECRETS,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("allow_downgrade"), "{}", run.stderr);
    assert!(!state.join("postgres-primary").exists());
}
