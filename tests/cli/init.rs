//! `scaleplan init`: a starting set that validates and builds as written,
//! and never overwrites a file.

use testkit::{Sandbox, repo, tree};

#[test]
fn init_in_an_empty_directory_validates_and_builds() {
    let sandbox = Sandbox::new("init");
    let run = sandbox.run(&["init", "--project", "shop"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for file in [
        "phases/base.yaml",
        "phases/launch.yaml",
        "phases/growth.yaml",
    ] {
        let text = std::fs::read_to_string(sandbox.path(file)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/phase.schema.json\n"),
            "{file}: {text}"
        );
    }
    // The schema the editor association names is the one scaleplan prints.
    let check = sandbox.run(&["schema", "--check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let validate = sandbox.run(&["validate", "--strict"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    assert!(
        validate.stdout.contains("2 phase(s) valid: launch, growth"),
        "{}",
        validate.stdout
    );
    let build = sandbox.run(&["build", "--strict"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert!(
        sandbox
            .path("out/growth/compose/docker-compose.yml")
            .is_file()
    );
    assert!(
        sandbox
            .path("out/transitions/launch-to-growth.md")
            .is_file()
    );
    let diff = sandbox.run(&["diff", "launch", "growth", "--stat"]);
    assert_eq!(diff.code, 0, "{}", diff.stderr);
}

#[test]
fn a_second_init_exits_1_and_changes_nothing() {
    let sandbox = Sandbox::new("init-twice");
    assert_eq!(sandbox.run(&["init", "--project", "shop"]).code, 0);
    sandbox.edit("phases/launch.yaml", &[("max: 1000", "max: 900")]);
    let before = tree(&sandbox.root);
    let again = sandbox.run(&["init", "--project", "other"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("error[INIT002]:") && again.stderr.contains("phases/launch.yaml"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("help:"), "{}", again.stderr);
    assert_eq!(tree(&sandbox.root), before, "a refused init changed files");
}

#[test]
fn one_file_in_the_way_stops_every_write() {
    let sandbox = Sandbox::new("init-one-in-the-way");
    std::fs::create_dir_all(sandbox.path("schemas")).unwrap();
    std::fs::write(sandbox.path("schemas/phase.schema.json"), "{}").unwrap();
    let run = sandbox.run(&["init"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        !sandbox.path("phases").exists(),
        "init wrote before refusing"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.path("schemas/phase.schema.json")).unwrap(),
        "{}"
    );
}

#[test]
fn a_project_name_that_is_no_dns_label_is_refused() {
    let sandbox = Sandbox::new("init-bad-name");
    let run = sandbox.run(&["init", "--project", "My_Shop", "--dir", "new"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("error[INIT001]:"), "{}", run.stderr);
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert!(!sandbox.path("new").exists(), "nothing may be written");
}

/// The shipped phases carry the same editor association (TOML through
/// taplo's `#:schema` directive).
#[test]
fn shipped_phases_name_the_committed_schema() {
    for file in testkit::spec_files(&repo().join("phases")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let want = if file.extension().is_some_and(|e| e == "toml") {
            "#:schema ../schemas/phase.schema.json"
        } else {
            "# yaml-language-server: $schema=../schemas/phase.schema.json"
        };
        assert_eq!(first, want, "{}", file.display());
    }
    assert!(repo().join("schemas/phase.schema.json").is_file());
}

/// The README's example spec is a valid phase as shown.
#[test]
fn the_readme_example_validates() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("```yaml\n").expect("a YAML example") + "```yaml\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(
        readme[..readme.find(example).unwrap()].lines().count() < 60,
        "the example must be on the first screen"
    );
    let sandbox = Sandbox::new("readme-example");
    std::fs::create_dir_all(sandbox.path("phases")).unwrap();
    std::fs::write(sandbox.path("phases/launch.yaml"), example).unwrap();
    let run = sandbox.run(&["validate", "--strict"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let build = sandbox.run(&["build"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
}
