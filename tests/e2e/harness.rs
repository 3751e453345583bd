//! Brings a shipped phase up with `scaleplan up --native` and talks to the
//! real servers through their own clients (psql, redis-cli).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
pub use testkit::{SECRETS, secret};
use testkit::{repo, run_in, tree};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub name: String,
    pub kind: String,
    pub pid: u32,
    pub port: u16,
}

/// A deployment in its own state directory, brought up with `scaleplan up
/// --native` on its own base port (tests run side by side). Dropping it
/// runs `scaleplan down` and then kills any recorded process still alive,
/// so a failing assertion never leaves a server behind.
pub struct Phase {
    /// The phase that runs.
    pub name: String,
    pub state: PathBuf,
    pub base_port: u16,
    pub procs: Vec<Recorded>,
    /// A phases directory other than the shipped phases/.
    pub phases: Option<PathBuf>,
    /// More arguments to every `up` (such as --monitoring).
    pub up_args: Vec<String>,
    /// `up` runs the app's replicas and the edge (the shipped phases run
    /// the reference backend); the other tests bring up the data tier
    /// only (`--no-app`).
    pub with_app: bool,
    stopped: bool,
}

pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with(['Z', 'X'])))
        .is_some_and(|zombie| !zombie)
}

/// The shipped phases' base port (phases/base.yaml).
pub const SPEC_BASE_PORT: u16 = 17000;

impl Phase {
    /// Brings a shipped phase up on its spec's base port.
    pub fn up(name: &str) -> Phase {
        Phase::up_at(name, SPEC_BASE_PORT)
    }

    /// Brings a shipped phase up in a fresh state directory on `base_port`.
    pub fn up_at(name: &str, base_port: u16) -> Phase {
        Phase::up_from(None, name, base_port)
    }

    /// Brings a shipped phase up with more arguments to `up`.
    pub fn up_with(name: &str, base_port: u16, args: &[&str]) -> Phase {
        Phase::start(None, name, base_port, args)
    }

    /// Brings a phase of `phases` (or of the shipped phases/) up in a fresh
    /// state directory on `base_port`.
    pub fn up_from(phases: Option<&Path>, name: &str, base_port: u16) -> Phase {
        Phase::start(phases, name, base_port, &[])
    }

    pub fn start(phases: Option<&Path>, name: &str, base_port: u16, args: &[&str]) -> Phase {
        Phase::launch(phases, name, base_port, args, false)
    }

    fn launch(
        phases: Option<&Path>,
        name: &str,
        base_port: u16,
        args: &[&str],
        with_app: bool,
    ) -> Phase {
        let state = std::env::temp_dir().join(format!(
            "scaleplan-e2e-{name}-{base_port}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&state);
        let mut phase = Phase {
            name: name.to_owned(),
            state,
            base_port,
            procs: Vec::new(),
            phases: phases.map(Path::to_path_buf),
            up_args: args.iter().map(|a| (*a).to_owned()).collect(),
            with_app,
            stopped: true,
        };
        phase.bring(name, &[]);
        phase
    }

    /// Brings a shipped phase up with the app's replicas and the edge.
    pub fn up_with_app(name: &str, base_port: u16) -> Phase {
        Phase::launch(None, name, base_port, &[], true)
    }

    /// `scaleplan up PHASE` in this state directory, which fails the test
    /// unless it succeeds; `env` adds to (or replaces) the test secrets.
    pub fn bring(&mut self, name: &str, env: &[(&str, &str)]) -> testkit::Run {
        let started = Instant::now();
        let run = self.try_bring(name, env);
        assert_eq!(
            run.code, 0,
            "up {name} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        self.name = name.to_owned();
        eprintln!(
            "{name}: up in {:.1} s\n{}",
            started.elapsed().as_secs_f64(),
            run.stdout
        );
        run
    }

    /// `scaleplan up PHASE` in this state directory, whatever it answers.
    pub fn try_bring(&mut self, name: &str, env: &[(&str, &str)]) -> testkit::Run {
        let state_arg = self.state.to_string_lossy().into_owned();
        let port = self.base_port.to_string();
        let mut vars: Vec<(&str, &str)> = SECRETS
            .iter()
            .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        vars.extend_from_slice(env);
        self.stopped = false;
        let mut args = vec![
            "up",
            name,
            "--native",
            "--state",
            &state_arg,
            "--base-port",
            &port,
            "--timeout",
            "90",
        ];
        let phases = self.phases_arg();
        if let Some(dir) = &phases {
            args.extend(["--phases", dir]);
        }
        args.extend(self.up_args.iter().map(String::as_str));
        if !self.with_app {
            args.push("--no-app");
        }
        let run = testkit::run_for(&repo(), &args, &vars, Duration::from_secs(300));
        self.procs = self.read_state();
        run
    }

    /// `scaleplan migrate TO` on this deployment, whatever it answers;
    /// the record of processes is read again after it.
    pub fn migrate(&mut self, to: &str, extra: &[&str]) -> testkit::Run {
        let state_arg = self.state.to_string_lossy().into_owned();
        let mut args = vec!["migrate", to, "--state", &state_arg, "--timeout", "90"];
        let phases = self.phases_arg();
        if let Some(dir) = &phases {
            args.extend(["--phases", dir]);
        }
        args.extend_from_slice(extra);
        let run = testkit::run_for(&repo(), &args, &SECRETS, Duration::from_secs(600));
        self.procs = self.read_state();
        if run.code == 0 && !extra.contains(&"--dry-run") {
            self.name = to.to_owned();
        }
        run
    }

    /// `scaleplan COMMAND ARGS --state DIR [--phases DIR]` on this
    /// deployment, whatever it answers; the record of processes is read
    /// again after it.
    pub fn scaleplan(&mut self, args: &[&str]) -> testkit::Run {
        let state_arg = self.state.to_string_lossy().into_owned();
        let mut all = args.to_vec();
        all.extend(["--state", &state_arg]);
        let phases = self.phases_arg();
        if let Some(dir) = &phases {
            all.extend(["--phases", dir]);
        }
        let run = testkit::run_for(&repo(), &all, &SECRETS, Duration::from_secs(600));
        self.procs = self.read_state();
        run
    }

    fn phases_arg(&self) -> Option<String> {
        self.phases
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned())
    }

    fn read_state(&self) -> Vec<Recorded> {
        let Ok(text) = std::fs::read_to_string(self.state.join("state.json")) else {
            return Vec::new();
        };
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Recorded {
                name: p["name"].as_str().unwrap().to_owned(),
                kind: p["kind"].as_str().unwrap().to_owned(),
                pid: p["pid"].as_u64().unwrap() as u32,
                port: p["port"].as_u64().unwrap() as u16,
            })
            .collect()
    }

    pub fn proc(&self, name: &str) -> &Recorded {
        self.procs
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    pub fn port(&self, name: &str) -> u16 {
        self.proc(name).port
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Recorded> {
        self.procs.iter().filter(|p| p.kind == kind).collect()
    }

    /// The servers run from the generated files: what `up` rendered into
    /// the state directory is byte for byte out/<phase>/local, but for the
    /// ports of a test's own base port.
    pub fn assert_runs_from_out(&self) {
        let ran = tree(&self.state.join("config/local"));
        let committed: std::collections::BTreeMap<String, Vec<u8>> =
            tree(&repo().join("out").join(&self.name).join("local"))
                .into_iter()
                .map(|(path, bytes)| {
                    let text = String::from_utf8(bytes).unwrap();
                    (path, moved_ports(&text, self.base_port).into_bytes())
                })
                .collect();
        assert!(!ran.is_empty());
        assert_eq!(
            ran, committed,
            "{}: the bring-up's config differs from out/{}/local",
            self.name, self.name
        );
    }

    /// Kills a recorded process and its process group (a start script
    /// and what it runs).
    pub fn kill_group(&self, name: &str) {
        let pid = self.proc(name).pid;
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{pid}")])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!pid_alive(pid), "{name} survived kill -9");
    }

    pub fn kill_hard(&self, name: &str) {
        let pid = self.proc(name).pid;
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!pid_alive(pid), "{name} survived kill -9");
    }

    pub fn status(&self) -> testkit::Run {
        run_in(
            &repo(),
            &["status", "--state", &self.state.to_string_lossy()],
            &[],
        )
    }

    /// `scaleplan down`, then proof that every recorded process is gone and
    /// that `status` says so.
    pub fn down(mut self) {
        self.stop_checked();
    }

    /// The same, keeping the deployment for another `bring`.
    pub fn stop_checked(&mut self) {
        self.stop();
        let left: Vec<&Recorded> = self.procs.iter().filter(|p| pid_alive(p.pid)).collect();
        assert!(left.is_empty(), "processes left behind: {left:?}");
        let after = self.status();
        assert_eq!(after.code, 1, "status after down: {}", after.stdout);
        assert!(after.stdout.contains("stopped"), "{}", after.stdout);
    }

    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let run = run_in(
            &repo(),
            &["down", "--state", &self.state.to_string_lossy()],
            &[],
        );
        if run.code != 0 {
            eprintln!("down failed: {}{}", run.stdout, run.stderr);
        }
        for p in &self.procs {
            if pid_alive(p.pid) {
                let _ = Command::new("kill")
                    .args(["-9", &p.pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// One SQL statement through psql over TCP. Err carries psql's message.
pub fn psql(port: u16, user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
    psql_args(port, user, password, db, &["-c", sql])
}

/// psql over TCP with `args` (a statement, a script and its variables).
/// Err carries psql's message.
pub fn psql_args(
    port: u16,
    user: &str,
    password: &str,
    db: &str,
    args: &[&str],
) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(["-U", user, "-d", db])
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// redis-cli with the given args, or with commands on stdin (one per line).
pub fn redis(port: u16, password: Option<&str>, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .env("TERM", "dumb");
    cmd.env_remove("REDISCLI_AUTH");
    if let Some(pw) = password {
        cmd.env("REDISCLI_AUTH", pw);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_owned()
}

/// Polls until `check` holds, for at most `limit`; returns the time taken.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// Port numbers of out/ (base port 17000, and cluster bus ports 10000
/// above) moved to another base port.
fn moved_ports(text: &str, base_port: u16) -> String {
    shift_ports(text, SPEC_BASE_PORT, base_port)
}

/// Port numbers of a deployment on base port `from` (its blocks, the app's
/// replicas and the edge included, and the cluster bus ports 10000 above)
/// moved to base `to`.
pub fn shift_ports(text: &str, from: u16, to: u16) -> String {
    // Every block from the base port: the stateful ones (1,000 ports), the
    // app's 1,000 replicas and the edge's two.
    const SPAN: i64 = 1736;
    let delta = i64::from(to) - i64::from(from);
    if delta == 0 {
        return text.to_owned();
    }
    let (low, bus) = (i64::from(from), i64::from(from) + 10000);
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        let moved = match digits.parse::<i64>() {
            Ok(n)
                if digits.len() == 5
                    && ((low..low + SPAN).contains(&n) || (bus..bus + 1000).contains(&n)) =>
            {
                (n + delta).to_string()
            }
            _ => digits.clone(),
        };
        out.push_str(&moved);
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

pub fn assert_no_secret_under(dir: &Path) {
    for (path, bytes) in tree(dir) {
        let text = String::from_utf8_lossy(&bytes);
        for (var, value) in SECRETS {
            assert!(!text.contains(value), "{path} contains the value of {var}");
        }
    }
}

/// An HTTP GET to 127.0.0.1:`port`: the status and the body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
