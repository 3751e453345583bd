//! What a running deployment is, as its servers report it: the processes
//! and their roles, every setting PostgreSQL (`pg_settings`), PgBouncer
//! (`SHOW CONFIG`, `SHOW DATABASES`), Redis (`CONFIG GET *`) and Sentinel
//! (`SENTINEL MASTER`) run with, the proxy's backends, and the files it
//! runs from. Two deployments on different base ports and in different
//! state directories compare equal when they are the same topology: ports
//! are moved to one base and the state directory named $STATE.

use crate::harness::{Phase, psql, redis, secret, shift_ports};
use std::collections::BTreeMap;

pub type Fingerprint = BTreeMap<String, String>;

/// Redis settings that carry a secret.
const SECRET_SETTINGS: [&str; 3] = ["requirepass", "masterauth", "masteruser"];

pub fn of(phase: &Phase, base: u16) -> Fingerprint {
    let state = phase.state.to_string_lossy().into_owned();
    let norm = |v: &str| shift_ports(&v.replace(&state, "$STATE"), phase.base_port, base);
    let mut f = Fingerprint::new();
    let pg_pw = secret("SCALEPLAN_POSTGRES_PASSWORD");
    let admin_pw = secret("SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD");
    let redis_pw = secret("SCALEPLAN_REDIS_PASSWORD");
    // The master of each Redis node, by name.
    let by_port: BTreeMap<u16, String> = phase
        .procs
        .iter()
        .map(|p| (p.port, p.name.clone()))
        .collect();
    for p in &phase.procs {
        f.insert(format!("process {}", p.name), p.kind.clone());
        let key = |what: &str| format!("{} {} {what}", p.kind, p.name);
        match p.kind.as_str() {
            "postgres" => {
                let role = psql(
                    p.port,
                    "postgres",
                    pg_pw,
                    "postgres",
                    "SELECT pg_is_in_recovery()",
                )
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
                f.insert(key("standby"), role);
                let rows = psql(
                    p.port,
                    "postgres",
                    pg_pw,
                    "postgres",
                    "SELECT name, setting FROM pg_settings ORDER BY name",
                )
                .unwrap();
                for row in rows.lines() {
                    let (name, value) = row.split_once('|').unwrap();
                    f.insert(key(name), norm(value));
                }
                let slots = psql(
                    p.port,
                    "postgres",
                    pg_pw,
                    "postgres",
                    "SELECT coalesce(string_agg(slot_name || ' ' || slot_type || ' ' || active, ', ' ORDER BY slot_name), '') FROM pg_replication_slots",
                )
                .unwrap();
                f.insert(key("replication slots"), slots);
            }
            "pgbouncer" => {
                let config = psql(
                    p.port,
                    "pgbouncer_admin",
                    admin_pw,
                    "pgbouncer",
                    "SHOW CONFIG",
                )
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
                for row in config.lines() {
                    let mut fields = row.split('|');
                    let (name, value) = (fields.next().unwrap(), fields.next().unwrap_or(""));
                    f.insert(key(name), norm(value));
                }
                let dbs = psql(
                    p.port,
                    "pgbouncer_admin",
                    admin_pw,
                    "pgbouncer",
                    "SHOW DATABASES",
                )
                .unwrap();
                for row in dbs.lines() {
                    let fields: Vec<&str> = row.split('|').collect();
                    // name, host, port, database, force_user, pool_size, ...
                    f.insert(
                        key(&format!("database {}", fields[0])),
                        norm(&fields[1..fields.len().min(8)].join("|")),
                    );
                }
            }
            "redis" => {
                let role = redis(p.port, Some(redis_pw), &["ROLE"], None);
                let mut lines = role.lines();
                let role = match lines.next() {
                    Some("slave") => {
                        lines.next();
                        let port: u16 = lines.next().unwrap().parse().unwrap();
                        format!("replica of {}", by_port[&port])
                    }
                    Some(other) => other.to_owned(),
                    None => "silent".to_owned(),
                };
                f.insert(key("role"), role);
                let all = redis(p.port, Some(redis_pw), &["CONFIG", "GET", "*"], None);
                let lines: Vec<&str> = all.lines().collect();
                for pair in lines.chunks(2) {
                    if SECRET_SETTINGS.contains(&pair[0]) {
                        continue;
                    }
                    f.insert(key(pair[0]), norm(pair.get(1).copied().unwrap_or("")));
                }
            }
            "sentinel" => {
                let master = redis(p.port, Some(redis_pw), &["SENTINEL", "MASTERS"], None);
                let fields: Vec<&str> = master.lines().collect();
                for pair in fields.chunks(2) {
                    if matches!(
                        pair[0],
                        "name"
                            | "port"
                            | "quorum"
                            | "num-slaves"
                            | "num-other-sentinels"
                            | "down-after-milliseconds"
                            | "failover-timeout"
                            | "parallel-syncs"
                    ) {
                        f.insert(key(pair[0]), norm(pair.get(1).copied().unwrap_or("")));
                    }
                }
            }
            "haproxy" => {
                for (server, status) in proxy_servers(p.port) {
                    f.insert(key(&server), status);
                }
            }
            _ => {}
        }
    }
    for (path, bytes) in testkit::tree(&phase.state.join("config")) {
        f.insert(
            format!("file {path}"),
            norm(&String::from_utf8_lossy(&bytes)),
        );
    }
    let env = std::fs::read_to_string(phase.state.join("app.env")).unwrap();
    f.insert("file app.env".to_owned(), norm(&env));
    f
}

/// Each backend server of the proxy and its status, from its stats page
/// (the port three above its write port).
fn proxy_servers(write_port: u16) -> Vec<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", write_port + 3)).unwrap();
    stream
        .write_all(b"GET /;csv;norefresh HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, mut rest) = raw.split_once("\r\n\r\n").unwrap();
    // HAProxy answers in chunks, even to HTTP/1.0.
    let body = if head.to_ascii_lowercase().contains("chunked") {
        let mut body = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break body;
            }
            body.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
    } else {
        rest.to_owned()
    };
    let mut out = Vec::new();
    for line in body.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() > 17 && !matches!(fields[1], "FRONTEND" | "BACKEND" | "svname") {
            out.push((
                format!("{} {}", fields[0], fields[1]),
                fields[17].to_owned(),
            ));
        }
    }
    assert!(!out.is_empty(), "no servers on the stats page:\n{body}");
    out
}

/// The keys on which two fingerprints differ, with both values.
pub fn differences(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| {
                v.map_or("(none)".to_owned(), |v| {
                    if v.len() > 200 {
                        format!("{}...", &v[..200])
                    } else {
                        v.clone()
                    }
                })
            };
            format!("{k}: {} | {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}
