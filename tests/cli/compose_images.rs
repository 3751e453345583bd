//! `targets.compose.images`: the `official` and `debian` Compose files of
//! a phase differ in their image and build lines only, since every service
//! starts through scaleplan's own entrypoint; `debian` writes a Dockerfile
//! per image family; CMP001 refuses versions Debian does not ship.

use testkit::{Sandbox, repo, spec_files};

fn debian(label: &str) -> Sandbox {
    let sandbox = Sandbox::with_phases(label, &spec_files(&repo().join("phases")));
    sandbox.edit(
        "phases/base.yaml",
        &[
            ("  version: 16\n", "  version: 17\n"),
            ("  version: \"1.25\"\n", "  version: \"1.24\"\n"),
            // Debian's PgBouncer 1.24 cannot verify a read host list on
            // AWS (PGB006): these phases run in Compose only.
            (
                "  terraform:\n    enabled: true\n",
                "  terraform:\n    enabled: false\n",
            ),
            ("  version: 7\n", "  version: 8\n"),
            (
                "compose: { enabled: true }",
                "compose: { enabled: true, images: debian }",
            ),
        ],
    );
    sandbox
}

/// A Compose file without its image and build lines.
fn without_images(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_build = false;
    for line in text.lines() {
        if line == "    build:" {
            in_build = true;
            continue;
        }
        if in_build && line.starts_with("      ") {
            continue;
        }
        in_build = false;
        if line.starts_with("    image: ") {
            continue;
        }
        out.push(line);
    }
    out
}

#[test]
fn official_and_debian_files_differ_in_image_lines_only() {
    let official = Sandbox::shipped("images-official");
    let debian = debian("images-debian");
    for sandbox in [&official, &debian] {
        let run = sandbox.run(&["build", "--strict"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    for phase in ["launch", "growth", "scale", "enterprise"] {
        let file = format!("out/{phase}/compose/docker-compose.yml");
        let a = std::fs::read_to_string(official.path(&file)).unwrap();
        let b = std::fs::read_to_string(debian.path(&file)).unwrap();
        assert_ne!(a, b, "{phase}: the sources must differ somewhere");
        assert_eq!(without_images(&a), without_images(&b), "{phase}");
        // No service leans on an image's own entrypoint, but Grafana
        // (profile `dashboards`; Debian has no Grafana) and the app's.
        assert!(!a.contains("docker-entrypoint"), "{phase}");
        let builds = b.matches("    build:").count();
        let images = b.matches("    image: ").count();
        // Pulled: Grafana, and each workload (the app, services and
        // workers: the team's own images, each reading the contract).
        let workloads = b.matches("    env_file: ./app.env").count();
        assert!(workloads >= 1, "{phase}");
        assert_eq!(
            images - builds,
            1 + workloads,
            "{phase}: grafana and the workloads pull"
        );
        // A Dockerfile per family, each from Debian.
        for family in [
            "postgres",
            "pgbouncer",
            "redis",
            "haproxy",
            "prometheus",
            "postgres-exporter",
            "redis-exporter",
            "pgbouncer-exporter",
        ] {
            let dockerfile = std::fs::read_to_string(
                debian.path(&format!("out/{phase}/compose/images/{family}/Dockerfile")),
            )
            .unwrap_or_else(|e| panic!("{phase} {family}: {e}"));
            assert!(
                dockerfile.contains("\nFROM debian:trixie-slim\n"),
                "{family}"
            );
            assert!(
                dockerfile.contains("apt-get install -y --no-install-recommends"),
                "{family}"
            );
        }
        // The official source builds one image: the official PostgreSQL
        // image with pgBackRest, which archives its WAL.
        let built: Vec<String> =
            std::fs::read_dir(official.path(&format!("out/{phase}/compose/images")))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
        assert_eq!(built, ["postgres"], "{phase}");
        let dockerfile = std::fs::read_to_string(
            official.path(&format!("out/{phase}/compose/images/postgres/Dockerfile")),
        )
        .unwrap();
        assert!(dockerfile.contains("\nFROM postgres:"), "{dockerfile}");
        assert!(dockerfile.contains("pgbackrest"), "{dockerfile}");
        assert_eq!(
            a.matches("    build:").count(),
            1 + phase_postgres_replicas(phase),
            "{phase}"
        );
    }
}

/// The PostgreSQL nodes a shipped phase runs beside its primary.
fn phase_postgres_replicas(phase: &str) -> usize {
    match phase {
        "launch" => 0,
        "growth" => 2,
        "scale" => 4,
        _ => 6,
    }
}

#[test]
fn debian_images_refuse_versions_debian_does_not_ship() {
    let sandbox = Sandbox::shipped("images-versions");
    sandbox.edit(
        "phases/base.yaml",
        &[(
            "compose: { enabled: true }",
            "compose: { enabled: true, images: debian }",
        )],
    );
    let run = sandbox.run(&["--format", "json", "validate", "launch"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let found: Vec<(String, String)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "CMP001")
        .map(|d| {
            (
                d["message"].as_str().unwrap().to_owned(),
                format!(
                    "{}:{}",
                    d["location"]["file"].as_str().unwrap(),
                    d["location"]["line"]
                ),
            )
        })
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    for (field, want) in [
        ("postgres.version", "17"),
        ("redis.version", "8"),
        ("pgbouncer.version", "1.24"),
    ] {
        assert!(
            found.iter().any(|(m, at)| m.starts_with(field)
                && m.ends_with(&format!("ships {want}"))
                && at.contains("base.yaml:")),
            "{field}: {found:?}"
        );
    }
    assert!(!sandbox.path("out").exists());
}

/// The Compose commands of the transition notes are shell as written: the
/// Markdown escaping of table cells never reaches a code block (a `\|` in
/// `... | paste -sd: -` would reach the shell).
#[test]
fn transition_commands_are_not_escaped_in_code_blocks() {
    let mut checked = 0;
    for file in testkit::files_under(&repo().join("out/transitions")) {
        if file.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_code = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if in_code && line.starts_with("docker compose") {
                checked += 1;
                assert!(!line.contains("\\|"), "{}: {line}", file.display());
            }
        }
    }
    assert!(checked > 10, "{checked} commands");
    let note = std::fs::read_to_string(repo().join("out/transitions/growth-to-scale.md")).unwrap();
    assert!(
        note.contains("get-master-addr-by-name sikka | paste -sd: -"),
        "the cut-over's pipe"
    );
}
