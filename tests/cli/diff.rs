//! `scaleplan diff`: formats, exit codes, directories, files and bad input.

use testkit::{Sandbox, repo, run_in};

fn diff(args: &[&str]) -> testkit::Run {
    let mut all = vec!["diff"];
    all.extend_from_slice(args);
    run_in(&repo(), &all, &[])
}

#[test]
fn text_format_with_spec_changes_plan_and_patches() {
    let run = diff(&[
        "launch",
        "growth",
        "--only",
        "compose/pgbouncer/**",
        "--color",
        "never",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("diff_text_launch_growth", run.stdout);
}

#[test]
fn stat_format() {
    let run = diff(&["growth", "scale", "--stat", "--color", "never"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("diff_stat_growth_scale", run.stdout);
}

#[test]
fn markdown_format_for_a_pull_request_comment() {
    let run = diff(&[
        "--format",
        "markdown",
        "growth",
        "scale",
        "--only",
        "local/pgbouncer/pgbouncer-1/*",
        "-C",
        "1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("<details><summary>"), "{}", run.stdout);
    assert!(run.stdout.contains("```diff"), "{}", run.stdout);
    insta::assert_snapshot!("diff_markdown_growth_scale", run.stdout);
}

#[test]
fn json_format_for_tools() {
    let run = diff(&[
        "--format",
        "json",
        "scale",
        "enterprise",
        "--only",
        "compose/pgbouncer/pgbouncer-1/pgbouncer.ini",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["changes"], true);
    let c = &doc["comparisons"][0];
    assert_eq!(
        (c["from"].as_str(), c["to"].as_str()),
        (Some("scale"), Some("enterprise"))
    );
    assert!(c["files"][0]["hunks"][0]["lines"].as_array().unwrap().len() > 1);
    assert!(
        c["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["risk"] == "data-migration")
    );
    // The steps one compact line each, the rest of the document as printed.
    let steps: Vec<String> = c["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rest = doc.clone();
    rest["comparisons"][0]["plan"]["steps"] = serde_json::json!(format!("{} steps", steps.len()));
    insta::assert_snapshot!(
        "diff_json_scale_enterprise",
        serde_json::to_string_pretty(&rest).unwrap()
    );
    insta::assert_snapshot!("diff_json_scale_enterprise_steps", steps.join("\n"));
}

#[test]
fn context_lines_follow_the_flag() {
    let wide = diff(&[
        "launch",
        "growth",
        "--only",
        "local/pgbouncer/pgbouncer-1/pgbouncer.ini",
        "-C",
        "5",
        "--color",
        "never",
    ]);
    let narrow = diff(&[
        "launch",
        "growth",
        "--only",
        "local/pgbouncer/pgbouncer-1/pgbouncer.ini",
        "-C",
        "0",
        "--color",
        "never",
    ]);
    let context = |s: &str| {
        s.lines()
            .filter(|l| l.starts_with(' ') && !l.starts_with("  "))
            .count()
    };
    assert!(
        context(&wide.stdout) > context(&narrow.stdout),
        "{}\n---\n{}",
        wide.stdout,
        narrow.stdout
    );
    assert_eq!(context(&narrow.stdout), 0);
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let plain = diff(&["launch", "growth", "--only", "compose/.env.example"]);
    assert!(!plain.stdout.contains('\x1b'), "piped output must be plain");
    let coloured = diff(&[
        "launch",
        "growth",
        "--only",
        "compose/.env.example",
        "--color",
        "always",
    ]);
    assert!(coloured.stdout.contains("\x1b[32m+"), "{}", coloured.stdout);
}

#[test]
fn identical_inputs_say_no_changes_and_exit_0() {
    let run = diff(&["growth", "growth", "--detailed-exitcode"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("no changes"), "{}", run.stdout);
}

#[test]
fn detailed_exitcode_is_2_on_changes_and_0_without_the_flag() {
    assert_eq!(diff(&["launch", "growth", "--detailed-exitcode"]).code, 2);
    assert_eq!(diff(&["launch", "growth"]).code, 0);
}

#[test]
fn directory_against_directory_compares_each_phase() {
    let main = Sandbox::shipped("diff-main");
    let pr = Sandbox::shipped("diff-pr");
    pr.edit(
        "phases/growth.yaml",
        &[("default_pool_size: 40", "default_pool_size: 45")],
    );
    let (a, b) = (main.path("phases"), pr.path("phases"));
    let run = run_in(
        &repo(),
        &[
            "diff",
            &a.to_string_lossy(),
            &b.to_string_lossy(),
            "--stat",
            "--detailed-exitcode",
            "--color",
            "never",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("diff launch: 0 added, 0 removed, 0 changed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("pgbouncer.default_pool_size: 40 -> 45"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Reload PgBouncer: default_pool_size 40 -> 45"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("compose/pgbouncer/pgbouncer-1/pgbouncer.ini"),
        "{}",
        run.stdout
    );
    // scale sets its own pool size, so inheriting from growth changes nothing.
    assert!(
        run.stdout
            .contains("diff scale: 0 added, 0 removed, 0 changed"),
        "{}",
        run.stdout
    );

    let same = run_in(
        &repo(),
        &[
            "diff",
            &a.to_string_lossy(),
            &a.to_string_lossy(),
            "--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(same.code, 0, "{}", same.stdout);
}

#[test]
fn spec_files_can_be_compared_directly() {
    let pr = Sandbox::shipped("diff-files");
    let launch = pr.path("phases/launch.yaml");
    let text = std::fs::read_to_string(&launch).unwrap() + "app: { replicas: 3 }\n";
    std::fs::write(&launch, text).unwrap();
    let run = run_in(
        &repo(),
        &[
            "diff",
            "phases/launch.yaml",
            &launch.to_string_lossy(),
            "--color",
            "never",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("app.replicas: 2 -> 3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("[online] Scale the app 2 -> 3 replicas"),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_phase_lists_the_phases_there_are() {
    let run = diff(&["launch", "grwoth"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error[LOAD009]"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("phases here: launch, growth, scale, enterprise"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_invalid_side_reports_its_located_errors() {
    let pr = Sandbox::shipped("diff-invalid");
    pr.edit("phases/growth.yaml", &[("quorum: 2", "quorum: 9")]);
    let run = run_in(
        &repo(),
        &["diff", "phases", &pr.path("phases").to_string_lossy()],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[RED003]:") && run.stderr.contains("growth.yaml:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "no diff is printed for an invalid side: {}",
        run.stdout
    );
}

#[test]
fn a_directory_only_compares_with_a_directory() {
    let run = diff(&["phases", "growth"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("directory only with another directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn build_writes_a_transition_plan_per_consecutive_pair() {
    for (from, to) in [
        ("launch", "growth"),
        ("growth", "scale"),
        ("scale", "enterprise"),
    ] {
        let note =
            std::fs::read_to_string(repo().join(format!("out/transitions/{from}-to-{to}.md")))
                .unwrap();
        assert!(
            note.contains(&format!("# Transition {from} -> {to}")),
            "{note}"
        );
        assert!(note.contains("## Plan"), "{note}");
    }
    let growth_to_scale =
        std::fs::read_to_string(repo().join("out/transitions/growth-to-scale.md")).unwrap();
    assert!(
        growth_to_scale.contains("Migrate the data into the cluster's slots | data migration"),
        "{growth_to_scale}"
    );
    assert!(
        growth_to_scale
            .contains("Switch clients to cluster-aware clients | client change required")
    );
}
