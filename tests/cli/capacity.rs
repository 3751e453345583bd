//! `scaleplan capacity`, CAP001 and the generated summaries and load tests.

use testkit::{Sandbox, repo, run_in};

#[test]
fn shipped_phases_carry_their_claims() {
    let run = run_in(&repo(), &["--format", "json", "capacity"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let carried: Vec<(String, u64, String)> = doc["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_owned(),
                p["capacity"].as_u64().unwrap(),
                p["bottleneck"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let get = |name: &str| carried.iter().find(|(n, _, _)| n == name).unwrap();
    // Each carries its users.max; with the app's pools as PgBouncer's
    // clients, the app's WebSocket connections run out first everywhere.
    for (phase, max) in [
        ("launch", 2000),
        ("growth", 5000),
        ("scale", 15_000),
        ("enterprise", 50_000),
    ] {
        let (_, users, bottleneck) = get(phase);
        assert!(*users >= max, "{phase} carries {users}, below {max}");
        assert_eq!(bottleneck, "websocket", "{phase}");
    }
    insta::assert_snapshot!("capacity_json", run.stdout);
}

#[test]
fn text_table_marks_the_bottleneck() {
    let run = run_in(&repo(), &["capacity", "growth"], &[]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!("capacity_text_growth", run.stdout);
}

#[test]
fn users_picks_the_smallest_phase_with_headroom() {
    let pick = |users: &str, headroom: &str| {
        run_in(
            &repo(),
            &["capacity", "--users", users, "--headroom", headroom],
            &[],
        )
    };
    let run = pick("1500", "1.2");
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("launch carries 1,500 users"),
        "{}",
        run.stdout
    );
    // 4,000 x 1.2 = 4,800 is past launch's 4,000.
    assert!(pick("4000", "1.2").stdout.starts_with("growth carries"));
    assert!(pick("4000", "1.0").stdout.starts_with("launch carries"));
    // 12,000 x 1.2 = 14,400: scale carries 16,000.
    assert!(pick("12000", "1.2").stdout.starts_with("scale carries"));
    let none = pick("60000", "1.2");
    assert_eq!(none.code, 1);
    assert!(
        none.stdout.contains("no phase carries 60,000 users"),
        "{}",
        none.stdout
    );
    assert!(
        none.stdout.contains("raise app.replicas"),
        "names what to raise: {}",
        none.stdout
    );
    let json = run_in(
        &repo(),
        &["--format", "json", "capacity", "--users", "4000"],
        &[],
    );
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["phase"], "growth");
    assert_eq!(doc["needed"], 4800);
}

#[test]
fn allow_below_target_lowers_cap001_to_a_warning() {
    let sandbox = Sandbox::shipped("cap-allow");
    let growth = sandbox.path("phases/growth.yaml");
    let text = sandbox.edit(
        "phases/growth.yaml",
        &[("app: { replicas: 4 }", "app: { replicas: 2 }")],
    );
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[CAP001]: phases/growth.yaml:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("WebSocket is the bottleneck"),
        "{}",
        run.stderr
    );
    std::fs::write(&growth, text + "capacity: { allow_below_target: true }\n").unwrap();
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("warning[CAP001]"), "{}", run.stderr);
    // The waiver is the phase's own: scale, extending growth, does not inherit it.
    let inspect = sandbox.run(&["inspect", "scale"]);
    assert!(
        !inspect.stdout.contains("allow_below_target"),
        "{}",
        inspect.stdout
    );
}

/// Every load test type-checks against k6's published API (@types/k6,
/// with TypeScript's checkJs: tests/k6), and the checker catches what it
/// should (its self-test).
#[test]
fn every_load_test_type_checks_against_the_k6_api() {
    let checker = repo().join("tests/k6/check.mjs");
    let run = |args: &[String]| {
        let out = std::process::Command::new("node")
            .arg(&checker)
            .args(args)
            .output()
            .expect("node runs: scripts/test installs it");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = run(&["--self-test".to_owned()]);
    assert!(ok, "the k6 type-check setup is broken:\n{text}");
    let scripts: Vec<String> = ["launch", "growth", "scale", "enterprise"]
        .iter()
        .map(|p| {
            repo()
                .join(format!("out/{p}/loadtest/k6.js"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let (ok, text) = run(&scripts);
    assert!(
        ok && text.trim().is_empty(),
        "tsc on the load tests:\n{text}"
    );
}

#[test]
fn load_tests_load_the_named_bottleneck() {
    for phase in ["launch", "growth", "scale", "enterprise"] {
        let text =
            std::fs::read_to_string(repo().join(format!("out/{phase}/loadtest/k6.js"))).unwrap();
        for scenario in [
            "smoke:",
            "steady:",
            "ramp:",
            "spike:",
            "websocket:",
            "websocket_spike:",
        ] {
            assert!(text.contains(scenario), "{phase} lacks {scenario}");
        }
        assert!(text.contains("import ws from 'k6/ws'"), "{phase}");
        assert!(text.contains("'ramping-arrival-rate'"), "{phase}");
        assert!(text.contains("__ENV.TARGET_URL"));
        assert!(text.contains("p(95)<"));
    }
    let growth = std::fs::read_to_string(repo().join("out/growth/loadtest/k6.js")).unwrap();
    assert!(
        growth.contains("const USERS_MIN = 3000;") && growth.contains("const USERS_MAX = 5000;")
    );
    assert!(
        growth.contains("const CAPACITY = 8000;") && growth.contains("const SPIKE_PEAK = 12000;")
    );
    // WebSocket-bound: one held connection per modelled connection.
    assert!(growth.contains("const WS_CONNECTIONS = 8000;"), "{growth}");
    // 52,000 connections (78,000 in the spike) are more than one k6
    // process reaches: it asks for its processes instead of silently
    // running a share.
    let enterprise = std::fs::read_to_string(repo().join("out/enterprise/loadtest/k6.js")).unwrap();
    assert!(
        enterprise.contains("const NEEDED_SHARDS = 5;")
            && enterprise.contains("const SHARDS = Number(__ENV.SHARDS || 0);"),
        "{enterprise}"
    );
    assert!(growth.contains("const SHARDS = Number(__ENV.SHARDS || 1);"));
}

#[test]
fn summaries_and_transition_plans_show_capacity() {
    let readme = std::fs::read_to_string(repo().join("out/scale/README.md")).unwrap();
    assert!(
        readme.contains("carries about **16,000** concurrent users"),
        "{readme}"
    );
    assert!(
        readme.contains("The bottleneck is **WebSocket**"),
        "{readme}"
    );
    let plan = std::fs::read_to_string(repo().join("out/transitions/launch-to-growth.md")).unwrap();
    assert!(
        plan.contains("4,000 (WebSocket) -> 8,000 (WebSocket) concurrent users"),
        "{plan}"
    );
}
