//! End to end: every shipped phase brought up with `scaleplan up --native`
//! from its generated files, with real PostgreSQL, PgBouncer and Redis on
//! 127.0.0.1, checked through their own clients, including losing a node.

mod app;
mod backup;
mod checks;
mod clients;
mod configs;
mod fingerprint;
mod harness;
mod lifecycle;
mod migrate;
mod observe;
mod promote;
mod queues;
mod reseed;

use harness::Phase;

#[test]
fn launch_primary_pgbouncer_and_standalone_redis() {
    let phase = Phase::up("launch");
    phase.assert_runs_from_out();
    checks::postgres_routing(&phase, "sikka", 0);
    checks::pgbouncer_settings(&phase);
    checks::redis_standalone_auth(&phase);
    clients::contract(&phase, "standalone", false);
    let status = phase.status();
    assert_eq!(status.code, 0, "{}", status.stdout);
    for p in &phase.procs {
        assert!(
            status.stdout.contains(&format!("{} ", p.name))
                && status.stdout.contains(&format!("up (pid {})", p.pid)),
            "{}",
            status.stdout
        );
    }
    phase.down();
}

#[test]
fn growth_replicas_and_sentinel_failover() {
    let mut phase = Phase::up_at("growth", 18000);
    phase.assert_runs_from_out();
    checks::postgres_routing(&phase, "sikka", 2);
    checks::pgbouncer_settings(&phase);
    checks::sentinel_failover(&phase, "sikka", 5000);
    // `up` of the running phase brings the killed node back (as a
    // replica: the sentinels turn the old master round).
    phase.bring("growth", &[]);
    clients::contract(&phase, "sentinel", true);
    // The app's own client through a kill -9 of whichever node is master.
    clients::redis_failover(&phase, || {
        let sentinel = phase.port("sentinel-1");
        let addr = harness::redis(
            sentinel,
            Some(harness::secret("SCALEPLAN_REDIS_PASSWORD")),
            &["SENTINEL", "get-master-addr-by-name", "sikka"],
            None,
        );
        let port: u16 = addr.lines().last().unwrap().parse().unwrap();
        let master = phase.procs.iter().find(|p| p.port == port).unwrap();
        phase.kill_hard(&master.name);
    });
    // A replica down: the proxy takes it out of the read rotation. Its
    // checks run every second and two failures mark it down, and PgBouncer
    // retries a server login after a second: reads may fail for that long,
    // plus a connection timeout; 5 s bounds it with room to spare.
    let window = clients::read_probe(&phase, || phase.kill_hard("postgres-replica-1"));
    assert!(
        window <= 5000,
        "reads failed for {window} ms with one replica down"
    );
    phase.down();
}

#[test]
fn scale_cluster_failover() {
    let phase = Phase::up_at("scale", 19000);
    phase.assert_runs_from_out();
    checks::postgres_routing(&phase, "sikka", 4);
    checks::pgbouncer_settings(&phase);
    checks::cluster_failover(&phase, 3, 5000);
    clients::contract(&phase, "cluster", true);
    clients::redis_failover(&phase, || phase.kill_hard("redis-shard2-1"));
    phase.down();
}

#[test]
fn enterprise_primary_region() {
    let phase = Phase::up_at("enterprise", 20000);
    phase.assert_runs_from_out();
    checks::postgres_routing(&phase, "sikka", 6);
    checks::pgbouncer_settings(&phase);
    checks::cluster_failover(&phase, 6, 5000);
    // The notification worker's two queues, each on its own hash tag.
    assert_eq!(
        clients::contract_queues(&phase),
        [
            (
                "push-notifications".to_owned(),
                "{push-notifications}".to_owned()
            ),
            (
                "broadcast-notifications".to_owned(),
                "{broadcast-notifications}".to_owned()
            ),
        ]
    );
    clients::contract(&phase, "cluster", true);
    phase.down();
}

#[test]
fn no_test_secret_is_under_out() {
    harness::assert_no_secret_under(&testkit::repo().join("out"));
}

#[test]
fn up_without_docker_engine_points_to_native() {
    let sandbox = testkit::Sandbox::new("no-docker");
    let bin = sandbox.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("docker");
    std::fs::write(&fake, "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let phases = testkit::repo().join("phases");
    let run = testkit::run_in(
        &sandbox.root,
        &["up", "launch", "--phases", &phases.to_string_lossy()],
        &[("PATH", &path)],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no Docker engine answers"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--native"), "{}", run.stderr);
}

#[test]
fn an_app_not_built_is_named_before_anything_starts() {
    let sandbox = testkit::Sandbox::shipped("app-not-built");
    sandbox.edit(
        "phases/base.yaml",
        &[("workdir: ../examples/backend", "workdir: ../app")],
    );
    std::fs::create_dir_all(sandbox.path("app")).unwrap();
    let run = testkit::run_in(
        &sandbox.root,
        &[
            "up", "launch", "--native", "--state", "st", "--phases", "phases",
        ],
        &testkit::SECRETS,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("names dist/main.js"), "{}", run.stderr);
    assert!(run.stderr.contains("--no-app"), "{}", run.stderr);
    assert!(
        !sandbox.path("st").exists(),
        "nothing may be written or started"
    );
}

#[test]
fn missing_binaries_name_their_package() {
    let sandbox = testkit::Sandbox::new("no-binaries");
    let phases = testkit::repo().join("phases");
    let run = testkit::run_in(
        &sandbox.root,
        &[
            "up",
            "launch",
            "--native",
            "--state",
            "st",
            "--phases",
            &phases.to_string_lossy(),
        ],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    for package in [
        "pgbouncer",
        "redis-server",
        "redis-sentinel",
        "redis-tools",
        "haproxy",
    ] {
        assert!(
            run.stderr.contains(&format!("apt-get install {package}")),
            "{package}: {}",
            run.stderr
        );
    }
    assert!(
        !sandbox.path("st/state.json").exists(),
        "nothing may start without the binaries"
    );
}

#[test]
fn a_port_in_use_fails_fast_with_the_servers_own_reason() {
    // A port inside --base-port's range that nothing else holds, above
    // the other tests' ports (base 17000-23000, cluster bus ports to 33999).
    let (taken, port) = (35_000..40_000)
        .step_by(97)
        .find_map(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p))
                .ok()
                .map(|l| (l, p))
        })
        .expect("a free port to occupy");
    let sandbox = testkit::Sandbox::new("port-in-use");
    let phases = testkit::repo().join("phases");
    let started = std::time::Instant::now();
    let run = testkit::run_in(
        &sandbox.root,
        &[
            "up",
            "launch",
            "--native",
            "--state",
            "st",
            "--base-port",
            &port.to_string(),
            "--phases",
            &phases.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "waited for the timeout"
    );
    assert!(
        run.stderr
            .contains("postgres-primary exited before it was ready"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Address already in use"),
        "the server's own reason: {}",
        run.stderr
    );
    let state = std::fs::read_to_string(sandbox.path("st/state.json")).unwrap();
    assert!(
        state.contains("\"processes\": []"),
        "nothing left running: {state}"
    );
    // Held until here, so the port stays taken for the whole bring-up.
    drop(taken);
}
