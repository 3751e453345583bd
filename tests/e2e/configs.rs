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
                        "include /dev/shm/scaleplan/redis-auth.conf",
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
                    "auth_file = /dev/shm/scaleplan/userlist.txt",
                    &format!("auth_file = {}", sandbox.path("userlist.txt").display()),
                );
            // The images run PgBouncer 1.21 or later, which takes
            // max_prepared_statements; Debian 12's 1.18 here does not. The
            // line is checked here for its form only, and by the image's
            // own PgBouncer in the engine tests.
            let text = without_prepared_statements(&text);
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

/// A PgBouncer configuration as the PgBouncer installed here takes it:
/// without `max_prepared_statements = 200` where that PgBouncer predates
/// 1.21 (the line must be there, in that form).
fn without_prepared_statements(text: &str) -> String {
    if installed_pgbouncer_minor() >= 21 {
        return text.to_owned();
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("max_prepared_statements"))
        .unwrap_or_else(|| panic!("no max_prepared_statements in:\n{text}"));
    assert_eq!(line, "max_prepared_statements = 200");
    text.replace(&format!("{line}\n"), "")
}

/// The minor version of the PgBouncer installed here.
fn installed_pgbouncer_minor() -> u32 {
    let out = Command::new("pgbouncer").arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("1.")?.split('.').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no version in {text:?}"))
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
    // Per phase: the local proxy and edge, Compose's proxy and edge.
    assert_eq!(checked, 16, "{checked} configs");
}

/// A PostgreSQL of its own on a free loopback port, stopped on drop.
struct Server {
    sandbox: Sandbox,
    port: u16,
}

impl Server {
    fn start(label: &str) -> Server {
        Server::start_with(Sandbox::new(label), "")
    }

    /// Starts in `sandbox` (its files already in place), with more
    /// `-c name=value` options.
    fn start_with(sandbox: Sandbox, more: &str) -> Server {
        std::fs::create_dir_all(sandbox.path("data")).unwrap();
        std::fs::write(sandbox.path("pw"), "superuser-password\n").unwrap();
        chown_postgres(&sandbox.root);
        let init = as_postgres(&pg_bin("initdb"))
            .arg("-D")
            .arg(sandbox.path("data"))
            .args(["-U", "postgres", "--auth=scram-sha-256", "--pwfile"])
            .arg(sandbox.path("pw"))
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} {more}",
            sandbox.root.display()
        );
        let start = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(sandbox.path("data"))
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(sandbox.path("log"))
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            start.status.success(),
            "{}",
            std::fs::read_to_string(sandbox.path("log")).unwrap_or_default()
        );
        Server { sandbox, port }
    }

    /// psql over TCP as `user`; Err carries psql's message.
    fn psql(&self, user: &str, password: &str, db: &str, args: &[&str]) -> Result<String, String> {
        crate::harness::psql_args(self.port, user, password, db, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.sandbox.path("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdin(Stdio::null())
            .output();
    }
}

/// The Terraform target's role bootstrap, as RDS runs it: psql as a
/// master user that is no superuser and may not replicate, in a database
/// it owns (RDS creates `db_name` so). The script must leave `app` able to
/// log in with the given password and create a table in schema public,
/// and must stay idempotent; Compose's init-roles.sql, which creates a
/// REPLICATION role, must fail there, which is why the cloud has its own.
#[test]
fn the_rds_bootstrap_creates_a_working_app_role_as_a_non_superuser() {
    let server = Server::start("rds-bootstrap");
    let su = |sql: &str| {
        server
            .psql("postgres", "superuser-password", "postgres", &["-c", sql])
            .unwrap()
    };
    // RDS's master user: CREATEROLE and CREATEDB, no SUPERUSER, no
    // REPLICATION; the phase's database is its own.
    su(
        "CREATE ROLE rds_master LOGIN CREATEROLE CREATEDB NOSUPERUSER NOREPLICATION PASSWORD 'master-password'",
    );
    su("CREATE DATABASE sikka OWNER rds_master");
    assert_eq!(
        su(
            "SELECT rolsuper::text || rolreplication::text FROM pg_roles WHERE rolname = 'rds_master'"
        ),
        "falsefalse"
    );

    let script = repo().join("out/enterprise/terraform/modules/region/bootstrap.sql");
    let script = script.display().to_string();
    let bootstrap = |password: &str| {
        server.psql(
            "rds_master",
            "master-password",
            "postgres",
            &[
                "-v",
                "database=sikka",
                "-v",
                "app_user=app",
                "-v",
                &format!("app_password={password}"),
                "-f",
                &script,
            ],
        )
    };
    bootstrap("first-app-password").unwrap_or_else(|e| panic!("bootstrap: {e}"));
    // Run again (a rotation): idempotent, and the new password holds.
    bootstrap("second-app-password").unwrap_or_else(|e| panic!("second bootstrap: {e}"));
    assert!(
        server
            .psql("app", "first-app-password", "sikka", &["-c", "SELECT 1"])
            .is_err(),
        "the rotated-away password still logs in"
    );
    let app = |sql: &str| server.psql("app", "second-app-password", "sikka", &["-c", sql]);
    app("CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL)")
        .unwrap_or_else(|e| panic!("app cannot create a table: {e}"));
    app("INSERT INTO notes (body) VALUES ('written by app')").unwrap();
    assert_eq!(app("SELECT body FROM notes").unwrap(), "written by app");
    assert_eq!(
        app("SELECT rolsuper::text || rolreplication::text || rolcreaterole::text FROM pg_roles WHERE rolname = current_user").unwrap(),
        "falsefalsefalse",
        "app holds no more than it needs"
    );

    // What the cloud no longer runs: the Compose script stops at its
    // REPLICATION role, before the grant on schema public.
    let compose = repo().join("out/enterprise/compose/postgres/init-roles.sql");
    let failed = server
        .psql(
            "rds_master",
            "master-password",
            "postgres",
            &[
                "-v",
                "database=sikka",
                "-v",
                "app_user=app2",
                "-v",
                "app_password=x",
                "-v",
                "replication_user=replicator",
                "-v",
                "replication_password=y",
                "-f",
                &compose.display().to_string(),
            ],
        )
        .unwrap_err();
    assert!(
        failed.contains("must be superuser to create replication users")
            || failed.contains("REPLICATION"),
        "{failed}"
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HCL string literal's text (between its quotes), unescaped.
fn hcl_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The one-line HCL string `NAME = "..."` (or `NAME = ["..."]`) of a file.
fn hcl_line(text: &str, name: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{name} = ")) && l.contains('"'))
        .unwrap_or_else(|| panic!("no {name}"));
    let start = line.find('"').unwrap() + 1;
    let end = line.rfind('"').unwrap();
    hcl_unescape(&line[start..end])
}

/// PgBouncer of the cloud target, started by the ECS task's own command
/// (services.tf) from its pgbouncer.ini.tftpl, in front of a PostgreSQL
/// that serves TLS with a certificate for `localhost` from a CA of its
/// own, as RDS does. The task fetches the CA bundle (a stand-in `wget`
/// copies the test CA) and writes the auth file; PgBouncer then reaches
/// both databases over TLS with the name verified. Dialling a name the
/// certificate does not carry fails (`verify-full` checks the name, not
/// only the chain), and so does a host list on this PgBouncer (before
/// 1.25, pgbouncer/pgbouncer#1300): why PGB006 asks for 1.25 where a
/// region reads from several replicas (the engine test runs the host list
/// itself).
#[test]
fn the_cloud_pgbouncer_verifies_the_database_certificate() {
    let sandbox = Sandbox::new("pgbouncer-verify-full");
    let dir = sandbox.root.clone();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test RDS CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    std::fs::set_permissions(
        dir.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // The task's wget, here: copies the "URL" (the test CA's path).
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(
        dir.join("bin/wget"),
        "#!/bin/sh\n# wget -q -O FILE URL\ncp \"$4\" \"$3\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("bin/wget"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("task")).unwrap();
    let server = Server::start_with(
        sandbox,
        &format!(
            "-c ssl=on -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key",
            dir.display()
        ),
    );
    let su = |sql: &str| {
        server
            .psql("postgres", "superuser-password", "postgres", &["-c", sql])
            .unwrap()
    };
    su("CREATE ROLE app LOGIN PASSWORD 'app-password'");
    su("CREATE DATABASE sikka OWNER app");

    let module = repo().join("out/growth/terraform/modules/region");
    let template = std::fs::read_to_string(module.join("pgbouncer.ini.tftpl")).unwrap();
    assert!(template.contains("server_tls_sslmode = verify-full"));
    // The task's image runs PgBouncer 1.21 or later; Debian 12's 1.18 here
    // does not know max_prepared_statements (the engine tests run it on a
    // PgBouncer that does).
    let template = without_prepared_statements(&template);
    // load_balance_hosts is PgBouncer 1.24's; round-robin is what older
    // ones do anyway.
    let template = if installed_pgbouncer_minor() < 24 {
        template.replace(" load_balance_hosts=round-robin", "")
    } else {
        template
    };
    let services = std::fs::read_to_string(module.join("services.tf")).unwrap();
    let task_dir = dir.join("task").display().to_string();
    // The task's command with the module's printf format put in, and its
    // /tmp in the sandbox.
    let command = hcl_line(&services, "command")
        .replace(
            "${local.userlist_format}",
            &hcl_line(&services, "userlist_format"),
        )
        .replace("/tmp/", &format!("{task_dir}/"));
    assert!(command.contains("exec pgbouncer"), "{command}");

    // Starts the task with the writer at `writer` and the replicas
    // `readers`; reads and writes through it, then stops it.
    let task = |writer: &str, readers: &str, ini: &str| -> (Result<String, String>, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // templatefile() as the module calls it, then what only the test
        // changes: ports, addresses and the task's /tmp.
        let rendered = ini
            .replace("${writer_address}", writer)
            .replace("${reader_hosts}", readers)
            .replace("port=5432", &format!("port={}", server.port))
            .replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1")
            .replace(
                "listen_port = 6432",
                &format!("listen_port = {port}\nunix_socket_dir = {task_dir}"),
            )
            .replace("/tmp/", &format!("{task_dir}/"));
        chown_postgres(&dir);
        let mut bouncer = as_postgres(Path::new("/bin/sh"))
            .args(["-c", &command])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.join("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("RDS_CA_BUNDLE_URL", dir.join("ca.pem"))
            .env("PGBOUNCER_INI", rendered)
            .env("APP_USER", "app")
            .env("APP_DB_PASSWORD", "app-password")
            .env("ADMIN_USER", "pgbouncer_admin")
            .env("ADMIN_PASSWORD", "admin-password")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut answer = Err("PgBouncer never listened".to_owned());
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let mut seen = Vec::new();
                let mut failed = false;
                for db in ["sikka", "sikka_ro"] {
                    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
                    match crate::harness::psql_args(port, "app", "app-password", db, &["-c", sql]) {
                        Ok(ssl) => seen.push(format!("{db}: {ssl}")),
                        Err(e) => {
                            seen.push(format!("{db}: {}", e.trim()));
                            failed = true;
                            break;
                        }
                    }
                }
                let text = seen.join(", ");
                answer = if failed { Err(text) } else { Ok(text) };
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = bouncer.kill();
        let log = bouncer.wait_with_output().unwrap();
        (answer, String::from_utf8_lossy(&log.stderr).into_owned())
    };
    // One replica, named as its certificate names it.
    let (answer, log) = task("localhost", "localhost", &template);
    assert_eq!(
        answer.unwrap_or_else(|e| panic!("through the task's PgBouncer: {e}\n{log}")),
        "sikka: t, sikka_ro: t",
        "both server connections are TLS"
    );
    let written = std::fs::read_to_string(dir.join("task/pgbouncer.ini")).unwrap();
    assert!(written.contains("sikka_ro = host=localhost "), "{written}");
    assert!(
        std::fs::read_to_string(dir.join("task/userlist.txt"))
            .unwrap()
            .contains("\"app\" \"app-password\"")
    );

    let (answer, log) = task("127.0.0.1", "localhost", &template);
    assert!(
        answer.is_err(),
        "a writer the certificate does not name: {answer:?}"
    );
    assert!(
        log.contains("certificate") || log.contains("hostname") || log.contains("not present"),
        "PgBouncer's log names the failed check:\n{log}"
    );
    // Two replicas: on this PgBouncer the host list fails verification
    // (PGB006 refuses it before 1.25).
    let (answer, log) = task("localhost", "localhost,localhost", &template);
    assert!(
        answer.as_ref().is_err_and(|e| e.contains("sikka_ro")),
        "a multi-host entry under verify-full: {answer:?}\n{log}"
    );
}
