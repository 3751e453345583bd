//! Health checks against the real servers, through their own clients.

use super::tools::Tools;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` until it returns Some or `timeout` passes. Every wait in
/// `up` goes through here, so none can hang.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The longest a probe may take: a port that accepts connections and
/// never answers (a stranger's listener, a server stuck in start-up) must
/// fail the probe, not hang the bring-up that polls it.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Runs `cmd` (stdin closed, stdout and stderr piped) and waits at most
/// `limit` for it; a command still running then is killed. None when it
/// could not start or was killed.
pub fn run_within(mut cmd: Command, limit: Duration) -> Option<std::process::Output> {
    // Both streams captured, as Command::output does: a probe prints
    // nothing of its own.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().ok()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.ok(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            None
        }
    }
}

fn output(cmd: Command) -> Option<String> {
    let out = run_within(cmd, PROBE_LIMIT)?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn postgres_ready(tools: &Tools, port: u16) -> bool {
    let mut cmd = Command::new(&tools.pg_isready);
    cmd.args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"]);
    output(cmd).is_some()
}

/// psql for one statement over TCP, unaligned and without headers; the
/// password goes in PGPASSWORD, never on the command line.
fn psql_command(
    tools: &Tools,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sql: &str,
) -> Command {
    let mut cmd = Command::new(&tools.psql);
    cmd.args([
        "-X",
        "-A",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-P",
        "footer=off",
    ])
    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user])
    .args(["-d", database, "-c", sql])
    .env("PGPASSWORD", password)
    .env("PGCONNECT_TIMEOUT", "3")
    .stdin(Stdio::null());
    cmd
}

/// The rows of a query (PgBouncer's SHOW commands too), each by column
/// name: a column an older or newer server adds or moves does not shift
/// the others.
pub fn psql_rows(
    tools: &Tools,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sql: &str,
) -> Option<Vec<std::collections::BTreeMap<String, String>>> {
    let mut cmd = psql_command(tools, port, user, password, database, sql);
    cmd.stderr(Stdio::null());
    let text = output(cmd)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split('|').collect();
    Some(
        lines
            .map(|l| {
                header
                    .iter()
                    .zip(l.split('|'))
                    .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                    .collect()
            })
            .collect(),
    )
}

/// Runs one query with psql over TCP.
pub fn psql(
    tools: &Tools,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sql: &str,
) -> Option<String> {
    let mut cmd = psql_command(tools, port, user, password, database, sql);
    cmd.arg("-t").stderr(Stdio::null());
    output(cmd).map(|s| s.trim().to_owned())
}

/// One Redis command through redis-cli; the password in REDISCLI_AUTH.
pub fn redis(tools: &Tools, port: u16, password: &str, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new(&tools.redis_cli);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .env("TERM", "dumb")
        .stderr(Stdio::null());
    output(cmd).map(|s| s.trim().to_owned())
}

pub fn redis_ping(tools: &Tools, port: u16, password: &str) -> bool {
    redis(tools, port, password, &["PING"]).as_deref() == Some("PONG")
}

/// A field of a `SENTINEL MASTER` reply (alternating name/value lines).
pub fn sentinel_field(
    tools: &Tools,
    port: u16,
    password: &str,
    master: &str,
    field: &str,
) -> Option<String> {
    let reply = redis(tools, port, password, &["SENTINEL", "MASTER", master])?;
    let lines: Vec<&str> = reply.lines().collect();
    lines
        .chunks(2)
        .find(|pair| pair[0] == field)
        .and_then(|pair| pair.get(1).map(|v| (*v).to_owned()))
}

pub fn cluster_ok(tools: &Tools, port: u16, password: &str) -> bool {
    let mut cmd = Command::new(&tools.redis_cli);
    cmd.args(["--cluster", "check", &format!("127.0.0.1:{port}")])
        .env("REDISCLI_AUTH", password)
        .env("TERM", "dumb")
        .stderr(Stdio::null());
    output(cmd).is_some_and(|s| s.contains("[OK] All 16384 slots covered"))
}

/// True when every node reports cluster_state:ok.
pub fn cluster_serving(tools: &Tools, ports: &[u16], password: &str) -> bool {
    ports.iter().all(|&port| {
        redis(tools, port, password, &["CLUSTER", "INFO"])
            .is_some_and(|info| info.lines().any(|l| l.trim() == "cluster_state:ok"))
    })
}

/// True when every node sees `replicas` replicas in the cluster and every
/// replica's link to its master is up: gossip spreads the roles
/// `--cluster create` assigns, so slot coverage alone comes first.
pub fn cluster_converged(tools: &Tools, ports: &[u16], password: &str, replicas: usize) -> bool {
    ports.iter().all(|&port| {
        let Some(nodes) = redis(tools, port, password, &["CLUSTER", "NODES"]) else {
            return false;
        };
        let seen = nodes
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(2)
                    .is_some_and(|f| f.contains("slave"))
            })
            .count();
        if seen != replicas {
            return false;
        }
        let Some(info) = redis(tools, port, password, &["INFO", "replication"]) else {
            return false;
        };
        !info.contains("role:slave") || info.contains("master_link_status:up")
    })
}

/// An HTTP GET to 127.0.0.1:`port`: the status and the body (de-chunked).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, mut rest) = raw.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    // HAProxy answers in chunks, even to HTTP/1.0.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break out;
            }
            out.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
    } else {
        rest.to_owned()
    };
    Some((status, body))
}

/// Servers up and servers in all of HAProxy's backends, from its stats
/// page (`GET /;csv` on the stats listener).
pub fn proxy_backends(port: u16) -> Option<(usize, usize)> {
    let (_, csv) = http_get(port, "/;csv")?;
    let header: Vec<&str> = csv
        .lines()
        .next()?
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (sv, status) = (column("svname")?, column("status")?);
    let servers: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > status && !matches!(f[sv], "FRONTEND" | "BACKEND"))
        .collect();
    // UP and checked: a server is UP before its first check has run.
    let check = column("check_status");
    let up = servers
        .iter()
        .filter(|f| f[status].starts_with("UP"))
        .filter(|f| check.is_none_or(|c| f.get(c).is_some_and(|s| s.ends_with("OK"))))
        .count();
    Some((up, servers.len()))
}

/// True when HAProxy's stats (on `port`) show server `name` UP with its
/// last check passed.
pub fn proxy_server_up(port: u16, name: &str) -> bool {
    stats_rows(port).is_some_and(|rows| {
        rows.iter().any(|r| {
            r.get("svname").is_some_and(|s| s == name)
                && r.get("status").is_some_and(|s| s.starts_with("UP"))
                && r.get("check_status").is_some_and(|s| s.ends_with("OK"))
        })
    })
}

/// Requests HAProxy's frontend `frontend` has taken so far.
pub fn proxy_requests(port: u16, frontend: &str) -> Option<f64> {
    stats_rows(port)?
        .iter()
        .find(|r| {
            r.get("pxname").is_some_and(|p| p == frontend)
                && r.get("svname").is_some_and(|s| s == "FRONTEND")
        })
        .and_then(|r| r.get("req_tot")?.parse().ok())
}

/// HAProxy's stats page as rows of named columns.
fn stats_rows(port: u16) -> Option<Vec<std::collections::BTreeMap<String, String>>> {
    let (_, csv) = http_get(port, "/;csv")?;
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()?
        .trim_start_matches("# ")
        .split(',')
        .map(str::to_owned)
        .collect();
    Some(
        lines
            .map(|l| {
                header
                    .iter()
                    .cloned()
                    .zip(l.split(',').map(str::to_owned))
                    .collect()
            })
            .collect(),
    )
}

/// One statement through psql that must succeed within `limit`: the
/// error carries what psql said. For the steps of a migration, where a
/// failure is reported rather than retried.
pub fn psql_within(
    tools: &Tools,
    port: u16,
    (user, password): (&str, &str),
    database: &str,
    sql: &str,
    limit: Duration,
) -> anyhow::Result<String> {
    let mut cmd = psql_command(tools, port, user, password, database, sql);
    cmd.arg("-t");
    // PgBouncer's PAUSE answers only once every server connection is
    // released: the wait is bounded, so it can be cut short.
    match run_within(cmd, limit) {
        Some(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Some(out) => anyhow::bail!(
            "`{sql}` on 127.0.0.1:{port}/{database}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        None => anyhow::bail!(
            "`{sql}` on 127.0.0.1:{port}/{database} did not answer within {} s",
            limit.as_secs()
        ),
    }
}
