//! Every generated docker-compose.yml validates against the Compose
//! Specification schema (draft-07) kept in tests/fixtures/schemas.

use scaleplan::plan;
use scaleplan::render::Renderer;
use testkit::repo;

#[test]
fn every_compose_file_matches_the_compose_specification() {
    let schema_path = repo().join("tests/fixtures/schemas/compose-spec.json");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_path)
            .unwrap_or_else(|e| panic!("{}: {e}", schema_path.display())),
    )
    .unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    // The validator is live: a service with an unknown key is rejected.
    let bogus = serde_json::json!({"services": {"x": {"image": "a", "bogus": 1}}});
    assert!(
        !validator.is_valid(&bogus),
        "the Compose schema accepts anything"
    );

    let planned = plan::plan_dir(&repo().join("phases"), &plan::Options::default()).unwrap();
    let renderer = Renderer::new(None).unwrap();
    let mut checked_files = 0;
    for phase in &planned.phases {
        let files = renderer.render_phase(phase).unwrap();
        let text = files
            .get("compose/docker-compose.yml")
            .expect("compose file");
        let doc = testkit::yaml_to_json(text);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", phase.name());
        // Every variable Compose interpolates is listed in .env.example.
        let example = files.get("compose/.env.example").expect(".env.example");
        for var in text
            .split("${")
            .skip(1)
            .map(|rest| rest.split([':', '}']).next().unwrap())
        {
            assert!(
                example.contains(&format!("\n{var}=")),
                "{}: {var} is not in .env.example",
                phase.name()
            );
        }
        let services = doc["services"].as_object().unwrap();
        for (name, service) in services {
            for dep in service["depends_on"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
            {
                assert!(
                    services.contains_key(dep),
                    "{}: {name} depends on unknown {dep}",
                    phase.name()
                );
            }
            if !name.starts_with("redis-cluster-create")
                && service.get("image").is_some()
                && !["app"].contains(&name.as_str())
            {
                let infra = name.starts_with("postgres")
                    || name.starts_with("pgbouncer")
                    || name.starts_with("redis")
                    || name.starts_with("sentinel");
                if infra {
                    assert!(
                        service.get("healthcheck").is_some(),
                        "{}: {name} has no healthcheck",
                        phase.name()
                    );
                }
            }
            // Every file a service mounts is one scaleplan generated, and
            // every named volume is declared.
            for volume in service["volumes"].as_array().into_iter().flatten() {
                let spec = volume.as_str().unwrap();
                let source = spec.split(':').next().unwrap();
                if let Some(rel) = source.strip_prefix("./") {
                    assert!(
                        files.get(&format!("compose/{rel}")).is_some(),
                        "{}: {name} mounts missing {rel}",
                        phase.name()
                    );
                } else {
                    assert!(
                        doc["volumes"].get(source).is_some(),
                        "{}: {name} uses undeclared volume {source}",
                        phase.name()
                    );
                }
            }
            for port in service["ports"].as_array().into_iter().flatten() {
                assert!(
                    port.as_str().unwrap().starts_with("127.0.0.1:"),
                    "{name} publishes beyond loopback: {port}"
                );
            }
        }
        checked_files += 1;
    }
    assert_eq!(checked_files, 4);
}

#[test]
fn every_generated_shell_script_parses() {
    let mut checked = 0;
    for phase in ["launch", "growth", "scale", "enterprise"] {
        for path in testkit::files_under(&repo().join("out").join(phase)) {
            if path.extension().is_none_or(|e| e != "sh") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let shell = if text.starts_with("#!/bin/bash") {
                "bash"
            } else {
                "sh"
            };
            assert!(
                text.starts_with("#!/bin/"),
                "{}: no shebang",
                path.display()
            );
            let out = std::process::Command::new(shell)
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} scripts");
}
