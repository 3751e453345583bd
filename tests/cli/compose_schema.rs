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
                    // A file, or a directory of generated files.
                    let dir = format!("compose/{rel}/");
                    assert!(
                        files.get(&format!("compose/{rel}")).is_some()
                            || files.iter().any(|(path, _)| path.starts_with(&dir)),
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

/// `deploy.resources.limits` of every service of a compose file: (cpus,
/// memory in MB).
fn limits(compose: &std::path::Path) -> Vec<(String, f64, u64)> {
    let doc = testkit::yaml_to_json(&std::fs::read_to_string(compose).unwrap());
    doc["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, s)| {
            let l = &s["deploy"]["resources"]["limits"];
            let cpus: f64 = l["cpus"].as_str()?.parse().ok()?;
            let memory: u64 = l["memory"].as_str()?.trim_end_matches('M').parse().ok()?;
            Some((name.clone(), cpus, memory))
        })
        .collect()
}

/// Compose runs on one machine: no limit is above a 4-core, 8 GB laptop
/// unless the spec raises the caps (production sizes stay in Terraform).
#[test]
fn compose_limits_fit_a_laptop_unless_the_spec_raises_them() {
    for phase in ["launch", "growth", "scale", "enterprise"] {
        let compose = repo()
            .join("out")
            .join(phase)
            .join("compose/docker-compose.yml");
        let all = limits(&compose);
        assert!(all.len() > 5, "{phase}: {all:?}");
        for (name, cpus, memory) in all {
            assert!(cpus <= 4.0, "{phase}: {name} asks for {cpus} CPUs");
            assert!(memory <= 8192, "{phase}: {name} asks for {memory} MB");
        }
        // Memory settings follow the capped memory.
        let conf = std::fs::read_to_string(
            repo()
                .join("out")
                .join(phase)
                .join("compose/postgres/postgres-primary/postgresql.conf"),
        )
        .unwrap();
        let buffers: u64 = conf
            .lines()
            .find_map(|l| l.strip_prefix("shared_buffers = '"))
            .and_then(|v| v.split("MB").next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(buffers <= 2048, "{phase}: shared_buffers {buffers} MB");
    }
    let sandbox = testkit::Sandbox::shipped("raised-caps");
    sandbox.edit(
        "phases/base.yaml",
        &[(
            "  compose: { enabled: true }",
            "  compose: { enabled: true, max_cpus: 16, max_memory_mb: 65536 }",
        )],
    );
    let run = sandbox.run(&["build", "enterprise"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let raised = limits(&sandbox.path("out/enterprise/compose/docker-compose.yml"));
    assert!(
        raised
            .iter()
            .any(|(name, cpus, memory)| name == "postgres-primary"
                && *cpus == 16.0
                && *memory == 65536),
        "{raised:?}"
    );
}

/// The names of an env file's variables.
fn env_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| l.split('=').next().unwrap().to_owned())
        .collect()
}

/// One contract everywhere: Compose and the local target give the app the
/// same variables, and the ECS tasks the same names (a Sentinel phase is
/// standalone behind ElastiCache's primary endpoint there).
#[test]
fn every_target_gives_the_app_the_same_contract() {
    for phase in ["launch", "growth", "scale", "enterprise"] {
        let out = repo().join("out").join(phase);
        let compose = env_names(&std::fs::read_to_string(out.join("compose/app.env")).unwrap());
        let local = env_names(&std::fs::read_to_string(out.join("local/app.env")).unwrap());
        assert_eq!(compose, local, "{phase}");
        for name in [
            "DATABASE_URL",
            "DATABASE_READ_URL",
            "REDIS_MODE",
            "REDIS_PASSWORD",
        ] {
            assert!(compose.contains(name), "{phase}: {name}");
        }
        let services =
            std::fs::read_to_string(out.join("terraform/modules/region/services.tf")).unwrap();
        for name in &compose {
            let on_aws = match name.as_str() {
                "REDIS_SENTINELS" | "REDIS_SENTINEL_NAME" => "REDIS_URL",
                other => other,
            };
            assert!(
                services.contains(&format!("name = \"{on_aws}\"")),
                "{phase}: the ECS tasks lack {on_aws}"
            );
        }
        assert!(
            !services.contains("REDIS_HOST"),
            "{phase}: a variable outside the contract"
        );
    }
}
