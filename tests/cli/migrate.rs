//! `scaleplan migrate` without servers: the route it takes between
//! phases, what it refuses, `--dry-run` (which touches nothing), and the
//! Compose commands of the same steps, as the text they produce. The
//! migrations themselves run on real servers in tests/e2e/migrate.rs.

use testkit::{Sandbox, tree};

/// A state directory that records `phase` as the running deployment,
/// with nothing running (enough for everything short of a real run).
fn recorded(sandbox: &Sandbox, phase: &str, migration: Option<serde_json::Value>) -> String {
    let dir = sandbox.path("state");
    std::fs::create_dir_all(&dir).unwrap();
    let mut state = serde_json::json!({
        "phase": phase,
        "order": 0,
        "base_port": 17000,
        "processes": [],
    });
    if let Some(m) = migration {
        state["migration"] = m;
    }
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    dir.to_string_lossy().into_owned()
}

#[test]
fn dry_run_walks_every_phase_in_between_and_touches_nothing() {
    let s = Sandbox::shipped("migrate-dry-run");
    let state = recorded(&s, "launch", None);
    let before = tree(&s.root);
    let run = s.run(&["migrate", "enterprise", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(tree(&s.root), before, "a dry run changed files");
    let out = &run.stdout;
    let hops: Vec<&str> = out.lines().filter(|l| l.starts_with("migrate ")).collect();
    assert_eq!(hops.len(), 3, "{out}");
    assert!(
        hops[0].starts_with("migrate launch -> growth (12 steps"),
        "{out}"
    );
    assert!(hops[1].starts_with("migrate growth -> scale"), "{out}");
    assert!(hops[2].starts_with("migrate scale -> enterprise"), "{out}");
    // Steps that cannot run here say so; the others say they run and check.
    assert!(
        out.contains("not run here: AWS only: ElastiCache's own conversion"),
        "{out}"
    );
    assert!(out.contains("runs here, then checks its outcome"), "{out}");
    assert!(out.ends_with("dry run: nothing was changed\n"), "{out}");
}

#[test]
fn the_dry_run_lists_the_steps_diff_prints() {
    let s = Sandbox::shipped("migrate-same-steps");
    let state = recorded(&s, "growth", None);
    let dry = s.run(&[
        "migrate",
        "scale",
        "--state",
        &state,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let dry: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    let diff = s.run(&["diff", "growth", "scale", "--format", "json"]);
    let diff: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    assert_eq!(
        dry["hops"][0]["steps"],
        diff["comparisons"][0]["plan"]["steps"]
    );
    let steps = dry["hops"][0]["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| s["action"]["kind"].as_str().unwrap())
        .collect();
    // The cluster is built and filled before the cut-over, and the old
    // Redis retired only after it.
    let at = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(at("build_cluster") < at("copy_into_cluster"), "{kinds:?}");
    assert!(
        at("copy_into_cluster") < at("cut_over_to_cluster"),
        "{kinds:?}"
    );
    assert!(at("cut_over_to_cluster") < at("retire_redis"), "{kinds:?}");
}

#[test]
fn compose_commands_name_the_services_of_each_step() {
    let s = Sandbox::shipped("migrate-compose");
    let state = recorded(&s, "launch", None);
    let run = s.run(&["migrate", "scale", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let commands: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("compose: "))
        .collect();
    for expected in [
        "docker compose up -d --wait --no-deps postgres-replica-1 postgres-replica-2",
        "docker compose up -d --wait --no-deps redis-2 redis-3",
        "docker compose exec redis-1 redis-cli -p 6379 CONFIG SET min-replicas-to-write 1 min-replicas-max-lag 10",
        "docker compose up -d --wait --no-deps sentinel-1 sentinel-2 sentinel-3",
        "docker compose up -d --wait --no-deps pgbouncer-2",
        "docker compose kill -s HUP pgbouncer-1",
        "docker compose kill -s USR2 pg-proxy",
        "docker compose up -d --wait --no-deps --force-recreate postgres-primary",
        "docker compose run --rm --no-deps redis-cluster-create",
        // The cut-over: the app stops writing for the last copy.
        "docker compose stop app",
        // The old Redis, which scale's file no longer names.
        "docker stop sikka-sentinel-1-1 sikka-sentinel-2-1 sikka-sentinel-3-1 sikka-redis-1-1 sikka-redis-2-1 sikka-redis-3-1",
    ] {
        assert!(
            commands.contains(&expected),
            "no `{expected}` among:\n{}",
            commands.join("\n")
        );
    }
    // The copy never deletes from the live source.
    let imports: Vec<&&str> = commands
        .iter()
        .filter(|c| c.contains("--cluster import"))
        .collect();
    assert_eq!(imports.len(), 2, "{commands:?}");
    assert!(
        imports.iter().all(|c| c.contains("--cluster-copy")),
        "{imports:?}"
    );
    // From growth, where replicas run: they restart before the primary
    // when max_connections grows.
    let state = recorded(&s, "growth", None);
    let run = s.run(&["migrate", "scale", "--state", &state, "--dry-run"]);
    let restart = |n: &str| {
        run.stdout
            .lines()
            .position(|c| {
                c.trim()
                    == format!(
                        "compose: docker compose up -d --wait --no-deps --force-recreate {n}"
                    )
            })
            .unwrap()
    };
    assert!(restart("postgres-replica-1") < restart("postgres-primary"));
}

#[test]
fn an_earlier_phase_is_refused_unless_it_allows_it() {
    let s = Sandbox::shipped("migrate-back");
    let state = recorded(&s, "scale", None);
    let run = s.run(&["migrate", "launch", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("launch comes before scale in rollout order")
            && run.stderr.contains("allow_downgrade: true"),
        "{}",
        run.stderr
    );
    // A phase that allows it, but whose way back needs a step migrate does
    // not carry out (Redis out of a cluster), is refused before any step.
    s.edit(
        "phases/growth.yaml",
        &[("order: 2", "order: 2\nallow_downgrade: true")],
    );
    let run = s.run(&["migrate", "growth", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("migrate scale -> growth includes steps it does not carry out")
            && run
                .stderr
                .contains("Move Redis back from cluster to sentinel"),
        "{}",
        run.stderr
    );
}

#[test]
fn without_a_deployment_or_a_phase_it_says_what_to_do() {
    let s = Sandbox::shipped("migrate-nothing");
    let run = s.run(&["migrate", "growth", "--state", "nowhere"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("holds no deployment")
            && run.stderr.contains("help: bring a phase up first"),
        "{}",
        run.stderr
    );
    assert!(
        !s.path("nowhere").exists(),
        "migrate created the state directory"
    );
    let state = recorded(&s, "launch", None);
    let run = s.run(&["migrate", "huge", "--state", &state]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no phase named huge"), "{}", run.stderr);
    // Nothing runs: a real migration needs the deployment up.
    let run = s.run(&["migrate", "growth", "--state", &state]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("help: bring it up first: scaleplan up launch --native"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_migration_under_way_is_finished_before_another_starts() {
    let s = Sandbox::shipped("migrate-underway");
    let migration = serde_json::json!({
        "from": "launch", "to": "growth", "step": 3, "total": 12,
        "title": "Add read replicas postgres-replica-1, postgres-replica-2",
    });
    let state = recorded(&s, "launch", Some(migration.clone()));
    let status = s.run(&["status", "--state", &state]);
    assert!(
        status
            .stdout
            .contains("migrating launch -> growth: step 3 of 12"),
        "{}",
        status.stdout
    );
    // Going further continues it; its own steps are the same.
    let run = s.run(&["migrate", "scale", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Back to where it started is refused while it is under way.
    s.edit(
        "phases/launch.yaml",
        &[("order: 1", "order: 1\nallow_downgrade: true")],
    );
    let run = s.run(&["migrate", "launch", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("finish that first"), "{}", run.stderr);
    // The specs changed under it: the step it stopped at is not there now.
    let mut changed = migration;
    changed["title"] = "Start PgBouncer instances pgbouncer-9".into();
    let state = recorded(&s, "launch", Some(changed));
    let run = s.run(&["migrate", "growth", "--state", &state, "--dry-run"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("its phases changed since it started"),
        "{}",
        run.stderr
    );
}
