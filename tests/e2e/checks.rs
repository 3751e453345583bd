//! What each component must do once up, asserted against the real servers.

use crate::harness::{Phase, eventually, psql, redis, secret};
use std::collections::BTreeSet;
use std::time::Duration;

fn app_pw() -> &'static str {
    secret("SCALEPLAN_APP_DB_PASSWORD")
}

fn admin_pw() -> &'static str {
    secret("SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD")
}

fn redis_pw() -> Option<&'static str> {
    Some(secret("SCALEPLAN_REDIS_PASSWORD"))
}

/// Writes through PgBouncer's write database land on the primary; reads
/// through every instance's read database are answered by a standby (or the
/// primary when the phase has none) and see the write once replicated.
pub fn postgres_routing(phase: &Phase, db: &str, replicas: usize) {
    let primary = phase.port("postgres-primary");
    let replica_ports: BTreeSet<u16> = (1..=replicas)
        .map(|i| phase.port(&format!("postgres-replica-{i}")))
        .collect();
    assert_eq!(replica_ports.len(), replicas);
    let bouncers = phase.of_kind("pgbouncer");
    let ro = format!("{db}_ro");

    let wrote = psql(
        bouncers[0].port,
        "app",
        app_pw(),
        db,
        "CREATE TABLE IF NOT EXISTS e2e_probe (id int PRIMARY KEY, note text); \
         INSERT INTO e2e_probe VALUES (1, 'via pgbouncer') ON CONFLICT DO NOTHING; \
         SELECT inet_server_port() || ' ' || pg_is_in_recovery()",
    )
    .expect("write through PgBouncer");
    assert_eq!(
        wrote,
        format!("{primary} false"),
        "the write database must be the primary"
    );

    let mut answered = BTreeSet::new();
    for bouncer in &bouncers {
        let who = psql(
            bouncer.port,
            "app",
            app_pw(),
            &ro,
            "SELECT inet_server_port() || ' ' || pg_is_in_recovery()",
        )
        .expect("read through PgBouncer");
        let (port, recovering) = who.split_once(' ').unwrap();
        let port: u16 = port.parse().unwrap();
        if replicas == 0 {
            assert_eq!(
                (port, recovering),
                (primary, "false"),
                "{}: reads go to the primary",
                bouncer.name
            );
        } else {
            assert!(
                replica_ports.contains(&port),
                "{}: read answered by {port}, not a replica",
                bouncer.name
            );
            assert_eq!(
                recovering, "true",
                "{}: the read server is not a standby",
                bouncer.name
            );
        }
        answered.insert(port);
        let lag = eventually(
            "the write to reach the read server",
            Duration::from_secs(15),
            || {
                psql(
                    bouncer.port,
                    "app",
                    app_pw(),
                    &ro,
                    "SELECT count(*) FROM e2e_probe WHERE id = 1",
                )
                .as_deref()
                    == Ok("1")
            },
        );
        eprintln!(
            "{}: {} sees the write after {:?}",
            phase.name, bouncer.name, lag
        );
        // Only once the table has replicated: before that the standby
        // answers "relation does not exist", not "read-only".
        if replicas > 0 {
            let refused = psql(
                bouncer.port,
                "app",
                app_pw(),
                &ro,
                "INSERT INTO e2e_probe VALUES (2, 'no')",
            );
            let message = refused.expect_err("a standby accepted a write");
            assert!(message.contains("read-only"), "{}: {message}", bouncer.name);
        }
    }
    if replicas > 0 && bouncers.len() >= replicas {
        assert_eq!(
            answered, replica_ports,
            "the PgBouncer instances together must read from every replica"
        );
    }
}

/// The pool settings in force (PgBouncer's admin console) are the spec's,
/// as `scaleplan inspect` reports them; a wrong password is refused.
pub fn pgbouncer_settings(phase: &Phase) {
    let spec = testkit::run_in(
        &testkit::repo(),
        &["inspect", &phase.name, "--output", "json"],
        &[],
    );
    let spec: serde_json::Value = serde_json::from_str(&spec.stdout).expect("inspect");
    let pgb = &spec["pgbouncer"];
    let pool_mode = pgb["pool_mode"].as_str().unwrap();
    let (pool, reserve, max_client) = (
        &pgb["default_pool_size"],
        &pgb["reserve_pool_size"],
        &pgb["max_client_conn"],
    );
    let primary = phase.port("postgres-primary");
    for bouncer in phase.of_kind("pgbouncer") {
        let config = psql(
            bouncer.port,
            "pgbouncer_admin",
            admin_pw(),
            "pgbouncer",
            "SHOW CONFIG",
        )
        .expect("admin console");
        let get = |key: &str| -> String {
            config
                .lines()
                .find_map(|l| {
                    l.split_once('|')
                        .filter(|(k, _)| *k == key)
                        .map(|(_, rest)| rest.split('|').next().unwrap().to_owned())
                })
                .unwrap_or_else(|| panic!("SHOW CONFIG lacks {key}"))
        };
        assert_eq!(get("pool_mode"), pool_mode, "{}", bouncer.name);
        assert_eq!(
            get("default_pool_size"),
            pool.to_string(),
            "{}",
            bouncer.name
        );
        assert_eq!(
            get("reserve_pool_size"),
            reserve.to_string(),
            "{}",
            bouncer.name
        );
        assert_eq!(
            get("max_client_conn"),
            max_client.to_string(),
            "{}",
            bouncer.name
        );
        assert_eq!(get("auth_type"), "scram-sha-256", "{}", bouncer.name);

        let databases = psql(
            bouncer.port,
            "pgbouncer_admin",
            admin_pw(),
            "pgbouncer",
            "SHOW DATABASES",
        )
        .unwrap();
        let write = databases
            .lines()
            .find(|l| l.starts_with("sikka|"))
            .expect("write database");
        let cols: Vec<&str> = write.split('|').collect();
        assert_eq!(
            (cols[1], cols[2]),
            ("127.0.0.1", primary.to_string().as_str()),
            "{}: {write}",
            bouncer.name
        );
        assert!(
            databases.lines().any(|l| l.starts_with("sikka_ro|")),
            "{}: no read database",
            bouncer.name
        );

        let refused =
            psql(bouncer.port, "app", "not-the-password", "sikka", "SELECT 1").unwrap_err();
        assert!(
            refused.contains("authentication failed"),
            "{}: wrong password not refused: {refused}",
            bouncer.name
        );
    }
}

pub fn redis_standalone_auth(phase: &Phase) {
    let port = phase.port("redis-1");
    let anonymous = redis(port, None, &["PING"], None);
    assert!(
        anonymous.contains("NOAUTH"),
        "a client without the password was served: {anonymous}"
    );
    let wrong = redis(port, Some("wrong-password"), &["PING"], None);
    assert!(
        wrong.contains("WRONGPASS") || wrong.contains("invalid"),
        "wrong password accepted: {wrong}"
    );
    assert_eq!(redis(port, redis_pw(), &["PING"], None), "PONG");
    assert_eq!(
        redis(port, redis_pw(), &["SET", "e2e:key", "value"], None),
        "OK"
    );
    assert_eq!(redis(port, redis_pw(), &["GET", "e2e:key"], None), "value");
    assert_eq!(
        redis(port, redis_pw(), &["CONFIG", "GET", "maxmemory"], None),
        "maxmemory\n1073741824"
    );
    assert_eq!(
        redis(
            port,
            redis_pw(),
            &["CONFIG", "GET", "maxmemory-policy"],
            None
        ),
        "maxmemory-policy\nnoeviction"
    );
    assert_eq!(
        redis(port, redis_pw(), &["CONFIG", "GET", "protected-mode"], None),
        "protected-mode\nyes"
    );
}

fn master_addr(port: u16, master: &str) -> String {
    redis(
        port,
        redis_pw(),
        &["SENTINEL", "get-master-addr-by-name", master],
        None,
    )
}

/// Writes a replica acknowledged (WAIT) before the master is killed are all
/// readable after failover; a new master is elected within down-after plus
/// a bounded margin, and every sentinel agrees on it.
pub fn sentinel_failover(phase: &Phase, master: &str, down_after_ms: u64) {
    let old = phase.port("redis-1");
    let sentinels = phase.of_kind("sentinel");
    assert_eq!(sentinels.len(), 3);
    for s in &sentinels {
        assert_eq!(
            master_addr(s.port, master),
            format!("127.0.0.1\n{old}"),
            "{} disagrees before failover",
            s.name
        );
    }
    let keys = 200;
    let mut script: String = (0..keys).map(|i| format!("SET e2e:{i} v{i}\n")).collect();
    script.push_str("WAIT 2 5000\n");
    let reply = redis(old, redis_pw(), &[], Some(&script));
    let acked: u32 = reply.lines().last().unwrap().trim().parse().unwrap_or(0);
    assert!(acked >= 1, "no replica acknowledged the writes: {reply}");

    phase.kill_hard("redis-1");
    let limit = Duration::from_millis(down_after_ms) + Duration::from_secs(15);
    let mut new_addr = String::new();
    let took = eventually("the sentinels to agree on a new master", limit, || {
        let addrs: BTreeSet<String> = sentinels
            .iter()
            .map(|s| master_addr(s.port, master))
            .collect();
        new_addr = addrs.iter().next().cloned().unwrap_or_default();
        addrs.len() == 1
            && !new_addr.ends_with(&format!("\n{old}"))
            && new_addr.starts_with("127.0.0.1\n")
    });
    eprintln!(
        "{}: new master {} elected {took:?} after kill -9 (down-after {down_after_ms} ms)",
        phase.name,
        new_addr.replace('\n', ":")
    );
    let new: u16 = new_addr.lines().nth(1).unwrap().parse().unwrap();
    eventually(
        "the new master to take the role",
        Duration::from_secs(10),
        || redis(new, redis_pw(), &["ROLE"], None).starts_with("master"),
    );
    let names: Vec<String> = (0..keys).map(|i| format!("e2e:{i}")).collect();
    let mut args = vec!["MGET"];
    args.extend(names.iter().map(String::as_str));
    let values = redis(new, redis_pw(), &args, None);
    let expected: Vec<String> = (0..keys).map(|i| format!("v{i}")).collect();
    assert_eq!(
        values.lines().collect::<Vec<_>>(),
        expected,
        "acknowledged writes lost in failover"
    );
}

fn info_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}:"))
            .map(|v| v.trim().to_owned())
    })
}

/// All slots covered; after a master is killed its replica takes over, the
/// cluster reports ok, and keys written before are still readable.
pub fn cluster_failover(phase: &Phase, shards: usize, node_timeout_ms: u64) {
    let nodes = phase.of_kind("redis");
    let seed = nodes[0].port;
    let check = redis(
        seed,
        redis_pw(),
        &["--cluster", "check", &format!("127.0.0.1:{seed}")],
        None,
    );
    assert!(check.contains("[OK] All 16384 slots covered"), "{check}");
    let info = redis(seed, redis_pw(), &["CLUSTER", "INFO"], None);
    assert_eq!(info_field(&info, "cluster_size"), Some(shards.to_string()));
    assert_eq!(
        info_field(&info, "cluster_known_nodes"),
        Some(nodes.len().to_string())
    );

    let keys = 200;
    let script: String = (0..keys).map(|i| format!("SET e2e:{i} v{i}\n")).collect();
    let reply = redis(seed, redis_pw(), &["-c"], Some(&script));
    assert_eq!(
        reply.lines().filter(|l| *l == "OK").count(),
        keys,
        "{reply}"
    );
    // Every master's replicas have everything before the kill.
    for node in &nodes {
        eventually("replicas to catch up", Duration::from_secs(15), || {
            let repl = redis(node.port, redis_pw(), &["INFO", "replication"], None);
            if info_field(&repl, "role").as_deref() != Some("master") {
                return true;
            }
            let offset = info_field(&repl, "master_repl_offset").unwrap_or_default();
            repl.lines()
                .filter(|l| l.starts_with("slave"))
                .all(|l| l.contains(&format!("offset={offset},")))
        });
    }

    let victim = &nodes[0];
    assert!(redis(victim.port, redis_pw(), &["ROLE"], None).starts_with("master"));
    let victim_id = redis(victim.port, redis_pw(), &["CLUSTER", "MYID"], None);
    let survivor = nodes[1].port;
    let topology = redis(survivor, redis_pw(), &["CLUSTER", "NODES"], None);
    let replica_port: u16 = topology
        .lines()
        .find(|l| l.contains(&format!("slave {victim_id}")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|addr| addr.split(['@', ',']).next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no replica of {victim_id} in:\n{topology}"));

    phase.kill_hard(&victim.name);
    let limit = Duration::from_millis(node_timeout_ms) + Duration::from_secs(15);
    let took = eventually(
        "the replica to take over and the cluster to be ok",
        limit,
        || {
            // Every survivor, not just one: `redis-cli -c` follows a
            // redirect to whichever node owns the slot, and a node that has
            // not yet heard of the promotion still answers CLUSTERDOWN.
            redis(replica_port, redis_pw(), &["ROLE"], None).starts_with("master")
                && nodes.iter().filter(|n| n.name != victim.name).all(|n| {
                    info_field(
                        &redis(n.port, redis_pw(), &["CLUSTER", "INFO"], None),
                        "cluster_state",
                    )
                    .as_deref()
                        == Some("ok")
                })
        },
    );
    eprintln!(
        "{}: replica 127.0.0.1:{replica_port} took over {took:?} after kill -9 (node timeout {node_timeout_ms} ms)",
        phase.name
    );

    let script: String = (0..keys).map(|i| format!("GET e2e:{i}\n")).collect();
    let values = redis(survivor, redis_pw(), &["-c"], Some(&script));
    let expected: Vec<String> = (0..keys).map(|i| format!("v{i}")).collect();
    // redis-cli -c notes each redirect on a line of its own.
    let got: Vec<&str> = values
        .lines()
        .filter(|l| !l.starts_with("-> Redirected"))
        .collect();
    assert_eq!(got, expected, "keys lost in failover");
}
