//! A lost primary in Compose: growth on Debian images, its primary's
//! container killed, `scaleplan promote` (the commands docs/recovery.md
//! shows for Compose). The most advanced standby is the primary, every
//! row written before is there, the app's DATABASE_URL writes again, the
//! other standby streams from it; the lost primary refuses to start as a
//! standby until it is reseeded, and after the reseed `up` brings the
//! whole phase up again with the promoted writer kept.

use super::{
    CLIENTS_IMAGE, NETWORK, PROJECT, clients, contract_settles, docker, engine, eventually,
    filled_app_env, psql, psql_on, run, started, text,
};
use scaleplan::plan::target::COMPOSE_PGBOUNCER_RUNNING;
use std::process::Command;
use std::time::{Duration, Instant};

/// psql inside a node's container, None when it fails (a table not
/// replayed yet, a server starting).
fn try_psql(node: &str, sql: &str) -> Option<String> {
    let out = docker(
        &[
            "compose", "-p", PROJECT, "exec", "-T", node, "psql", "-X", "-A", "-t", "-U",
            "postgres", "-d", "sikka", "-c", sql,
        ],
        Duration::from_secs(60),
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `scaleplan ARGS` in the sandbox, with the test secrets.
fn scaleplan(sandbox: &testkit::Sandbox, args: &[&str]) -> std::process::Output {
    run(
        Command::new(testkit::bin())
            .current_dir(&sandbox.root)
            .args(args)
            .envs(testkit::SECRETS),
        Duration::from_secs(900),
    )
}

#[test]
fn growth_promotes_the_most_advanced_standby_when_the_primary_is_lost() {
    let _engine = engine();
    let (sandbox, _down, _) = started("engine-promote", "growth");
    let env_file = filled_app_env(&sandbox, "growth");
    psql("CREATE TABLE promote_probe(id int PRIMARY KEY)");
    psql("INSERT INTO promote_probe SELECT generate_series(1, 500)");
    for standby in ["postgres-replica-1", "postgres-replica-2"] {
        eventually(
            &format!("{standby} to replay the rows"),
            Duration::from_secs(60),
            || try_psql(standby, "SELECT count(*) FROM promote_probe").as_deref() == Some("500"),
        );
    }

    // The files the deployment ran before the promotion, kept to start the
    // lost primary from later, as someone running an old copy would.
    let stale = sandbox.path("stale-compose");
    let copied = run(
        Command::new("cp")
            .arg("-a")
            .arg(sandbox.path("st/compose-target/growth/compose"))
            .arg(&stale),
        Duration::from_secs(60),
    );
    assert!(copied.status.success(), "{}", text(&copied));

    // The primary is lost: its container killed, as a host failure would.
    let killed = docker(
        &["compose", "-p", PROJECT, "kill", "postgres-primary"],
        Duration::from_secs(60),
    );
    assert!(killed.status.success(), "{}", text(&killed));
    let started_at = Instant::now();
    let out = scaleplan(&sandbox, &["promote", "growth", "--state", "st"]);
    let said = text(&out);
    assert!(out.status.success(), "scaleplan promote:\n{said}");
    eprintln!(
        "promote in Compose: {:.1} s\n{said}",
        started_at.elapsed().as_secs_f64()
    );
    let promoted = said
        .lines()
        .find_map(|l| l.split_once(" is the primary ("))
        .map(|(name, _)| name.trim().to_owned())
        .unwrap_or_else(|| panic!("promote did not name the new primary:\n{said}"));
    assert!(promoted.starts_with("postgres-replica-"), "{said}");
    assert!(
        said.contains("no acknowledged write was lost") || said.contains("committed transactions"),
        "promote did not say what the lost primary wrote after the standby's position:\n{said}"
    );
    // What the promoted node received went to the archive (the lost
    // primary may not have archived it before it died).
    assert!(
        said.contains("received from the lost primary are in the archive"),
        "{said}"
    );
    let other = if promoted == "postgres-replica-1" {
        "postgres-replica-2"
    } else {
        "postgres-replica-1"
    };

    // Every row, on a primary; the app writes through the same URL; the
    // other standby streams from the new primary.
    assert_eq!(
        psql_on(&promoted, "SELECT count(*) FROM promote_probe"),
        "500"
    );
    assert_eq!(psql_on(&promoted, "SELECT pg_is_in_recovery()"), "f");
    let contract = clients(&env_file, &["contract"]);
    assert_eq!(contract["ok"], true, "{contract}");
    assert_eq!(
        psql_on(
            &promoted,
            &format!(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = '{other}'"
            )
        ),
        "1"
    );
    psql_on(&promoted, "INSERT INTO promote_probe VALUES (501)");
    eventually(
        &format!("{other} to replay a write of the new primary"),
        Duration::from_secs(60),
        || try_psql(other, "SELECT count(*) FROM promote_probe").as_deref() == Some("501"),
    );

    // The lost primary, started as what the new files make it (a standby),
    // refuses: its data directory is a primary's.
    let compose_file = sandbox.path("st/compose-target/growth/compose/docker-compose.yml");
    let compose = |args: &[&str], env: &[(&str, &str)]| {
        run(
            Command::new("docker")
                .args(["compose", "-f"])
                .arg(&compose_file)
                .args(args)
                .envs(env.iter().copied()),
            Duration::from_secs(600),
        )
    };
    let _ = compose(&["up", "--detach", "--no-deps", "postgres-primary"], &[]);
    let logs = || text(&compose(&["logs", "--no-color", "postgres-primary"], &[]));
    eventually(
        "the lost primary to refuse to start as a standby",
        Duration::from_secs(60),
        || logs().contains("is no standby"),
    );
    let refused = logs();
    assert!(refused.contains("Nothing was deleted"), "{refused}");
    assert_eq!(
        psql_on(&promoted, "SELECT pg_is_in_recovery()"),
        "f",
        "the new primary must stay the only one"
    );
    // Started from the old files, as the primary it was, it refuses too:
    // the archive holds the promoted node's newer timeline.
    let old_file = stale.join("docker-compose.yml");
    let old_up = run(
        Command::new("docker")
            .args(["compose", "-f"])
            .arg(&old_file)
            .args([
                "up",
                "--detach",
                "--no-deps",
                "--force-recreate",
                "postgres-primary",
            ]),
        Duration::from_secs(600),
    );
    eprintln!("the old files' primary: {}", text(&old_up));
    eventually(
        "the lost primary, as the primary of the old files, to refuse",
        Duration::from_secs(60),
        || logs().contains("another node was promoted"),
    );
    assert_eq!(psql_on(&promoted, "SELECT pg_is_in_recovery()"), "f");

    // Reseeded as the error says, it streams from the new primary; `up`
    // then brings the phase up whole, the promoted writer kept.
    let id = psql_on(
        &promoted,
        "SELECT system_identifier FROM pg_control_system()",
    );
    let reseed = compose(
        &[
            "up",
            "--detach",
            "--no-deps",
            "--force-recreate",
            "--wait",
            "postgres-primary",
        ],
        &[("SCALEPLAN_RESEED", id.as_str())],
    );
    assert!(reseed.status.success(), "reseed:\n{}", text(&reseed));
    eventually(
        "the reseeded old primary to replay the rows",
        Duration::from_secs(120),
        || {
            try_psql("postgres-primary", "SELECT count(*) FROM promote_probe").as_deref()
                == Some("501")
        },
    );
    let (up, _) = super::up(&sandbox, "growth");
    eprintln!("up after the promotion:\n{}", text(&up));
    assert!(
        up.status.success(),
        "up after the promotion:\n{}",
        text(&up)
    );
    assert_eq!(psql_on(&promoted, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(
        psql_on("postgres-primary", "SELECT pg_is_in_recovery()"),
        "t"
    );
    // `up` recreated the reseeded node (its environment changed): reads
    // settle once PgBouncer has looked its new address up.
    contract_settles(&env_file, Duration::from_secs(30));

    // The proxy recreated at a new address: PgBouncer's read pools follow
    // it within seconds. PgBouncer's own lookups (c-ares) would keep the
    // old address for Docker DNS's TTL, ten minutes. Docker hands a new
    // container the lowest free address, so stand-ins hold the proxy's
    // while it is recreated.
    let address = |container: &str| {
        let out = docker(
            &[
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                container,
            ],
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let proxy = format!("{PROJECT}-pg-proxy-1");
    let old_address = address(&proxy);
    let stopped = compose(&["stop", "pg-proxy"], &[]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    let mut stand_ins = StandIns(Vec::new());
    while !stand_ins.0.iter().any(|c| address(c) == old_address) {
        assert!(
            stand_ins.0.len() < 20,
            "no stand-in took the proxy's address {old_address}"
        );
        let out = docker(
            &[
                "run",
                "--detach",
                "--rm",
                "--network",
                NETWORK,
                "--entrypoint",
                "sleep",
                CLIENTS_IMAGE,
                "600",
            ],
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", text(&out));
        stand_ins
            .0
            .push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let recreated = compose(
        &[
            "up",
            "--detach",
            "--no-deps",
            "--force-recreate",
            "--wait",
            "pg-proxy",
        ],
        &[],
    );
    assert!(recreated.status.success(), "{}", text(&recreated));
    let new_address = address(&proxy);
    assert_ne!(old_address, new_address);
    contract_settles(&env_file, Duration::from_secs(30));
    let followed = text(&compose(
        &["logs", "--no-color", "pgbouncer-1", "pgbouncer-2"],
        &[],
    ));
    assert!(
        followed.contains(&format!("pg-proxy is at {new_address}")),
        "PgBouncer did not follow the proxy to {new_address}:\n{followed}"
    );

    // The mounted file is PgBouncer's as of its start or the last HUP, as
    // with PgBouncer alone: a transition copies the next phase's files in
    // and reloads at its own step, so an edit must not go live by itself
    // within the follower's second.
    let mounted =
        sandbox.path("st/compose-target/growth/compose/pgbouncer/pgbouncer-1/pgbouncer.ini");
    let original = std::fs::read_to_string(&mounted).unwrap();
    let pool_size = |config: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix("default_pool_size = "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no default_pool_size in:\n{config}"))
    };
    let before = pool_size(&original);
    let edited: String = original
        .lines()
        .map(|l| match l.strip_prefix("default_pool_size = ") {
            Some(_) => "default_pool_size = 7\n".to_owned(),
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(before, "7");
    // In place (same inode): the container sees a bind-mounted file's
    // writes, not a replacement.
    std::fs::write(&mounted, &edited).unwrap();
    let running = || {
        let out = compose(
            &[
                "exec",
                "-T",
                "pgbouncer-1",
                "cat",
                COMPOSE_PGBOUNCER_RUNNING,
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Three of the follower's rounds.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pool_size(&running()),
        before,
        "an edit of the mounted file went live without a HUP"
    );
    let reloads = || {
        text(&compose(&["logs", "--no-color", "pgbouncer-1"], &[]))
            .matches("got SIGHUP")
            .count()
    };
    let reloads_before = reloads();
    let hup = compose(&["kill", "-s", "HUP", "pgbouncer-1"], &[]);
    assert!(hup.status.success(), "{}", text(&hup));
    let hupped = std::time::Instant::now();
    while pool_size(&running()) != "7" {
        if hupped.elapsed() > Duration::from_secs(30) {
            // What the follower had: its files and the container's processes.
            let inside = compose(
                &[
                    "exec",
                    "-T",
                    "pgbouncer-1",
                    "sh",
                    "-c",
                    "ls -la /dev/shm/scaleplan; grep -H default_pool_size /dev/shm/scaleplan/*.src /etc/pgbouncer/pgbouncer.ini; for p in /proc/[0-9]*; do echo \"${p#/proc/} $(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\"; done",
                ],
                &[],
            );
            let logs = compose(&["logs", "--no-color", "--tail", "40", "pgbouncer-1"], &[]);
            panic!(
                "PgBouncer did not run the edited file within 30 s of a HUP\ninside pgbouncer-1:\n{}\nits log:\n{}",
                text(&inside),
                text(&logs)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "the edited file ran {:.1} s after the HUP",
        hupped.elapsed().as_secs_f64()
    );
    // What it runs still names the proxy by its address.
    let now = running();
    assert!(now.contains(&format!("host={new_address}")), "{now}");
    eventually("PgBouncer to reload", Duration::from_secs(30), || {
        reloads() > reloads_before
    });
}

/// Containers that hold addresses on the project's network for a while,
/// removed when the test ends (before the project is taken down).
struct StandIns(Vec<String>);

impl Drop for StandIns {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = docker(&["rm", "--force", id], Duration::from_secs(60));
        }
    }
}
