//! `backup`, `restore` and `promote` refuse what they cannot do, before
//! touching anything, and say what to do instead. (Their real runs are in
//! the end-to-end tests.)

use testkit::Sandbox;

/// A state directory recording `phase` with nothing running.
fn recorded(sandbox: &Sandbox, phase: &str) -> String {
    let dir = sandbox.path("state");
    std::fs::create_dir_all(&dir).unwrap();
    let state = serde_json::json!({
        "phase": phase,
        "order": 0,
        "base_port": 17000,
        "processes": [],
    });
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    dir.to_string_lossy().into_owned()
}

#[test]
fn without_a_deployment_each_says_how_to_start_one() {
    let s = Sandbox::shipped("recovery-nothing");
    for args in [
        vec!["backup", "growth"],
        vec!["restore", "growth", "--to", "latest"],
        vec!["promote", "growth"],
    ] {
        let mut all = args.clone();
        all.extend(["--state", "nowhere"]);
        let run = s.run(&all);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("holds no deployment")
                && run.stderr.contains("help: bring a phase up first"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !s.path("nowhere").exists(),
            "{args:?} created the state directory"
        );
    }
}

#[test]
fn a_restore_time_needs_its_offset() {
    let s = Sandbox::shipped("recovery-time");
    let state = recorded(&s, "growth");
    for bad in ["yesterday", "2026-12-07 06:30:00", "2026-13-01T00:00:00Z"] {
        let run = s.run(&["restore", "growth", "--to", bad, "--state", &state]);
        assert_eq!(run.code, 1, "{bad}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("is neither `latest` nor a time with its offset"),
            "{bad}: {}",
            run.stderr
        );
    }
}

#[test]
fn each_works_on_the_phase_that_runs_and_only_while_it_runs() {
    let s = Sandbox::shipped("recovery-stopped");
    let state = recorded(&s, "launch");
    let other = s.run(&["backup", "growth", "--state", &state]);
    assert_eq!(other.code, 1);
    assert!(
        other.stderr.contains("runs phase launch, not growth"),
        "{}",
        other.stderr
    );
    let stopped = s.run(&["backup", "launch", "--state", &state]);
    assert_eq!(stopped.code, 1);
    assert!(
        stopped.stderr.contains("postgres-primary is not running")
            && stopped.stderr.contains("scaleplan up launch --native"),
        "{}",
        stopped.stderr
    );
    let nothing = s.run(&["promote", "launch", "--state", &state]);
    assert_eq!(nothing.code, 1);
    assert!(
        nothing.stderr.contains("no standby runs") && nothing.stderr.contains("scaleplan restore"),
        "{}",
        nothing.stderr
    );
    let unknown = s.run(&["promote", "launch", "postgres-replica-9", "--state", &state]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains("postgres-replica-9 is not a running standby of phase launch"),
        "{}",
        unknown.stderr
    );
}

/// A deployment whose primary is a promoted standby never runs a phase
/// without that node: planned without it, the lost primary would be the
/// writer again. The same for a Compose deployment's record.
#[test]
fn a_phase_without_the_promoted_primary_is_refused() {
    let s = Sandbox::shipped("recovery-writer");
    let dir = s.path("state");
    std::fs::create_dir_all(&dir).unwrap();
    let state = serde_json::json!({
        "phase": "scale",
        "order": 3,
        "base_port": 17000,
        "processes": [],
        "postgres_writer": "postgres-replica-3",
    });
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    let run = s.run(&["up", "growth", "--native", "--state", "state"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("this deployment's primary is postgres-replica-3 (promoted)")
            && run.stderr.contains("help: "),
        "{}",
        run.stderr
    );
    let compose = s.path("compose-state/compose-target");
    std::fs::create_dir_all(&compose).unwrap();
    std::fs::write(
        compose.join("deployment.json"),
        r#"{"postgres_writer": "postgres-replica-3"}"#,
    )
    .unwrap();
    let run = s.run(&["up", "launch", "--state", "compose-state"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("phase launch has 0 read replica(s)"),
        "{}",
        run.stderr
    );
}
