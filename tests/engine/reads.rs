//! The cloud's read route, run: the pgbouncer.ini every PgBouncer task on
//! AWS starts with (terraform/modules/region/pgbouncer.ini.tftpl), filled
//! with two streaming replicas' names as Terraform fills it with RDS's,
//! run by Debian 13's PgBouncer 1.24 in a container. Both replicas serve
//! reads; with one stopped every read is answered by the other; started
//! again, it serves again.

use super::{
    Sandbox, build_image, debian_phases, docker, engine, eventually, open_to_containers, run, text,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NETWORK: &str = "scaleplan-test-reads";
const PRIMARY: &str = "scaleplan-test-reads-primary";
const REPLICAS: [&str; 2] = [
    "scaleplan-test-reads-replica-1",
    "scaleplan-test-reads-replica-2",
];
const PGBOUNCER: &str = "scaleplan-test-reads-pgbouncer";
const PASSWORD: &str = "reads-test-password";

/// The containers and the network this test makes, removed when it ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in [PGBOUNCER, REPLICAS[0], REPLICAS[1], PRIMARY] {
            let _ = docker(&["rm", "-f", "-v", name], Duration::from_secs(60));
        }
        let _ = docker(&["network", "rm", NETWORK], Duration::from_secs(60));
    }
}

fn must(args: &[&str]) -> String {
    let out = docker(args, Duration::from_secs(120));
    assert!(out.status.success(), "docker {args:?}:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A PostgreSQL 17 server from the `debian` postgres image, as `name` on
/// the test's network: the primary creates its cluster, a replica clones
/// the primary (retrying until it answers) and streams from it.
fn start_postgres(image: &str, name: &str, alias: &str, replica: bool) {
    let serve = format!(
        "exec postgres -D /tmp/d -c listen_addresses='*' -c unix_socket_directories=/tmp -c cluster_name={alias}"
    );
    let script = if replica {
        format!(
            "for i in $(seq 60); do pg_basebackup -h primary -U app -D /tmp/d -R -X stream -c fast && break; rm -rf /tmp/d; sleep 1; done; {serve}"
        )
    } else {
        format!(
            "initdb -D /tmp/d -U app --auth=trust >/dev/null && echo 'host all all all trust' >> /tmp/d/pg_hba.conf && echo 'host replication all all trust' >> /tmp/d/pg_hba.conf && {serve}"
        )
    };
    must(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        NETWORK,
        "--network-alias",
        alias,
        "--entrypoint",
        "sh",
        image,
        "-c",
        &script,
    ]);
}

/// One query through PgBouncer's read database: the answering server's
/// cluster_name, or the error.
fn read_once(port: &str, sql: &str) -> Result<String, String> {
    let out = run(
        Command::new("psql")
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", port])
            .args(["-U", "app", "-d", "sikka_ro", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10"),
        Duration::from_secs(30),
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(text(&out))
    }
}

const WHO: &str = "select current_setting('cluster_name') where pg_is_in_recovery()";

/// `n` reads one after another: how many each server answered; every
/// read must succeed and come from a standby.
fn sequential(port: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let who = read_once(port, WHO).unwrap_or_else(|e| panic!("read {i} of {n} failed: {e}"));
        assert!(!who.is_empty(), "read {i} was answered by the primary");
        *seen.entry(who).or_insert(0) += 1;
    }
    seen
}

/// `n` reads at once, each holding its server for a moment, so the pool
/// opens several server connections.
fn concurrent(port: &str, n: usize) -> BTreeMap<String, usize> {
    let sql = "select current_setting('cluster_name'), pg_sleep(0.4) where pg_is_in_recovery()";
    let answers: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| read_once(port, sql))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = BTreeMap::new();
    for answer in answers {
        let who = answer.unwrap_or_else(|e| panic!("a concurrent read failed: {e}"));
        let who = who.trim_end_matches('|').to_owned();
        assert!(!who.is_empty(), "a read was answered by the primary");
        *seen.entry(who).or_insert(0) += 1;
    }
    seen
}

/// The AWS pgbouncer.ini with this test's servers for RDS's.
fn cloud_ini(shipped: &Sandbox, dir: &Path) {
    let run = shipped.run(&["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let template = std::fs::read_to_string(
        shipped.path("out/growth/terraform/modules/region/pgbouncer.ini.tftpl"),
    )
    .unwrap();
    assert!(
        template.contains(
            "sikka_ro = host=${reader_hosts} port=5432 dbname=sikka load_balance_hosts=round-robin"
        ),
        "the read database no longer lists the region's replicas:\n{template}"
    );
    assert!(
        template.contains("\nserver_round_robin = 1\n"),
        "{template}"
    );
    let ini: String = template
        .replace("${writer_address}", "primary")
        .replace("${reader_hosts}", "replica-1,replica-2")
        .replace(
            "auth_file = /tmp/userlist.txt",
            "auth_file = /cfg/userlist.txt",
        )
        .lines()
        // No TLS between the test's containers: the certificate check is
        // RDS's (and PGB006's); what runs here is the host list.
        .filter(|l| !l.starts_with("server_tls_"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
    std::fs::write(
        dir.join("userlist.txt"),
        format!("\"app\" \"{PASSWORD}\"\n\"pgbouncer_admin\" \"{PASSWORD}\"\n"),
    )
    .unwrap();
}

#[test]
fn the_cloud_read_route_spreads_and_skips_a_stopped_replica() {
    let _engine = engine();
    let shipped = Sandbox::shipped("cloud-reads");
    let dir = shipped.path("pgbouncer");
    std::fs::create_dir_all(&dir).unwrap();
    open_to_containers(&dir);
    cloud_ini(&shipped, &dir);

    // The images `targets.compose.images: debian` builds (PostgreSQL 17,
    // PgBouncer 1.24), from their generated Dockerfiles.
    let debian = debian_phases("cloud-reads-images");
    let built = debian.run(&["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let images = debian.path("out/growth/compose/images");
    for family in ["postgres", "pgbouncer"] {
        let context = images.join(family);
        build_image(
            &format!("scaleplan/{family}:trixie"),
            &context.join("Dockerfile"),
            &context,
            &[],
        );
    }
    let version = must(&[
        "run",
        "--rm",
        "--entrypoint",
        "pgbouncer",
        "scaleplan/pgbouncer:trixie",
        "--version",
    ]);
    assert!(version.starts_with("PgBouncer 1.24"), "{version}");

    // What an interrupted run left, then the guard for this one.
    drop(Cleanup);
    let _cleanup = Cleanup;
    must(&["network", "create", NETWORK]);
    start_postgres("scaleplan/postgres:trixie", PRIMARY, "primary", false);
    eventually("the primary to answer", Duration::from_secs(60), || {
        docker(
            &[
                "exec",
                PRIMARY,
                "psql",
                "-h",
                "/tmp",
                "-U",
                "app",
                "-d",
                "postgres",
                "-c",
                "create database sikka",
            ],
            Duration::from_secs(30),
        )
        .status
        .success()
    });
    for (name, alias) in REPLICAS.iter().zip(["replica-1", "replica-2"]) {
        start_postgres("scaleplan/postgres:trixie", name, alias, true);
    }
    let streaming = || {
        docker(
            &[
                "exec",
                PRIMARY,
                "psql",
                "-A",
                "-t",
                "-h",
                "/tmp",
                "-U",
                "app",
                "-d",
                "postgres",
                "-c",
                "select count(*) from pg_stat_replication where state = 'streaming'",
            ],
            Duration::from_secs(30),
        )
    };
    eventually("both replicas to stream", Duration::from_secs(120), || {
        String::from_utf8_lossy(&streaming().stdout).trim() == "2"
    });
    // Streaming starts before a standby is consistent and takes reads.
    for name in REPLICAS {
        eventually(
            &format!("{name} to take reads"),
            Duration::from_secs(60),
            || {
                docker(
                    &[
                        "exec", name, "psql", "-h", "/tmp", "-U", "app", "-d", "sikka", "-c",
                        "select 1",
                    ],
                    Duration::from_secs(30),
                )
                .status
                .success()
            },
        );
    }

    must(&[
        "run",
        "-d",
        "--name",
        PGBOUNCER,
        "--network",
        NETWORK,
        "-p",
        "127.0.0.1::6432",
        "-v",
        &format!("{}:/cfg:ro", dir.display()),
        "--entrypoint",
        "pgbouncer",
        "scaleplan/pgbouncer:trixie",
        "/cfg/pgbouncer.ini",
    ]);
    let published = must(&["port", PGBOUNCER, "6432/tcp"]);
    let port = published
        .lines()
        .next()
        .and_then(|l| l.rsplit_once(':'))
        .map(|(_, p)| p.to_owned())
        .unwrap_or_else(|| panic!("no published port: {published}"));
    eventually("PgBouncer to serve reads", Duration::from_secs(60), || {
        read_once(&port, WHO).is_ok()
    });

    // Both serve: at once, and one after another (idle connections handed
    // out in turn).
    let at_once = concurrent(&port, 8);
    assert_eq!(at_once.len(), 2, "8 reads at once reached {at_once:?}");
    let in_turn = sequential(&port, 40);
    assert!(
        in_turn.len() == 2 && in_turn.values().all(|&n| n >= 10),
        "40 reads in a row: {in_turn:?}"
    );
    eprintln!("reads at once {at_once:?}, in a row {in_turn:?}");

    // One replica stops hard: every later read is answered, by the other.
    must(&["kill", REPLICAS[1]]);
    std::thread::sleep(Duration::from_secs(1));
    let in_turn = sequential(&port, 40);
    let at_once = concurrent(&port, 8);
    for seen in [&in_turn, &at_once] {
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            ["replica-1"],
            "with replica-2 stopped: {seen:?}"
        );
    }
    eprintln!("replica-2 stopped: in a row {in_turn:?}, at once {at_once:?}");

    // Back: the pool's connections all lead to replica-1 now; the ones it
    // opens next go to both in turn (and server_lifetime replaces the
    // others within 5 minutes).
    must(&["start", REPLICAS[1]]);
    eventually(
        "replica-2 to stream again",
        Duration::from_secs(120),
        || String::from_utf8_lossy(&streaming().stdout).trim() == "2",
    );
    let back = std::time::Instant::now();
    loop {
        let seen = concurrent(&port, 24);
        if seen.len() == 2 {
            eprintln!(
                "replica-2 streaming again: 24 reads at once {seen:?}, {:.1} s after",
                back.elapsed().as_secs_f64()
            );
            break;
        }
        if back.elapsed() > Duration::from_secs(60) {
            let logs = |name: &str| {
                text(&docker(
                    &["logs", "--tail", "30", name],
                    Duration::from_secs(30),
                ))
            };
            panic!(
                "replica-2 did not serve reads again within 60 s ({seen:?})\nreplica-2:\n{}\nPgBouncer:\n{}",
                logs(REPLICAS[1]),
                logs(PGBOUNCER)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // No client was sent an error, and PgBouncer itself logged none. A
    // server's own FATAL ("the database system is starting up" while a
    // standby reaches consistency) is a WARNING line here: PgBouncer tried
    // that host, failed over to the next, and no client saw it.
    let logs = text(&docker(&["logs", PGBOUNCER], Duration::from_secs(30)));
    let errors: Vec<&str> = logs
        .lines()
        .filter(|line| {
            let level = line
                .split_once("] ")
                .map(|(_, rest)| rest.split(' ').next());
            matches!(level, Some(Some("ERROR" | "FATAL")))
                || line.to_ascii_lowercase().contains("pooler error")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "PgBouncer errors:\n{}",
        errors.join("\n")
    );
}
