//! The Compose target's config files, which no Docker engine here can run,
//! through the real servers' own config checks: `postgres -C` parses a whole
//! postgresql.conf, `redis-server --port 0` loads a redis.conf or
//! sentinel.conf and exits, and PgBouncer exits at once on a bad file. Only
//! the container paths (data directory, auth include, auth file, listen
//! address) are pointed at a temporary directory.

use std::path::Path;
use std::process::{Command, Stdio};
use testkit::{Sandbox, repo};

fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    testkit::files_under(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == name))
        .collect()
}

fn root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A command as the postgres user when running as root (PostgreSQL refuses
/// root), else as ourselves.
fn as_postgres(program: &Path) -> Command {
    if root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn pg_bin(name: &str) -> std::path::PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.last().unwrap().join("bin").join(name)
}

fn chown_postgres(path: &Path) {
    if root() {
        assert!(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .unwrap()
                .success()
        );
    }
}

#[test]
fn postgres_accepts_every_compose_postgresql_conf() {
    let sandbox = Sandbox::new("pg-config-check");
    std::fs::create_dir_all(sandbox.path("data")).unwrap();
    chown_postgres(&sandbox.root);
    let init = as_postgres(&pg_bin("initdb"))
        .arg("-D")
        .arg(sandbox.path("data"))
        .args(["-U", "postgres", "--auth=peer"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut checked = 0;
    for phase in ["launch", "growth", "scale", "enterprise"] {
        for conf in files_named(
            &repo().join("out").join(phase).join("compose"),
            "postgresql.conf",
        ) {
            let copy = sandbox.path("postgresql.conf");
            std::fs::copy(&conf, &copy).unwrap();
            chown_postgres(&copy);
            let out = as_postgres(&pg_bin("postgres"))
                .arg("-D")
                .arg(sandbox.path("data"))
                .arg("-c")
                .arg(format!("config_file={}", copy.display()))
                .args(["-C", "max_connections"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                conf.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = std::fs::read_to_string(&conf).unwrap();
            let expected = text
                .lines()
                .find_map(|l| l.strip_prefix("max_connections = "))
                .unwrap();
            assert!(
                expected.starts_with(String::from_utf8_lossy(&out.stdout).trim()),
                "{}",
                conf.display()
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        4 + 2 + 4 + 6,
        "the primaries and replicas of the four phases"
    );
}

#[test]
fn redis_accepts_every_compose_redis_and_sentinel_conf() {
    let sandbox = Sandbox::new("redis-config-check");
    let dir = sandbox.root.display().to_string();
    std::fs::write(
        sandbox.path("auth.conf"),
        "requirepass \"x\"\nmasterauth \"x\"\n",
    )
    .unwrap();
    std::fs::write(
        sandbox.path("sentinel-auth.conf"),
        "requirepass \"x\"\nsentinel auth-pass sikka \"x\"\nsentinel sentinel-pass \"x\"\n",
    )
    .unwrap();
    let mut checked = 0;
    for phase in ["launch", "growth", "scale", "enterprise"] {
        let compose = repo().join("out").join(phase).join("compose");
        for (name, auth, mode) in [
            ("redis.conf", "auth.conf", None),
            ("sentinel.conf", "sentinel-auth.conf", Some("--sentinel")),
        ] {
            for conf in files_named(&compose, name) {
                let text = std::fs::read_to_string(&conf)
                    .unwrap()
                    .replace("\ndir /data\n", &format!("\ndir {dir}\n"))
                    .replace(
                        "include /run/scaleplan/redis-auth.conf",
                        &format!("include {dir}/{auth}"),
                    );
                let copy = sandbox.path(name);
                std::fs::write(&copy, text).unwrap();
                let mut cmd = Command::new("redis-server");
                cmd.arg(&copy);
                if let Some(m) = mode {
                    cmd.arg(m);
                }
                let out = cmd
                    .args([
                        "--port",
                        "0",
                        "--tls-port",
                        "0",
                        "--unixsocket",
                        "",
                        "--daemonize",
                        "no",
                        "--logfile",
                        "",
                    ])
                    .output()
                    .unwrap();
                let log = String::from_utf8_lossy(&out.stdout);
                assert!(
                    log.contains("Configured to not listen anywhere"),
                    "{}:\n{log}",
                    conf.display()
                );
                assert!(
                    !log.contains("FATAL CONFIG FILE ERROR"),
                    "{}:\n{log}",
                    conf.display()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 1 + (3 + 3) + 6 + 12);
}

#[test]
fn pgbouncer_accepts_every_compose_pgbouncer_ini() {
    let sandbox = Sandbox::new("pgbouncer-config-check");
    std::fs::write(sandbox.path("userlist.txt"), "\"app\" \"x\"\n").unwrap();
    chown_postgres(&sandbox.root);
    let mut checked = 0;
    for phase in ["launch", "growth", "scale", "enterprise"] {
        for ini in files_named(
            &repo().join("out").join(phase).join("compose"),
            "pgbouncer.ini",
        ) {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let text = std::fs::read_to_string(&ini).unwrap();
            let text = text
                .replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1")
                .replace("listen_port = 6432", &format!("listen_port = {port}"))
                .replace(
                    "auth_file = /run/scaleplan/userlist.txt",
                    &format!("auth_file = {}", sandbox.path("userlist.txt").display()),
                );
            let copy = sandbox.path("pgbouncer.ini");
            std::fs::write(&copy, text).unwrap();
            chown_postgres(&copy);
            // A good file keeps PgBouncer running (timeout ends it: 124); a
            // bad one makes it exit at once.
            let mut cmd = Command::new("timeout");
            cmd.arg("1").arg("pgbouncer");
            if root() {
                cmd.args(["-u", "postgres"]);
            }
            let out = cmd.arg(&copy).current_dir(&sandbox.root).output().unwrap();
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(124), "{}:\n{log}", ini.display());
            assert!(
                !log.contains("ERROR") && !log.contains("FATAL"),
                "{}:\n{log}",
                ini.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 1 + 2 + 4 + 6);
}

/// HAProxy 2.6 (the release the Compose image pins) accepts every proxy
/// and edge config, Compose's and the local target's: `haproxy -c`.
/// Compose's name their backends by service name, which only Docker's DNS
/// resolves: those start disabled (init-addr none) and are not errors.
#[test]
fn haproxy_accepts_every_proxy_and_edge_config() {
    let mut checked = 0;
    for file in testkit::files_under(&repo().join("out")) {
        if file.extension().is_none_or(|e| e != "cfg") {
            continue;
        }
        let out = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .expect("haproxy is installed (Debian package haproxy)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("Configuration file is valid"),
            "{}: {text}",
            file.display()
        );
        checked += 1;
    }
    // Per phase: the local proxy, Compose's proxy and edge.
    assert_eq!(checked, 12, "{checked} configs");
}
