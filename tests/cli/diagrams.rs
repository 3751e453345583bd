//! The Mermaid diagrams: every one parses with Mermaid's own parser
//! (tests/diagrams), a broken one fails it, and each phase's architecture
//! holds the structure its spec asks for.

use std::path::{Path, PathBuf};
use testkit::{Sandbox, repo, run_in};

/// Runs tests/diagrams/parse.mjs; (success, output).
fn parse(args: &[&Path]) -> (bool, String) {
    let out = std::process::Command::new("node")
        .arg(repo().join("tests/diagrams/parse.mjs"))
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
}

/// Freshly built phases (not the committed out/), the Markdown of two
/// diffs (one that adds, one that removes), and docs/diagrams.md.
#[test]
fn every_generated_diagram_parses_with_mermaid() {
    let (ok, text) = parse(&[Path::new("--self-test")]);
    assert!(ok, "the Mermaid parse setup is broken:\n{text}");
    let sandbox = Sandbox::shipped("diagrams");
    let build = sandbox.run(&["build"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    let diffs = sandbox.path("diffs");
    std::fs::create_dir_all(&diffs).unwrap();
    let shrink = repo().join("tests/fixtures/shrink");
    for (name, dir, args) in [
        (
            "grow.md",
            sandbox.root.clone(),
            vec!["--format", "markdown", "diff", "scale", "enterprise"],
        ),
        (
            "shrink.md",
            sandbox.root.clone(),
            vec![
                "--format",
                "markdown",
                "diff",
                "--phases",
                shrink.to_str().unwrap(),
                "large",
                "small",
            ],
        ),
    ] {
        let run = run_in(&dir, &args, &[]);
        assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
        assert!(run.stdout.contains("```mermaid"), "{name}: {}", run.stdout);
        std::fs::write(diffs.join(name), &run.stdout).unwrap();
    }
    let shrunk = std::fs::read_to_string(diffs.join("shrink.md")).unwrap();
    assert!(
        shrunk.contains(" removed\n"),
        "nothing marked removed:\n{shrunk}"
    );
    let out = sandbox.path("out");
    let readme = repo().join("docs/diagrams.md");
    let (ok, text) = parse(&[&out, &diffs, &readme]);
    assert!(ok, "Mermaid refused a diagram:\n{text}");
    // 4 architectures twice (.mmd, README), 3 transitions with 3 diagrams
    // each, the roadmap twice, 2 x 2 in the diffs, and docs/diagrams.md's 2.
    let passed: usize = text.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(passed, 8 + 9 + 2 + 4 + 2, "{passed} diagrams:\n{text}");
}

/// docs/diagrams.md shows the roadmap and growth's architecture as they are
/// generated, not as they were when someone pasted them.
#[test]
fn the_readme_diagrams_are_current() {
    let readme = std::fs::read_to_string(repo().join("docs/diagrams.md")).unwrap();
    for file in ["out/transitions/roadmap.mmd", "out/growth/architecture.mmd"] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let body = &text[text.find("flowchart").unwrap()..];
        assert!(
            readme.contains(&format!("```mermaid\n{body}```")),
            "docs/diagrams.md shows an old {file}: copy it from there"
        );
    }
}

/// Every ordered pair of shipped phases, growing and shrinking (groups
/// move into a region and out of it): the change diagram has each
/// subgraph once and parses.
#[test]
fn change_diagrams_hold_every_subgraph_once_in_both_directions() {
    let phases = ["launch", "growth", "scale", "enterprise"];
    let sandbox = Sandbox::new("change-diagrams");
    for a in phases {
        for b in phases {
            if a == b {
                continue;
            }
            let run = run_in(&repo(), &["--format", "markdown", "diff", a, b], &[]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let mut seen = std::collections::BTreeSet::new();
            // The architecture block (file patches below quote diagrams too).
            let block = run
                .stdout
                .split("```mermaid\n")
                .nth(1)
                .and_then(|b| b.split("```").next())
                .unwrap_or_else(|| panic!("{a} -> {b}: no diagram"));
            for line in block.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("subgraph ") {
                    let id = rest.split('[').next().unwrap();
                    assert!(
                        seen.insert(id.to_owned()),
                        "{a} -> {b}: subgraph {id} twice"
                    );
                }
            }
            std::fs::write(sandbox.path(&format!("{a}-{b}.md")), &run.stdout).unwrap();
        }
    }
    let (ok, text) = parse(&[&sandbox.root]);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        24,
        "{text}"
    );
}

/// What the parser catches: a diagram scaleplan wrote, with one `end`
/// of a subgraph lost, fails.
#[test]
fn a_broken_diagram_fails_the_parse() {
    let sandbox = Sandbox::new("broken-diagram");
    let good = std::fs::read_to_string(repo().join("out/growth/architecture.mmd")).unwrap();
    let broken = good.replacen("\n  end\n", "\n", 1);
    assert_ne!(good, broken);
    let path: PathBuf = sandbox.path("broken.mmd");
    std::fs::write(&path, broken).unwrap();
    let (ok, text) = parse(&[&path]);
    assert!(!ok, "a diagram missing an `end` parsed:\n{text}");
    assert!(text.contains("FAIL"), "{text}");
}

fn architecture(phase: &str) -> String {
    std::fs::read_to_string(repo().join(format!("out/{phase}/architecture.mmd"))).unwrap()
}

fn count(text: &str, class: &str) -> usize {
    text.matches(&format!(":::{class}\n")).count()
}

/// A diagram can parse and still be wrong: each phase's holds what its
/// spec asks for.
#[test]
fn each_architecture_holds_its_phase_structure() {
    // (phase, PostgreSQL replicas, PgBouncers, Redis masters, Redis
    // replicas, sentinels, region subgraphs)
    for (phase, replicas, bouncers, masters, redis_replicas, sentinels, regions) in [
        ("launch", 0, 1, 1, 0, 0, 0),
        ("growth", 2, 2, 1, 2, 3, 0),
        ("scale", 4, 4, 3, 3, 0, 0),
        // eu-west: 6 replicas, 6 PgBouncers, 6 shards x 1 replica; us-east:
        // 3 cross-region replicas, its PgBouncer service, 3 shards x 1.
        ("enterprise", 9, 7, 9, 9, 0, 2),
    ] {
        let text = architecture(phase);
        let got = (
            count(&text, "replica"),
            count(&text, "pgbouncer"),
            count(&text, "redis_master"),
            count(&text, "redis_replica"),
            count(&text, "sentinel"),
            text.matches("subgraph region_").count(),
        );
        assert_eq!(
            got,
            (
                replicas,
                bouncers,
                masters,
                redis_replicas,
                sentinels,
                regions
            ),
            "{phase}:\n{text}"
        );
        assert_eq!(count(&text, "primary"), 1, "{phase}");
        // Every replica streams from the primary.
        assert_eq!(text.matches("streaming\"|").count(), replicas, "{phase}");
        // The phase README shows the same diagram.
        let readme =
            std::fs::read_to_string(repo().join(format!("out/{phase}/README.md"))).unwrap();
        let body = text.split_once("flowchart").unwrap().1;
        assert!(readme.contains(body), "{phase}: README lacks the diagram");
    }
}

/// The transition flow has a node per step of the plan, coloured by its
/// risk, and the roadmap every phase.
#[test]
fn transition_flows_and_the_roadmap_follow_the_plans() {
    let run = run_in(
        &repo(),
        &["--format", "json", "diff", "launch", "growth"],
        &[],
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let steps = doc["comparisons"][0]["plan"]["steps"].as_array().unwrap();
    let flow =
        std::fs::read_to_string(repo().join("out/transitions/launch-to-growth.mmd")).unwrap();
    for (i, s) in steps.iter().enumerate() {
        let class = match s["risk"].as_str().unwrap() {
            "online" => "online",
            "rolling-restart" => "rolling",
            "brief-write-unavailability" => "brief",
            "data-migration" => "data",
            "client-change-required" => "client_change",
            "no-op" => "noop",
            other => other,
        };
        let line = flow
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("step_{}[", i + 1)))
            .unwrap_or_else(|| panic!("no node for step {}:\n{flow}", i + 1));
        assert!(line.ends_with(&format!(":::{class}")), "{line}");
    }
    assert!(!flow.contains(&format!("step_{}[", steps.len() + 1)));
    let roadmap = std::fs::read_to_string(repo().join("out/transitions/roadmap.mmd")).unwrap();
    assert_eq!(roadmap.matches(":::phase").count(), 4, "{roadmap}");
    assert_eq!(roadmap.matches(" ==>|").count(), 3, "{roadmap}");
    assert!(roadmap.contains("bottleneck: WebSocket"), "{roadmap}");
}
