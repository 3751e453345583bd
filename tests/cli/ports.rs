//! The port allocator, checked on what the programs are given: the largest
//! phases the schema allows are built, and every port a generated file
//! tells a server, proxy or exporter to listen on is read back out of the
//! files. No two may meet; a spec that would make two meet is refused at
//! the field that does it (PORT002).

use std::collections::BTreeMap;
use testkit::{Sandbox, files_under, repo, spec_files};

/// Every local listener a built phase's files name: file -> ports.
fn local_listeners(local: &std::path::Path) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for file in files_under(local) {
        let rel = file.strip_prefix(local).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let number = |s: &str| -> u16 { s.trim().parse().unwrap_or_else(|_| panic!("{rel}: {s}")) };
        match name.as_str() {
            "postgresql.conf" => {
                for l in text.lines().filter_map(|l| l.strip_prefix("port = ")) {
                    out.push((rel.clone(), number(l)));
                }
            }
            "pgbouncer.ini" => {
                for l in text
                    .lines()
                    .filter_map(|l| l.strip_prefix("listen_port = "))
                {
                    out.push((rel.clone(), number(l)));
                }
            }
            "redis.conf" | "sentinel.conf" => {
                let cluster = text.lines().any(|l| l == "cluster-enabled yes");
                for l in text.lines().filter_map(|l| l.strip_prefix("port ")) {
                    let port = number(l);
                    out.push((rel.clone(), port));
                    if cluster {
                        // The bus: the node's port + 10000.
                        out.push((format!("{rel} (bus)"), port + 10000));
                    }
                }
            }
            "haproxy.cfg" => {
                for l in text
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("bind 127.0.0.1:"))
                {
                    out.push((rel.clone(), number(l)));
                }
            }
            // The exporters' addresses, as Prometheus scrapes them (the
            // nodes themselves appear as redis:// targets and are counted
            // from their own files).
            "prometheus.yml" => {
                for part in text.split('"').filter(|p| p.starts_with("127.0.0.1:")) {
                    out.push((
                        format!("{rel} exporter"),
                        number(&part["127.0.0.1:".len()..]),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

fn clashes(listeners: &[(String, u16)]) -> Vec<String> {
    let mut by_port: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (what, port) in listeners {
        by_port.entry(*port).or_default().push(what);
    }
    by_port
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(p, v)| format!("{p}: {v:?}"))
        .collect()
}

#[test]
fn the_largest_phases_give_every_listener_its_own_port() {
    let sandbox = Sandbox::with_phases(
        "largest",
        &spec_files(&repo().join("tests/fixtures/largest")),
    );
    let run = sandbox.run(&["build", "--strict"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (phase, redis) in [("sentinel", 16 + 15), ("cluster", 2 * 600)] {
        let local = local_listeners(&sandbox.path(&format!("out/{phase}/local")));
        // 16 PostgreSQL nodes, 64 PgBouncers, the proxy's 4, the Redis
        // nodes (and sentinels or bus ports), and the exporters: one per
        // PostgreSQL node, PgBouncer's and Redis's.
        assert_eq!(
            local.len(),
            16 + 64 + 4 + redis + 16 + 2,
            "{phase}: {local:?}"
        );
        let clash = clashes(&local);
        assert!(
            clash.is_empty(),
            "{phase}: shared ports:\n{}",
            clash.join("\n")
        );
        // And nothing under 40000, the base port, or past 65535.
        assert!(local.iter().all(|(_, p)| *p >= 40000), "{phase}");

        // Compose: what it publishes on 127.0.0.1.
        let compose = std::fs::read_to_string(
            sandbox.path(&format!("out/{phase}/compose/docker-compose.yml")),
        )
        .unwrap();
        let published: Vec<(String, u16)> = compose
            .split('"')
            .filter_map(|p| p.strip_prefix("127.0.0.1:"))
            .filter_map(|p| p.split(':').next()?.parse().ok())
            .map(|p| ("published".to_owned(), p))
            .collect();
        assert!(published.len() >= 5, "{phase}: {published:?}");
        let clash = clashes(&published);
        assert!(
            clash.is_empty(),
            "{phase}: Compose publishes twice:\n{}",
            clash.join("\n")
        );
    }
}

/// An app port that Compose already publishes for Prometheus: refused at
/// the app's port, with both listeners named.
#[test]
fn an_app_port_that_meets_a_published_port_is_refused_at_the_field() {
    let sandbox = Sandbox::shipped("app-port");
    sandbox.edit(
        "phases/launch.yaml",
        &[("order: 1\n", "order: 1\napp: { port: 9090 }\n")],
    );
    let run = sandbox.run(&["build", "launch"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error[PORT002]: phases/launch.yaml:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Compose's published edge and Compose's published prometheus")
            || run
                .stderr
                .contains("Compose's published prometheus and Compose's published edge"),
        "{}",
        run.stderr
    );
    assert!(!sandbox.path("out").exists(), "nothing may be written");
}
