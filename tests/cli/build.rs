//! build, --check, validate, inspect, list, schema: behaviour and exit codes.

use testkit::{Sandbox, repo, run_in, tree};

#[test]
fn committed_out_is_current() {
    let run = run_in(&repo(), &["build", "--check"], &[]);
    assert_eq!(
        run.code, 0,
        "out/ is stale; run `cargo run --release -- build`\n{}{}",
        run.stdout, run.stderr
    );
}

#[test]
fn committed_schema_is_current() {
    let on_disk = std::fs::read_to_string(repo().join("schemas/phase.schema.json")).unwrap();
    // A boolean, not assert_eq: the schema is too long to print usefully.
    let current = on_disk == scaleplan::validate::schema::schema_text();
    assert!(
        current,
        "schemas/phase.schema.json is stale: run `cargo run -- schema > schemas/phase.schema.json`"
    );
    let run = run_in(&repo(), &["schema", "--check"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn schema_check_reports_a_stale_file_with_exit_2() {
    let sandbox = Sandbox::new("schema-stale");
    std::fs::write(sandbox.path("old.json"), "{}\n").unwrap();
    let run = sandbox.run(&["schema", "--check", "old.json"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("old.json is stale"));
}

/// docs/reference.md is the schema's reference as generated now: a field
/// added to the types and not to the page fails here.
#[test]
fn the_spec_reference_in_docs_is_current() {
    let run = run_in(&repo(), &["schema", "--reference", "--check"], &[]);
    assert_eq!(
        run.code, 0,
        "docs/reference.md is stale: run `scaleplan schema --reference > docs/reference.md`\n{}",
        run.stdout
    );
    let text = std::fs::read_to_string(repo().join("docs/reference.md")).unwrap();
    // Every section the tables link to exists.
    for link in text.split("](#").skip(1) {
        let target = &link[..link.find(')').unwrap()];
        let heading = text.lines().any(|l| {
            l.strip_prefix("## ")
                .is_some_and(|h| h.to_ascii_lowercase() == target)
        });
        let row = text.contains(&format!("<a id=\"{target}\"></a>"));
        assert!(heading || row, "a link to #{target} leads nowhere");
    }
    let sandbox = Sandbox::new("reference-stale");
    std::fs::write(sandbox.path("ref.md"), "# old\n").unwrap();
    let stale = sandbox.run(&["schema", "--reference", "--check", "ref.md"]);
    assert_eq!(stale.code, 2);
    assert!(
        stale.stderr.contains("scaleplan schema --reference"),
        "{}",
        stale.stderr
    );
}

#[test]
fn schema_is_2020_12_and_lists_the_contract_fields() {
    let run = run_in(&repo(), &["schema"], &[]);
    assert_eq!(run.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    for field in [
        "project",
        "name",
        "order",
        "users",
        "workload",
        "app",
        "postgres",
        "pgbouncer",
        "redis",
        "targets",
        "regions",
        "services",
    ] {
        assert!(
            schema["properties"].get(field).is_some(),
            "schema lacks {field}"
        );
    }
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn two_builds_are_byte_identical() {
    let sandbox = Sandbox::shipped("determinism");
    assert_eq!(sandbox.run(&["build", "--out", "one"]).code, 0);
    assert_eq!(sandbox.run(&["build", "--out", "two"]).code, 0);
    let one = tree(&sandbox.path("one"));
    let two = tree(&sandbox.path("two"));
    assert!(one.len() > 50, "only {} files", one.len());
    assert_eq!(one, two);
}

#[test]
fn check_names_edited_missing_and_extra_files_and_writes_nothing() {
    let sandbox = Sandbox::shipped("check");
    assert_eq!(sandbox.run(&["build"]).code, 0);
    assert_eq!(sandbox.run(&["build", "--check"]).code, 0);

    let edited = sandbox.path("out/growth/compose/pgbouncer/pgbouncer-1/pgbouncer.ini");
    let text = sandbox.edit(
        "out/growth/compose/pgbouncer/pgbouncer-1/pgbouncer.ini",
        &[("default_pool_size = 40", "default_pool_size = 41")],
    );
    std::fs::remove_file(sandbox.path("out/launch/compose/redis/redis-1/redis.conf")).unwrap();
    std::fs::write(
        sandbox.path("out/scale/compose/stray.txt"),
        "hand-written\n",
    )
    .unwrap();
    std::fs::create_dir_all(sandbox.path("out/retired")).unwrap();
    std::fs::write(sandbox.path("out/retired/notes.txt"), "mine\n").unwrap();

    let run = sandbox.run(&["build", "--check"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("stale: out/growth/compose/pgbouncer/pgbouncer-1/pgbouncer.ini"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-default_pool_size = 41"),
        "diff shown: {}",
        run.stdout
    );
    assert!(run.stdout.contains("+default_pool_size = 40"));
    assert!(
        run.stdout
            .contains("missing: out/launch/compose/redis/redis-1/redis.conf")
    );
    assert!(run.stdout.contains("extra: out/scale/compose/stray.txt"));
    assert!(run.stdout.contains("extra: out/retired/"));
    // --check wrote nothing: the edit is still there.
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), text);
    assert!(
        !sandbox
            .path("out/launch/compose/redis/redis-1/redis.conf")
            .exists()
    );

    // build repairs the phases, and leaves a directory it did not generate.
    assert_eq!(sandbox.run(&["build"]).code, 0);
    assert!(!sandbox.path("out/scale/compose/stray.txt").exists());
    assert!(sandbox.path("out/retired/notes.txt").exists());
}

#[test]
fn build_of_named_phases_only_touches_those() {
    let sandbox = Sandbox::shipped("named");
    let run = sandbox.run(&["build", "growth"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        sandbox
            .path("out/growth/compose/docker-compose.yml")
            .exists()
    );
    assert!(!sandbox.path("out/launch").exists());
}

#[test]
fn unknown_phase_lists_the_phases_there_are() {
    let sandbox = Sandbox::shipped("unknown-phase");
    let run = sandbox.run(&["build", "grwoth"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error[LOAD009]"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("phases here: launch, growth, scale, enterprise"),
        "{}",
        run.stderr
    );
    assert!(!sandbox.path("out").exists());
}

#[test]
fn one_invalid_phase_means_nothing_is_written_for_any() {
    let sandbox = Sandbox::shipped("one-invalid");
    sandbox.edit("phases/growth.yaml", &[("quorum: 2", "quorum: 7")]);
    let run = sandbox.run(&["build"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[RED003]: phases/growth.yaml:"),
        "{}",
        run.stderr
    );
    assert!(!sandbox.path("out").exists());
}

#[test]
fn every_problem_in_a_file_is_reported_in_one_run() {
    let sandbox = Sandbox::shipped("many");
    sandbox.edit(
        "phases/growth.yaml",
        &[
            ("app: { replicas: 4 }", "app: { replicas: 4, colour: blue }"),
            ("instances: 2", "instances: two"),
            ("mode: sentinel", "mode: sentinal"),
        ],
    );
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 1);
    for code in ["SCH001", "SCH002", "SCH003"] {
        assert!(
            run.stderr
                .contains(&format!("error[{code}]: phases/growth.yaml:")),
            "{code} missing:\n{}",
            run.stderr
        );
    }
}

#[test]
fn allow_downgrade_permits_a_smaller_later_phase() {
    let sandbox = Sandbox::shipped("downgrade");
    let scale = sandbox.path("phases/scale.yaml");
    let text = sandbox.edit(
        "phases/scale.yaml",
        &[("storage_gb: 500", "storage_gb: 50")],
    );
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[TRN002]: phases/scale.yaml:"),
        "{}",
        run.stderr
    );
    std::fs::write(&scale, text + "allow_downgrade: true\n").unwrap();
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn warnings_pass_unless_strict() {
    let sandbox = Sandbox::shipped("strict");
    sandbox.edit(
        "phases/growth.yaml",
        &[("count: 3, quorum: 2", "count: 4, quorum: 3")],
    );
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning[RED005]: phases/growth.yaml:"),
        "{}",
        run.stderr
    );
    let strict = sandbox.run(&["build", "--strict"]);
    assert_eq!(strict.code, 1);
    assert!(strict.stderr.contains("--strict"));
    assert!(!sandbox.path("out").exists());
}

/// BullMQ's queues on an evicting Redis: an error located at the policy
/// (in the file that set it), naming who runs the queues and the fix; the
/// shipped phases follow it in every Redis block.
#[test]
fn queues_on_an_evicting_redis_are_refused() {
    let clean = run_in(&repo(), &["validate", "--strict"], &[]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(!clean.stderr.contains("RED012"), "{}", clean.stderr);

    let sandbox = Sandbox::shipped("queue-eviction");
    // An evicting policy in base.yaml (which every phase inherits), in
    // enterprise and in its us-east region.
    sandbox.edit(
        "phases/base.yaml",
        &[(
            "maxmemory_policy: noeviction",
            "maxmemory_policy: allkeys-lru",
        )],
    );
    sandbox.edit(
        "phases/enterprise.toml",
        &[
            ("maxmemory_policy = \"noeviction\"\n\n[redis.cluster]", "[redis.cluster]"),
            (
                "# Workers run in every region, with their queues: noeviction here too.\nmaxmemory_policy = \"noeviction\"",
                "maxmemory_policy = \"volatile-lru\"",
            ),
        ],
    );
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let base = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error[RED012]: phases/base.yaml:"))
        .unwrap_or_else(|| panic!("no RED012 at base.yaml's policy:\n{}", run.stderr));
    assert!(
        base.contains("the app (app.queues)") && base.contains("allkeys-lru"),
        "{base}"
    );
    let region = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error[RED012]: phases/enterprise.toml:"))
        .unwrap_or_else(|| panic!("no RED012 at us-east's policy:\n{}", run.stderr));
    assert!(
        region.contains("regions[1].redis.maxmemory_policy is volatile-lru")
            && region.contains("lock keys"),
        "{region}"
    );
    assert!(
        run.stderr
            .contains("help: set redis.maxmemory_policy to noeviction")
            && run.stderr.contains("or give the queues a Redis of their own, which never evicts (queue_redis: {maxmemory_mb: 256})"),
        "{}",
        run.stderr
    );
    assert!(!sandbox.path("out").exists());
}

#[test]
fn inspect_shows_the_merged_spec_with_defaults() {
    let run = run_in(&repo(), &["inspect", "growth"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // From growth.yaml, launch.yaml and base.yaml, and defaults nobody wrote.
    for expected in [
        "name: growth",
        "mode: sentinel",
        "read_replicas: 2",
        "project: sikka",
        "reserve_pool_size: 5",
        "replication_slots: true",
        "down_after_ms: 5000",
        "parallel_syncs: 1",
    ] {
        assert!(
            run.stdout.contains(expected),
            "inspect lacks {expected:?}:\n{}",
            run.stdout
        );
    }
    let json = run_in(&repo(), &["inspect", "enterprise", "--output", "json"], &[]);
    assert_eq!(json.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["name"], "enterprise");
    assert_eq!(doc["redis"]["cluster"]["shards"], 6);
    assert_eq!(
        doc["pgbouncer"]["default_pool_size"], 50,
        "inherited from scale.yaml"
    );
    assert!(
        doc["redis"].get("sentinel").is_none(),
        "dropped by scale.yaml's null"
    );
}

#[test]
fn list_shows_phases_in_order() {
    let run = run_in(&repo(), &["list"], &[]);
    assert_eq!(run.code, 0);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["launch", "growth", "scale", "enterprise"]);
}

#[test]
fn no_secret_from_the_environment_reaches_out() {
    let sandbox = Sandbox::shipped("secrets");
    let secret = "Sup3rSecretTestPassw0rd";
    let env = [
        ("SCALEPLAN_POSTGRES_PASSWORD", secret),
        ("SCALEPLAN_APP_DB_PASSWORD", secret),
        ("SCALEPLAN_REPLICATION_PASSWORD", secret),
        ("SCALEPLAN_REDIS_PASSWORD", secret),
        ("SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD", secret),
    ];
    assert_eq!(sandbox.run_env(&["build"], &env).code, 0);
    for (path, bytes) in tree(&sandbox.path("out")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{path} holds the secret"
        );
    }
}

#[test]
fn every_generated_file_says_it_is_generated_and_from_where() {
    let sandbox = Sandbox::shipped("headers");
    assert_eq!(sandbox.run(&["build"]).code, 0);
    for (path, bytes) in tree(&sandbox.path("out")) {
        let text = String::from_utf8(bytes).unwrap();
        let head: Vec<&str> = text.lines().take(3).collect();
        assert!(
            head.iter()
                .any(|l| l.contains("Generated by scaleplan from")),
            "{path} lacks the header"
        );
        // Transition notes name both phases' files instead of one phase.
        let phase = path.split('/').next().unwrap();
        assert!(
            phase == "transitions" || head.iter().any(|l| l.contains(&format!("Phase {phase}:"))),
            "{path} does not name its phase"
        );
    }
}

#[test]
fn template_overrides_replace_embedded_templates() {
    let sandbox = Sandbox::shipped("templates");
    std::fs::create_dir_all(sandbox.path("tpl/redis")).unwrap();
    std::fs::write(
        sandbox.path("tpl/redis/redis.conf"),
        "{{ header(\"#\") }}\n# site-specific\nport {{ node.endpoint.port }}\n",
    )
    .unwrap();
    let run = sandbox.run(&["build", "--templates", "tpl", "launch"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let conf = std::fs::read_to_string(sandbox.path("out/launch/compose/redis/redis-1/redis.conf"))
        .unwrap();
    assert!(conf.contains("# site-specific\nport 6379\n"), "{conf}");

    // Strict undefined: a template that names a missing value fails the
    // build instead of writing an empty setting.
    std::fs::write(
        sandbox.path("tpl/redis/redis.conf"),
        "# line 1\n# line 2\nport {{ node.no_such_field }}\n",
    )
    .unwrap();
    let run = sandbox.run(&["build", "--templates", "tpl", "--out", "out2"]);
    assert_eq!(run.code, 1);
    // The error keeps the template's name and the line that failed.
    assert!(
        run.stderr.contains("template redis/redis.conf:3"),
        "{}",
        run.stderr
    );
    assert!(!sandbox.path("out2").exists());
}

#[test]
fn usage_errors_exit_1() {
    let run = run_in(&repo(), &["build", "--no-such-flag"], &[]);
    assert_eq!(run.code, 1);
    let run = run_in(&repo(), &["frobnicate"], &[]);
    assert_eq!(run.code, 1);
}

#[test]
fn missing_phases_directory_is_a_located_error() {
    let sandbox = Sandbox::new("no-phases");
    let run = sandbox.run(&["validate", "--phases", "nowhere"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[LOAD001]: nowhere:1:1"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scaleplan"))
        .args(["diff", "launch", "enterprise", "--color", "never"])
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn inspect_output_is_itself_a_valid_spec() {
    for (phase, ext, format) in [("growth", "yaml", "yaml"), ("enterprise", "json", "json")] {
        let run = run_in(&repo(), &["inspect", phase, "--output", format], &[]);
        assert_eq!(run.code, 0);
        let sandbox = Sandbox::new("roundtrip");
        std::fs::create_dir_all(sandbox.path("phases")).unwrap();
        // JSON is YAML, so the JSON form loads as a .yaml file too.
        let text = run
            .stdout
            .replace("extends: launch\n", "")
            .replace("  \"extends\": \"scale\",\n", "");
        let file = if ext == "json" {
            format!("{phase}.yaml")
        } else {
            format!("{phase}.{ext}")
        };
        std::fs::write(sandbox.path(&format!("phases/{file}")), &text).unwrap();
        let again = sandbox.run(&["inspect", phase, "--output", format]);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(again.stdout, text, "{phase}: inspect of inspect differs");
    }
}

#[test]
fn json_build_prints_one_document() {
    let sandbox = Sandbox::shipped("json-build");
    let run = sandbox.run(&["--format", "json", "build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true);
    assert_eq!(
        doc["written"].as_array().unwrap().len(),
        5,
        "four phases and the transitions"
    );
    std::fs::remove_file(sandbox.path("out/growth/README.md")).unwrap();
    let check = sandbox.run(&["--format", "json", "build", "--check"]);
    assert_eq!(check.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&check.stdout).expect("one JSON document");
    assert_eq!(doc["up_to_date"], false);
    assert_eq!(doc["drift"][0]["path"], "out/growth/README.md");
    assert_eq!(doc["drift"][0]["status"], "missing");
}

#[test]
fn the_local_target_listens_on_loopback_only() {
    for phase in ["launch", "growth", "scale", "enterprise"] {
        for (path, bytes) in tree(&repo().join("out").join(phase).join("local")) {
            let text = String::from_utf8(bytes).unwrap();
            for line in text
                .lines()
                .filter(|l| !l.trim_start().starts_with(['#', ';']))
            {
                let binds = line.starts_with("bind ")
                    || line.starts_with("listen_addr")
                    || line.starts_with("listen_addresses");
                if binds {
                    assert!(
                        line.ends_with("127.0.0.1") || line.ends_with("'127.0.0.1'"),
                        "{phase}/{path}: {line}"
                    );
                }
                assert!(
                    !line.contains("0.0.0.0") || line.contains("reject"),
                    "{phase}/{path}: {line}"
                );
            }
            if path.ends_with("pg_hba.conf") {
                assert!(
                    !text.contains("trust"),
                    "{phase}/{path}: trust in pg_hba.conf"
                );
            }
        }
    }
}

#[test]
fn list_as_json() {
    let run = run_in(&repo(), &["--format", "json", "list"], &[]);
    assert_eq!(run.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let phases = doc["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 4);
    assert_eq!(phases[3]["name"], "enterprise");
    assert_eq!(phases[3]["files"][0], "enterprise.toml");
    assert_eq!(phases[1]["redis_mode"], "sentinel");
}

#[test]
fn status_tells_a_running_process_from_one_that_answers() {
    let sandbox = Sandbox::new("status");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start_time = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let answering = listener.local_addr().unwrap().port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = format!(
        r#"{{"phase": "demo", "base_port": 17000, "processes": [
            {{"name": "answers", "kind": "redis", "pid": {pid}, "start_time": {start_time}, "port": {answering}}},
            {{"name": "silent", "kind": "redis", "pid": {pid}, "start_time": {start_time}, "port": {silent}}},
            {{"name": "gone", "kind": "redis", "pid": {pid}, "start_time": 1, "port": {answering}}}
        ]}}"#
    );
    std::fs::write(sandbox.path("state.json"), state).unwrap();
    let run = sandbox.run(&["status", "--state", "."]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(run.code, 1, "{}", run.stdout);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap()
            .to_owned()
    };
    assert!(
        line("answers").ends_with(&format!("up (pid {pid})")),
        "{}",
        run.stdout
    );
    assert!(
        line("silent").contains("but not accepting connections"),
        "{}",
        run.stdout
    );
    assert!(
        line("gone").ends_with("down"),
        "a reused pid is not ours: {}",
        run.stdout
    );
}

/// The data-safety warnings of the cloud and the queues, each at its
/// field with its help line: a cloud phase without a state backend
/// (TF001) whose queues sit on one ElastiCache node (RED013), and a queue
/// Redis where nothing queues (RED014). Warnings pass; `--strict` refuses.
#[test]
fn data_safety_warnings_are_located_with_their_help() {
    let fixtures = repo().join("tests/fixtures");
    let sandbox = Sandbox::with_phases(
        "warnings",
        &[
            fixtures.join("base.yaml"),
            fixtures.join("warnings/cloud.yaml"),
            fixtures.join("warnings/idle.yaml"),
        ],
    );
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    for (located, says, help) in [
        (
            "warning[RED013]: phases/cloud.yaml:8:8:",
            "without a replica on AWS",
            "targets.terraform.redis_replica: true",
        ),
        (
            "warning[TF001]: phases/cloud.yaml:10:3:",
            "unencrypted and unlocked",
            "targets.terraform.state.bucket",
        ),
        (
            "warning[RED014]: phases/idle.yaml:6:14:",
            "nothing in this phase runs queues",
            "set app.queues: true",
        ),
    ] {
        let at = lines
            .iter()
            .position(|l| l.starts_with(located))
            .unwrap_or_else(|| panic!("no `{located}` in:\n{}", run.stderr));
        assert!(lines[at].contains(says), "{}", lines[at]);
        assert!(
            lines[at + 1].starts_with("  help: ") && lines[at + 1].contains(help),
            "{}",
            lines[at + 1]
        );
    }
    let json = sandbox.run(&["--format", "json", "validate"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON diagnostics");
    let mut codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "warning")
        .filter_map(|d| d["code"].as_str())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, ["RED013", "RED014", "TF001"], "{}", json.stdout);

    let strict = sandbox.run(&["build", "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(!sandbox.path("out").exists());
}
