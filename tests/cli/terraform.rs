//! The Terraform target: formatting, every resource against the provider
//! schemas in tests/fixtures/schemas, the values that must match the
//! other targets, and the variables' validation rules under `terraform test`.

use hcl::{Body, Expression};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::{Sandbox, repo};

const PHASES: [&str; 4] = ["launch", "growth", "scale", "enterprise"];

fn tf_files(dir: &Path) -> Vec<PathBuf> {
    testkit::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect()
}

fn parse(path: &Path) -> Body {
    hcl::parse(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// terraform on PATH, or None outside CI (inside CI a missing terraform fails).
fn terraform() -> Option<&'static str> {
    if Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some("terraform")
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "terraform is needed under CI (/usr/local/bin/terraform)"
        );
        eprintln!("terraform is not installed: skipped outside CI");
        None
    }
}

fn tf(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap()
}

#[test]
fn every_tree_is_terraform_fmt_clean() {
    let Some(_) = terraform() else { return };
    for phase in PHASES {
        let dir = repo().join("out").join(phase).join("terraform");
        let out = tf(&dir, &["fmt", "-check", "-diff", "-recursive", "-no-color"]);
        assert!(
            out.status.success(),
            "{phase}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The variables' validation rules, offline: variables.tf needs no provider,
/// so it is validated and tested alone.
#[test]
fn variable_validation_rules_hold_under_terraform_test() {
    let Some(_) = terraform() else { return };
    for phase in PHASES {
        let sandbox = Sandbox::new(&format!("tf-vars-{phase}"));
        let src = repo().join("out").join(phase).join("terraform");
        std::fs::create_dir_all(sandbox.path("tests")).unwrap();
        std::fs::copy(src.join("variables.tf"), sandbox.path("variables.tf")).unwrap();
        std::fs::copy(
            src.join("tests/variables.tftest.hcl"),
            sandbox.path("tests/variables.tftest.hcl"),
        )
        .unwrap();
        for args in [
            &["init", "-backend=false", "-no-color"][..],
            &["validate", "-no-color"],
            &["test", "-no-color"],
        ] {
            let out = tf(&sandbox.root, args);
            assert!(
                out.status.success(),
                "{phase}: terraform {args:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if args[0] == "test" {
                // Enterprise has a secondary region, and so one run more:
                // its replicas' KMS key.
                let runs = if phase == "enterprise" {
                    "12 passed, 0 failed"
                } else {
                    "10 passed, 0 failed"
                };
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(stdout.contains(runs), "{phase}: {stdout}");
            }
        }
    }
}

const META: [&str; 5] = ["count", "for_each", "depends_on", "provider", "lifecycle"];

/// Checks one block body against a provider schema BLOCK.
fn check_body(schema: &serde_json::Value, body: &Body, at: &str, problems: &mut Vec<String>) {
    let attrs = &schema["attributes"];
    let blocks = &schema["blocks"];
    for attr in body.attributes() {
        let key = attr.key();
        if META.contains(&key) || attrs.get(key).is_some() || blocks.get(key).is_some() {
            continue;
        }
        problems.push(format!("{at}: unknown argument {key}"));
    }
    let mut seen_blocks = Vec::new();
    for block in body.blocks() {
        let (name, inner) = if block.identifier() == "dynamic" {
            let label = block
                .labels()
                .first()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default();
            let content = block
                .body()
                .blocks()
                .find(|b| b.identifier() == "content")
                .map(|b| b.body().clone());
            (label, content.unwrap_or_default())
        } else if block.identifier() == "lifecycle" {
            continue;
        } else {
            (block.identifier().to_owned(), block.body().clone())
        };
        match blocks.get(&name) {
            Some(nested) if nested["unknown_contents"] != true => {
                check_body(nested, &inner, &format!("{at}.{name}"), problems)
            }
            Some(_) => {}
            None => problems.push(format!("{at}: unknown block {name}")),
        }
        seen_blocks.push(name);
    }
    for (name, a) in attrs.as_object().into_iter().flatten() {
        if a["required"] == true && !body.attributes().any(|x| x.key() == name) {
            problems.push(format!("{at}: required argument {name} is not set"));
        }
    }
    for (name, b) in blocks.as_object().into_iter().flatten() {
        if b["required"] == true
            && !seen_blocks.contains(name)
            && !body.attributes().any(|x| x.key() == name)
        {
            problems.push(format!("{at}: required block {name} is missing"));
        }
    }
}

fn provider_schema() -> serde_json::Value {
    let path = repo().join("tests/fixtures/schemas/terraform-providers.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Every block of a rendered tree against the provider schemas: the
/// problems found, and how many blocks were checked.
fn schema_problems(schema: &serde_json::Value, dir: &Path, problems: &mut Vec<String>) -> usize {
    let mut resources = 0;
    for file in tf_files(dir) {
        let body = parse(&file);
        let shown = file.display().to_string();
        for block in body.blocks() {
            let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
            let (kind, table) = match block.identifier() {
                "resource" => ("resource", &schema["resources"]),
                "data" => ("data", &schema["data_sources"]),
                "provider" => ("provider", &schema["provider"]),
                _ => continue,
            };
            let Some(block_schema) = table.get(labels[0]) else {
                problems.push(format!("{shown}: unknown {kind} type {}", labels[0]));
                continue;
            };
            resources += 1;
            check_body(
                block_schema,
                block.body(),
                &format!("{shown}: {kind} {}", labels.join(".")),
                problems,
            );
        }
    }
    resources
}

#[test]
fn every_resource_matches_the_provider_schemas() {
    let schema = provider_schema();
    // The checker is live: an unknown argument and a missing required one.
    let mut problems = Vec::new();
    let bogus = hcl::parse("resource \"aws_db_instance\" \"x\" {\n  bogus = 1\n}\n").unwrap();
    let block = bogus.blocks().next().unwrap();
    check_body(
        &schema["resources"]["aws_db_instance"],
        block.body(),
        "self-test",
        &mut problems,
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    problems.clear();

    let mut resources = 0;
    for phase in PHASES {
        resources += schema_problems(
            &schema,
            &repo().join("out").join(phase).join("terraform"),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(resources > 100, "only {resources} blocks checked");
}

/// Literal values of an HCL expression, for comparisons.
fn lit(e: &Expression) -> String {
    match e {
        Expression::String(s) => s.clone(),
        Expression::Number(n) => n.to_string(),
        Expression::Bool(b) => b.to_string(),
        Expression::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

fn object(e: &Expression) -> BTreeMap<String, &Expression> {
    match e {
        Expression::Object(o) => o.iter().map(|(k, v)| (k.to_string(), v)).collect(),
        other => panic!("not an object: {other:?}"),
    }
}

fn modules(phase: &str) -> Vec<(String, BTreeMap<String, Expression>)> {
    let body = parse(&repo().join("out").join(phase).join("terraform/main.tf"));
    body.blocks()
        .filter(|b| b.identifier() == "module")
        .map(|b| {
            let name = b.labels()[0].as_str().to_owned();
            let attrs = b
                .body()
                .attributes()
                .map(|a| (a.key().to_owned(), a.expr().clone()))
                .collect();
            (name, attrs)
        })
        .collect()
}

/// postgresql.conf -> name -> value (quotes removed, comments dropped).
fn conf(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains(" = "))
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            let v = v.split('\t').next().unwrap().trim().trim_matches('\'');
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// An independent reading of PostgreSQL units, to compare the two sides:
/// memory in bytes, time in ms, booleans as 1/0.
fn normalise(name: &str, value: &str) -> String {
    let kb = 1024u64;
    let base = match name {
        "shared_buffers" | "effective_cache_size" => 8 * kb,
        "work_mem" | "maintenance_work_mem" => kb,
        "max_slot_wal_keep_size" => kb * kb,
        _ => 0,
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    match (digits.parse::<u64>(), unit) {
        (Ok(n), "") if base > 0 => (n * base).to_string(),
        (Ok(n), "kB") => (n * kb).to_string(),
        (Ok(n), "MB") => (n * kb * kb).to_string(),
        (Ok(n), "GB") => (n * kb * kb * kb).to_string(),
        (Ok(n), "s") => (n * 1000).to_string(),
        (Ok(n), "ms") => n.to_string(),
        _ => match value {
            "on" | "true" => "1".to_owned(),
            "off" | "false" => "0".to_owned(),
            other => other.to_owned(),
        },
    }
}

fn spec(phase: &str) -> serde_json::Value {
    let run = testkit::run_in(&repo(), &["inspect", phase, "--output", "json"], &[]);
    serde_json::from_str(&run.stdout).unwrap()
}

/// The shipped phases rendered with one machine's caps lifted, so the
/// Compose postgresql.conf carries the production sizes the cloud has.
fn uncapped() -> testkit::Sandbox {
    let sandbox = testkit::Sandbox::shipped("uncapped");
    sandbox.edit(
        "phases/base.yaml",
        &[(
            "  compose: { enabled: true }",
            "  compose: { enabled: true, max_cpus: 256, max_memory_mb: 1048576 }",
        )],
    );
    let run = sandbox.run(&["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    sandbox
}

#[test]
fn each_region_module_matches_the_phase() {
    let sandbox = uncapped();
    for phase in PHASES {
        let spec = spec(phase);
        let mods = modules(phase);
        let regions = spec["regions"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            mods.len(),
            regions.len().max(1),
            "{phase}: one module per region"
        );
        let primary_conf = conf(
            &sandbox
                .path("out")
                .join(phase)
                .join("compose/postgres/postgres-primary/postgresql.conf"),
        );
        let ini = std::fs::read_to_string(
            repo()
                .join("out")
                .join(phase)
                .join("compose/pgbouncer/pgbouncer-1/pgbouncer.ini"),
        )
        .unwrap();
        let ini_value = |key: &str| {
            ini.lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = ")).map(str::to_owned))
                .unwrap()
        };
        for (name, args) in &mods {
            let region = regions.iter().find(|r| {
                format!("region_{}", r["name"].as_str().unwrap().replace('-', "_")) == *name
            });
            let pg = object(&args["postgres"]);
            let replicas =
                region.map_or(&spec["postgres"]["read_replicas"], |r| &r["read_replicas"]);
            assert_eq!(
                lit(pg["read_replicas"]),
                replicas.to_string(),
                "{phase} {name}: read replicas"
            );

            // The parameter group holds postgresql.conf's settings.
            let Expression::Array(params) = pg["parameters"] else {
                panic!("parameters")
            };
            let group: BTreeMap<String, String> = params
                .iter()
                .map(|p| {
                    let o = object(p);
                    (lit(o["name"]), lit(o["value"]))
                })
                .collect();
            let managed_by_rds = [
                "listen_addresses",
                "port",
                "hba_file",
                "wal_level",
                "hot_standby",
                "superuser_reserved_connections",
                // RDS archives its WAL itself (its automated backups).
                "archive_mode",
                "archive_command",
                "archive_timeout",
            ];
            for (key, value) in &primary_conf {
                if managed_by_rds.contains(&key.as_str()) {
                    assert!(!group.contains_key(key), "{phase}: {key} is RDS's own");
                    continue;
                }
                let in_group = group
                    .get(key)
                    .unwrap_or_else(|| panic!("{phase} {name}: parameter group lacks {key}"));
                assert_eq!(
                    normalise(key, in_group),
                    normalise(key, value),
                    "{phase} {name}: {key}"
                );
            }
            assert_eq!(
                group.len(),
                primary_conf.len()
                    - managed_by_rds
                        .iter()
                        .filter(|k| primary_conf.contains_key(**k))
                        .count()
            );

            // Redis by mode.
            let redis_spec = region
                .and_then(|r| r.get("redis"))
                .unwrap_or(&spec["redis"]);
            let redis = object(&args["redis"]);
            match redis_spec["mode"].as_str().unwrap() {
                "cluster" => {
                    assert_eq!(lit(redis["cluster_mode"]), "enabled");
                    assert_eq!(
                        lit(redis["num_node_groups"]),
                        redis_spec["cluster"]["shards"].to_string(),
                        "{phase} {name}"
                    );
                    assert_eq!(
                        lit(redis["replicas_per_node_group"]),
                        redis_spec["cluster"]["replicas_per_shard"].to_string()
                    );
                    assert_eq!(lit(redis["automatic_failover"]), "true");
                }
                "sentinel" => {
                    assert_eq!(lit(redis["cluster_mode"]), "disabled");
                    let nodes = 1 + redis_spec["replicas"].as_u64().unwrap();
                    assert_eq!(lit(redis["num_cache_clusters"]), nodes.to_string());
                    assert_eq!(
                        (
                            lit(redis["automatic_failover"]).as_str(),
                            lit(redis["multi_az"]).as_str()
                        ),
                        ("true", "true")
                    );
                }
                // Standalone: one node, or two with automatic failover
                // where targets.terraform.redis_replica asks.
                _ if spec["targets"]["terraform"]["redis_replica"] == true => {
                    assert_eq!(lit(redis["num_cache_clusters"]), "2");
                    assert_eq!(lit(redis["automatic_failover"]), "true");
                }
                _ => {
                    assert_eq!(lit(redis["num_cache_clusters"]), "1");
                    assert_eq!(lit(redis["automatic_failover"]), "false");
                }
            }
            assert_eq!(
                lit(redis["maxmemory_policy"]),
                redis_spec["maxmemory_policy"]
                    .as_str()
                    .unwrap_or("allkeys-lru")
            );

            // PgBouncer runs one task per instance with the pool settings
            // of the pgbouncer.ini template the module ships: Compose's.
            let tftpl = std::fs::read_to_string(
                sandbox
                    .path("out")
                    .join(phase)
                    .join("terraform/modules/region/pgbouncer.ini.tftpl"),
            )
            .unwrap();
            for key in [
                "pool_mode",
                "default_pool_size",
                "reserve_pool_size",
                "max_client_conn",
            ] {
                let line = format!("{key} = {}", ini_value(key));
                assert!(tftpl.lines().any(|l| l == line), "{phase}: {line}");
            }
            let pgb = object(&args["pgbouncer"]);
            assert_eq!(
                lit(pgb["instances"]),
                spec["pgbouncer"]["instances"].to_string()
            );
        }
    }
}

#[test]
fn enterprise_secondary_region_replicates_across_regions() {
    let mods = modules("enterprise");
    let names: Vec<&str> = mods.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["primary", "region_us_east"]);
    let (_, us) = &mods[1];
    assert_eq!(lit(&us["primary"]), "false");
    let pg = object(&us["postgres"]);
    let source = format!("{:?}", pg["source_db_arn"]);
    assert!(
        source.contains("Identifier(primary)") && source.contains("writer_arn"),
        "{source}"
    );
    let readme =
        std::fs::read_to_string(repo().join("out/enterprise/terraform/README.md")).unwrap();
    assert!(
        readme.contains("## Region eu-west (eu-west-1)")
            && readme.contains("## Region us-east (us-east-1)"),
        "{readme}"
    );
    assert!(readme.contains("cross-region read replica"));
}

#[test]
fn versions_are_pinned_and_no_secret_is_a_literal() {
    for phase in PHASES {
        let dir = repo().join("out").join(phase).join("terraform");
        let versions = std::fs::read_to_string(dir.join("versions.tf")).unwrap();
        assert!(
            versions.contains("version = \"~> 6.0\"") && versions.contains("version = \"~> 3.7\""),
            "{versions}"
        );
        for file in tf_files(&dir) {
            let body = parse(&file);
            let mut stack: Vec<Body> = vec![body];
            while let Some(b) = stack.pop() {
                for a in b.attributes() {
                    if ["password", "auth_token", "secret_string"].contains(&a.key()) {
                        // A template may build a value around a generated
                        // password, never hold one.
                        let literal = match a.expr() {
                            Expression::String(_) => true,
                            Expression::TemplateExpr(t) => {
                                !format!("{t:?}").contains("random_password.")
                            }
                            _ => false,
                        };
                        assert!(!literal, "{}: {} is a literal", file.display(), a.key());
                    }
                }
                for block in b.blocks() {
                    if block.identifier() == "variable" {
                        let name = block.labels()[0].as_str();
                        let secret = ["password", "token", "secret"]
                            .iter()
                            .any(|w| name.contains(w));
                        assert!(
                            !(secret && block.body().attributes().any(|a| a.key() == "default")),
                            "{name} has a default"
                        );
                    }
                    stack.push(block.body().clone());
                }
            }
        }
    }
}

#[test]
fn instance_classes_come_from_the_table_or_the_spec() {
    let vars = std::fs::read_to_string(repo().join("out/growth/terraform/variables.tf")).unwrap();
    // growth's primary: 4 cpu, 16 GiB -> the smallest class with both.
    assert!(vars.contains("default     = \"db.m6g.xlarge\""), "{vars}");
    let sandbox = Sandbox::shipped("tf-classes");
    let growth = sandbox.path("phases/growth.yaml");
    let text = std::fs::read_to_string(&growth).unwrap()
        + "targets: { terraform: { instance_classes: { postgres: db.r6g.2xlarge, redis: cache.r7g.xlarge } } }\n";
    std::fs::write(&growth, text).unwrap();
    let run = sandbox.run(&["build", "growth"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let vars = std::fs::read_to_string(sandbox.path("out/growth/terraform/variables.tf")).unwrap();
    assert!(vars.contains("default     = \"db.r6g.2xlarge\""), "{vars}");
    assert!(vars.contains("main = \"cache.r7g.xlarge\""), "{vars}");
    let bad = std::fs::read_to_string(&growth)
        .unwrap()
        .replace("db.r6g.2xlarge", "r6g.2xlarge");
    std::fs::write(&growth, bad).unwrap();
    let run = sandbox.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error[SCH005]: phases/growth.yaml:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("an RDS instance class such as db.r6g.xlarge"),
        "{}",
        run.stderr
    );
}

/// The writer streams to every region's replicas (a secondary region's are
/// cross-region standbys of it), plus room for a re-seed: enterprise has
/// 6 in eu-west and 3 in us-east, so 9 slots + 3; and two senders each,
/// since a clone streams its WAL beside the base backup and the replicas
/// clone at once: 18 + 3, on every target.
#[test]
fn the_writer_has_a_sender_and_a_slot_for_every_replica_in_every_region() {
    let conf = std::fs::read_to_string(
        repo().join("out/enterprise/compose/postgres/postgres-primary/postgresql.conf"),
    )
    .unwrap();
    for setting in ["max_wal_senders = 21", "max_replication_slots = 12"] {
        assert!(conf.contains(setting), "{setting}:\n{conf}");
    }
    let main = std::fs::read_to_string(repo().join("out/enterprise/terraform/main.tf")).unwrap();
    for (name, value) in [("max_wal_senders", 21), ("max_replication_slots", 12)] {
        let wanted = format!("{{ name = \"{name}\", value = \"{value}\"");
        // The parameter group of each region's module.
        assert_eq!(main.matches(&wanted).count(), 2, "{name}:\n{main}");
    }
    // Without regions, the phase's own replicas: growth has 2, so 2 x 2 + 3.
    let growth = std::fs::read_to_string(
        repo().join("out/growth/compose/postgres/postgres-primary/postgresql.conf"),
    )
    .unwrap();
    assert!(growth.contains("max_wal_senders = 7"), "{growth}");
}

/// Changes apply now unless the team says otherwise, the writer's final
/// snapshot name is unique per writer, and Performance Insights is on
/// from growth (replicas or Multi-AZ) onwards.
#[test]
fn changes_apply_now_snapshots_are_unique_and_insights_follow_the_phase() {
    let read = |phase: &str, file: &str| {
        std::fs::read_to_string(repo().join(format!("out/{phase}/terraform/{file}"))).unwrap()
    };
    let variables = read("launch", "variables.tf");
    let at = variables.find("variable \"apply_immediately\"").unwrap();
    assert!(
        variables[at..].contains("default     = true"),
        "{variables}"
    );
    let postgres = read("launch", "modules/region/postgres.tf");
    // Lines as words, so the check does not depend on fmt's alignment.
    let lines = |text: &str, words: &str| {
        let want: Vec<&str> = words.split(' ').collect();
        text.lines()
            .filter(|l| l.split_whitespace().collect::<Vec<_>>() == want)
            .count()
    };
    assert_eq!(
        lines(
            &postgres,
            "apply_immediately = var.postgres.apply_immediately"
        ),
        2,
        "writer and replicas:\n{postgres}"
    );
    assert!(postgres.contains("-writer-final-${formatdate(\"YYYYMMDDhhmmss\", timestamp())}"));
    assert!(postgres.contains("ignore_changes = [final_snapshot_identifier]"));
    let redis = read("launch", "modules/region/redis.tf");
    // The phase's Redis and the queue Redis (declared in every module,
    // created where the spec names queue_redis).
    assert_eq!(
        lines(&redis, "apply_immediately = var.redis.apply_immediately"),
        2
    );
    for (phase, on) in [
        ("launch", false),
        ("growth", true),
        ("scale", true),
        ("enterprise", true),
    ] {
        let main = read(phase, "main.tf");
        // Each region's postgres and redis objects.
        let regions = lines(&main, "apply_immediately = var.apply_immediately") / 2;
        assert!(regions >= 1, "{phase}");
        assert_eq!(
            lines(&main, &format!("performance_insights = {on}")),
            regions,
            "{phase}"
        );
    }
}

/// An expression written back as HCL, to search its references.
fn text(e: &Expression) -> String {
    hcl::format::to_string(e).unwrap()
}

/// Each `var.NAME["KEY"]REST` in `text`: (NAME, KEY, REST up to the next
/// space, comma or bracket).
fn indexed_vars(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("var.") {
        rest = &rest[at + 4..];
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_end);
        if let Some(key) = after.strip_prefix("[\"") {
            let key_end = key.find('"').unwrap();
            let tail = &key[key_end + 2..];
            let tail_end = tail
                .find(|c: char| c.is_whitespace() || ",)]}".contains(c))
                .unwrap_or(tail.len());
            out.push((
                name.to_owned(),
                key[..key_end].to_owned(),
                tail[..tail_end].to_owned(),
            ));
        }
    }
    out
}

/// The spec's regions: name -> cloud region, the primary's name.
fn spec_regions(phase: &str) -> (BTreeMap<String, String>, Option<String>) {
    let spec = spec(phase);
    let mut all = BTreeMap::new();
    let mut primary = None;
    for r in spec["regions"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap().to_owned();
        if r["role"] == "primary" {
            primary = Some(name.clone());
        }
        all.insert(name, r["cloud_region"].as_str().unwrap().to_owned());
    }
    (all, primary)
}

#[test]
fn no_region_bound_id_is_referenced_from_another_regions_module() {
    let mut crossings = 0;
    for phase in PHASES {
        let (regions, _) = spec_regions(phase);
        let mods = modules(phase);
        for (module, attrs) in &mods {
            let own = indexed_vars(&text(&attrs["network"]))
                .first()
                .map(|(_, key, _)| key.clone())
                .unwrap();
            for (arg, expr) in attrs {
                let t = text(expr);
                // Per-region inputs: a module reads its own region's; of
                // another region only the VPC's CIDR block, an address
                // range that means the same everywhere, never an id.
                for (var, key, tail) in indexed_vars(&t) {
                    if key != own {
                        assert!(
                            var == "networks" && tail == ".cidr_block",
                            "{phase}: module {module}.{arg} reads var.{var}[{key:?}]{tail} of another region"
                        );
                        crossings += 1;
                    }
                }
                if let Some(at) = t.find("var.certificate_arns") {
                    assert!(
                        t[at..].contains(&format!("\"{own}\"")),
                        "{phase}: {module}.{arg}: {t}"
                    );
                }
                // Another module's outputs: only the writer's ARN (RDS
                // takes it from any region, by design) and address (DNS).
                let mut rest = t.as_str();
                while let Some(at) = rest.find("module.") {
                    rest = &rest[at + 7..];
                    let output = rest.split('.').nth(1).unwrap_or_default();
                    let output: String = output
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        [
                            "writer_arn",
                            "writer_address",
                            "redis_global_id",
                            "redis_endpoint"
                        ]
                        .contains(&output.as_str()),
                        "{phase}: {module}.{arg} reads module output {output}"
                    );
                }
            }
        }
        // Inside the module every regional resource is pinned to the
        // module's own region.
        let region_dir = repo()
            .join("out")
            .join(phase)
            .join("terraform/modules/region");
        for file in tf_files(&region_dir) {
            for block in parse(&file).blocks() {
                let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                if block.identifier() != "resource" || labels[0].starts_with("aws_iam_") {
                    continue;
                }
                if !labels[0].starts_with("aws_") {
                    continue;
                }
                let region = block
                    .body()
                    .attributes()
                    .find(|a| a.key() == "region")
                    .map(|a| text(a.expr()));
                assert_eq!(
                    region.as_deref(),
                    Some("var.aws_region"),
                    "{phase}: {}: {} {}",
                    file.display(),
                    labels[0],
                    labels[1]
                );
            }
        }
        // The root's network.tf joins regions: each resource lives in the
        // region whose network it reads, and reads no other region's ids.
        let network = repo().join("out").join(phase).join("terraform/network.tf");
        assert_eq!(network.exists(), regions.len() > 1, "{phase}");
        if !network.exists() {
            continue;
        }
        let mut routes = 0;
        for block in parse(&network).blocks() {
            let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
            let attrs: BTreeMap<&str, String> = block
                .body()
                .attributes()
                .map(|a| (a.key(), text(a.expr())))
                .collect();
            let region = attrs["region"].trim_matches('"').to_owned();
            let ids: Vec<(String, String, String)> = attrs
                .iter()
                .filter(|(k, _)| ["vpc_id", "route_table_id", "for_each"].contains(k))
                .flat_map(|(_, v)| indexed_vars(v))
                .collect();
            for (_, key, tail) in ids {
                assert_eq!(
                    regions[&key], region,
                    "{phase}: {} {} in {region} uses {key}'s {tail}",
                    labels[0], labels[1]
                );
            }
            if labels[0] == "aws_route" {
                routes += 1;
            }
        }
        assert_eq!(routes, 2 * (regions.len() - 1), "{phase}: a route each way");
    }
    assert!(crossings > 0, "enterprise's modules read the other's CIDR");
}

#[test]
fn every_secret_comes_from_one_definition() {
    for phase in PHASES {
        let (regions, primary) = spec_regions(phase);
        let dir = repo().join("out").join(phase).join("terraform");
        let mut secrets = 0;
        for file in tf_files(&dir) {
            for block in parse(&file).blocks() {
                let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                if block.identifier() != "resource" {
                    continue;
                }
                if [
                    "random_password",
                    "aws_secretsmanager_secret",
                    "aws_secretsmanager_secret_version",
                ]
                .contains(&labels[0])
                {
                    assert_eq!(
                        file,
                        dir.join("secrets.tf"),
                        "{phase}: {} {} outside the one definition",
                        labels[0],
                        labels[1]
                    );
                }
                if labels[0] == "aws_secretsmanager_secret" {
                    secrets += 1;
                    // Replicated to every secondary region, and only there.
                    let mut replicas: Vec<String> = block
                        .body()
                        .blocks()
                        .filter(|b| b.identifier() == "replica")
                        .map(|b| {
                            let region = b.body().attributes().find(|a| a.key() == "region");
                            lit(region.unwrap().expr())
                        })
                        .collect();
                    replicas.sort();
                    let mut expected: Vec<String> = regions
                        .iter()
                        .filter(|(name, _)| Some(*name) != primary.as_ref())
                        .map(|(_, cloud)| cloud.clone())
                        .collect();
                    expected.sort();
                    assert_eq!(replicas, expected, "{phase}");
                }
            }
        }
        assert_eq!(
            secrets, 1,
            "{phase}: one secret resource, for_each over them all"
        );
        for (module, attrs) in modules(phase) {
            // This region's own copy of the one set.
            assert_eq!(
                text(&attrs["secrets"]),
                format!("local.secret_arns[{}]", text(&attrs["aws_region"])),
                "{phase} {module}"
            );
            assert_eq!(
                text(&attrs["redis_auth_token"]),
                "random_password.redis_auth.result",
                "{phase} {module}"
            );
        }
        // Each region's copy is the primary's ARN with the region changed.
        let secrets_tf = std::fs::read_to_string(dir.join("secrets.tf")).unwrap();
        assert!(
            secrets_tf.contains("replace(s.arn, \":"),
            "{phase}: secret_arns derive from the one definition"
        );
        // The region module reads secrets through that input only (and
        // the writer's master password, which RDS keeps itself).
        let region = dir.join("modules/region");
        let mut reads = 0;
        for file in tf_files(&region) {
            let source = std::fs::read_to_string(&file).unwrap();
            for (at, _) in source.match_indices("valueFrom = ") {
                let value = source[at + 12..].lines().next().unwrap();
                // The list comprehension that drops unused entries.
                if value.starts_with("s.valueFrom }") {
                    continue;
                }
                assert!(
                    value.starts_with("var.secrets.")
                        || value.contains("aws_db_instance.writer[0].master_user_secret[0]"),
                    "{phase}: {}: valueFrom = {value}",
                    file.display()
                );
                reads += 1;
            }
        }
        assert!(reads >= 8, "{phase}: {reads} secret reads");
    }
}

/// The attributes of a block, written back as HCL.
fn attrs_of(block: &hcl::Block) -> BTreeMap<String, String> {
    block
        .body()
        .attributes()
        .map(|a| (a.key().to_owned(), text(a.expr())))
        .collect()
}

fn region_blocks(phase: &str, file: &str) -> Vec<hcl::Block> {
    let path = repo()
        .join("out")
        .join(phase)
        .join("terraform/modules/region")
        .join(file);
    parse(&path).blocks().cloned().collect()
}

#[test]
fn the_edge_serves_each_service_with_a_port_and_outlasts_the_websocket_ping() {
    for phase in PHASES {
        let spec = spec(phase);
        let ping_s = spec["app"]["websocket"]["ping_interval_ms"]
            .as_u64()
            .unwrap()
            / 1000;
        for (module, attrs) in modules(phase) {
            let edge = object(&attrs["edge"]);
            let idle: u64 = lit(edge["idle_timeout"]).parse().unwrap();
            assert!(
                idle > ping_s,
                "{phase} {module}: idle {idle} s, ping {ping_s} s"
            );
            assert!(
                text(edge["certificate_arn"]).contains("var.certificate_arns"),
                "{phase} {module}"
            );
            // Every service with a port reaches the edge with the health
            // path the spec gives it.
            let Expression::Array(services) = &attrs["services"] else {
                panic!("{phase}: services")
            };
            for s in services {
                let s = object(s);
                let name = lit(s["name"]);
                let expected = if name == "app" {
                    spec["app"]["health_path"].clone()
                } else {
                    spec["services"]
                        .as_array()
                        .into_iter()
                        .chain(spec["workers"].as_array())
                        .flatten()
                        .find(|x| x["name"] == name.as_str())
                        .map(|x| x["health_path"].clone())
                        .unwrap()
                };
                assert_eq!(
                    lit(s["health_path"]),
                    expected.as_str().unwrap(),
                    "{phase} {name}"
                );
            }
        }
        let edge = region_blocks(phase, "edge.tf");
        let find = |kind: &str, name: &str| {
            edge.iter()
                .find(|b| {
                    b.labels().len() == 2
                        && b.labels()[0].as_str() == kind
                        && b.labels()[1].as_str() == name
                })
                .unwrap_or_else(|| panic!("{phase}: {kind}.{name}"))
        };
        let groups = find("aws_lb_target_group", "service");
        let group = attrs_of(groups);
        assert_eq!(group["for_each"], "local.web_services");
        assert_eq!(
            group["target_type"], "\"ip\"",
            "Fargate tasks register by IP"
        );
        let nested = |b: &hcl::Block, name: &str| {
            attrs_of(b.body().blocks().find(|x| x.identifier() == name).unwrap())
        };
        assert_eq!(
            nested(groups, "health_check")["path"],
            "each.value.health_path"
        );
        let sticky = nested(groups, "stickiness");
        assert_eq!(
            (sticky["type"].as_str(), sticky["enabled"].as_str()),
            ("\"lb_cookie\"", "true")
        );
        let alb = attrs_of(find("aws_lb", "edge"));
        assert_eq!(alb["idle_timeout"], "var.edge.idle_timeout");
        assert_eq!(alb["subnets"], "var.network.public_subnet_ids");
        let https = attrs_of(find("aws_lb_listener", "https"));
        assert!(
            https["count"].contains("var.edge.certificate_arn == null"),
            "{https:?}"
        );
        assert_eq!(https["protocol"], "\"HTTPS\"");
        // PgBouncer: one internal endpoint, a listener per role.
        let proxy = attrs_of(find("aws_lb", "pg_proxy"));
        assert_eq!(
            (
                proxy["internal"].as_str(),
                proxy["load_balancer_type"].as_str()
            ),
            ("true", "\"network\"")
        );
        let listeners = attrs_of(find("aws_lb_listener", "pg_proxy"));
        assert!(
            listeners["for_each"].contains("var.pg_proxy.write_port")
                && listeners["for_each"].contains("var.pg_proxy.read_port")
        );
    }
}

/// Least privilege in the security groups: nothing but the load balancer
/// is open to a CIDR block (and the writer to the peered regions' blocks,
/// on its port), no rule opens every protocol, and the only way out to
/// any address is HTTPS.
#[test]
fn security_groups_allow_only_what_each_service_uses() {
    for phase in PHASES {
        let mut by_cidr = Vec::new();
        for file in ["security.tf", "bootstrap.tf"] {
            for block in region_blocks(phase, file) {
                let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                if block.identifier() != "resource"
                    || !labels[0].starts_with("aws_vpc_security_group_")
                {
                    continue;
                }
                let a = attrs_of(&block);
                let name = format!("{phase}: {} {}", labels[0], labels[1]);
                assert_ne!(a["ip_protocol"], "\"-1\"", "{name} opens every protocol");
                assert_eq!(a["ip_protocol"], "\"tcp\"", "{name}");
                if a.contains_key("cidr_ipv4") {
                    by_cidr.push(labels[1].to_owned());
                    if a["cidr_ipv4"] == "\"0.0.0.0/0\"" {
                        assert!(labels[0].ends_with("egress_rule"), "{name}");
                        assert_eq!(
                            (a["from_port"].as_str(), a["to_port"].as_str()),
                            ("443", "443"),
                            "{name}"
                        );
                    }
                } else {
                    assert!(
                        a.contains_key("referenced_security_group_id"),
                        "{name}: from where?"
                    );
                }
            }
        }
        by_cidr.sort();
        assert_eq!(
            by_cidr,
            [
                "edge_from_allowed",
                "https_out",
                "pgbouncer_to_writer",
                "postgres_from_peers",
                "redis_from_peers",
                "service_to_primary_redis"
            ],
            "{phase}"
        );
        // A group per service, and the rules toward PgBouncer and Redis
        // follow each service's `uses`.
        let security = region_blocks(phase, "security.tf");
        let for_each = |name: &str| {
            security
                .iter()
                .find(|b| b.labels().len() == 2 && b.labels()[1].as_str() == name)
                .map(|b| attrs_of(b)["for_each"].clone())
                .unwrap_or_else(|| panic!("{phase}: {name}"))
        };
        assert!(for_each("service").contains("var.services"));
        for (rule, set) in [
            ("service_to_pg_proxy", "local.postgres_services"),
            ("pg_proxy_from_service", "local.postgres_services"),
            ("service_to_redis", "local.redis_services"),
            ("redis_from_service", "local.redis_services"),
            ("service_from_edge", "local.web_services"),
        ] {
            assert_eq!(for_each(rule), set, "{phase}: {rule}");
        }
        let services = repo()
            .join("out")
            .join(phase)
            .join("terraform/modules/region/services.tf");
        let services = std::fs::read_to_string(services).unwrap();
        assert!(services.contains("security_groups  = [aws_security_group.service[each.key].id]"));
        // And the locals select by `uses`.
        let security_text = std::fs::read_to_string(
            repo()
                .join("out")
                .join(phase)
                .join("terraform/modules/region/security.tf"),
        )
        .unwrap();
        for line in [
            "postgres_services = { for s in var.services : s.name => s if s.uses_postgres }",
            "redis_services    = { for s in var.services : s.name => s if s.uses_redis }",
        ] {
            assert!(security_text.contains(line), "{phase}: {line}");
        }
    }
}

/// Identifier-ish tokens of HCL code with what precedes each: comments
/// dropped, `a.b.c` kept whole.
fn references(code: &str) -> Vec<(char, String)> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        // A moved block's `from` names what no longer exists.
        if line.starts_with('#') || line.starts_with("//") || line.starts_with("from ") {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_alphabetic() || c == '_' {
                let before = if i == 0 { ' ' } else { chars[i - 1] };
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_.-".contains(chars[i]))
                {
                    i += 1;
                }
                let token: String = chars[start..i].iter().collect();
                out.push((before, token.trim_end_matches('.').to_owned()));
            } else {
                i += 1;
            }
        }
    }
    out
}

/// What a module declares: variables, locals, resources and modules.
fn declared(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_none_or(|e| e != "tf") {
            continue;
        }
        for block in parse(&file).blocks() {
            let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
            match block.identifier() {
                "variable" => {
                    names.insert(format!("var.{}", labels[0]));
                }
                "module" => {
                    names.insert(format!("module.{}", labels[0]));
                }
                "resource" => {
                    names.insert(format!("{}.{}", labels[0], labels[1]));
                }
                "locals" => {
                    for a in block.body().attributes() {
                        names.insert(format!("local.{}", a.key()));
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// Every `var.`, `local.`, `module.` and resource reference of a module
/// names something the module declares: what `terraform validate` would
/// catch first, checked without the provider.
/// References in the .tf files of `dir` that name nothing the module
/// declares; and how many were checked.
fn unresolved(dir: &Path) -> (Vec<String>, usize) {
    let names = declared(dir);
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_none_or(|e| e != "tf") {
            continue;
        }
        let code = std::fs::read_to_string(&file).unwrap();
        for (before, token) in references(&code) {
            // Inside a dotted path (module.x.aws_y.z in a moved block) or
            // a string such as an IAM policy ARN.
            if before == '.' || before == ':' || before == '/' {
                continue;
            }
            let parts: Vec<&str> = token.split('.').collect();
            let wanted = match parts.as_slice() {
                ["var" | "local" | "module", name, ..] => format!("{}.{name}", parts[0]),
                [kind, name, ..] if kind.starts_with("aws_") || kind.starts_with("random_") => {
                    format!("{kind}.{name}")
                }
                _ => continue,
            };
            if !names.contains(&wanted) {
                problems.push(format!(
                    "{}: {token} names nothing declared ({wanted})",
                    file.display()
                ));
            }
            checked += 1;
        }
    }
    (problems, checked)
}

/// Every `var.`, `local.`, `module.` and resource reference of a module
/// names something the module declares: what `terraform validate` would
/// catch first, checked without the provider.
#[test]
fn every_reference_resolves_in_its_module() {
    for phase in PHASES {
        let root = repo().join("out").join(phase).join("terraform");
        for dir in [root.clone(), root.join("modules/region")] {
            let (problems, checked) = unresolved(&dir);
            assert!(problems.is_empty(), "{phase}: {problems:#?}");
            assert!(
                checked > 20,
                "{phase}: {}: {checked} references",
                dir.display()
            );
        }
    }
    // The check is live: a module that names an undeclared local.
    let sandbox = Sandbox::new("tf-references");
    std::fs::write(
        sandbox.path("main.tf"),
        "locals {\n  a = 1\n}\n\noutput \"x\" {\n  value = local.b + var.c + aws_lb.d.arn\n}\n",
    )
    .unwrap();
    let (problems, _) = unresolved(&sandbox.root);
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

/// With `targets.terraform.redis_global_datastore`, the regions share one
/// Redis: the primary region's replication group leads an ElastiCache
/// global datastore, the secondary region's joins it (taking its shape
/// from it), services there write to the primary region's Redis over the
/// peering and read their own copy, and no burstable node is chosen.
#[test]
fn a_global_datastore_joins_the_regions_redis() {
    let sandbox = testkit::Sandbox::shipped("global-datastore");
    let spec = std::fs::read_to_string(sandbox.path("phases/enterprise.toml")).unwrap();
    let start = spec.find("[regions.redis]").unwrap();
    let end = spec[start..].find("\n\n").map_or(spec.len(), |e| start + e);
    let edited = format!(
        "{}{}\n[targets.terraform]\nredis_global_datastore = true\n",
        &spec[..start],
        &spec[end..]
    );
    std::fs::write(sandbox.path("phases/enterprise.toml"), edited).unwrap();
    let run = sandbox.run(&["build", "enterprise"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = sandbox.path("out/enterprise/terraform");

    let mut problems = Vec::new();
    let checked = schema_problems(&provider_schema(), &dir, &mut problems);
    assert!(problems.is_empty() && checked > 50, "{problems:#?}");
    for module_dir in [dir.clone(), dir.join("modules/region")] {
        let (problems, _) = unresolved(&module_dir);
        assert!(problems.is_empty(), "{problems:#?}");
    }
    if terraform().is_some() {
        let out = tf(&dir, &["fmt", "-check", "-diff", "-recursive", "-no-color"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let main = parse(&dir.join("main.tf"));
    let redis_of = |module: &str| -> BTreeMap<String, String> {
        let block = main
            .blocks()
            .find(|b| b.identifier() == "module" && b.labels()[0].as_str() == module)
            .unwrap();
        let redis = block
            .body()
            .attributes()
            .find(|a| a.key() == "redis")
            .unwrap();
        object(redis.expr())
            .into_iter()
            .map(|(k, v)| (k, text(v)))
            .collect()
    };
    let primary = redis_of("primary");
    let secondary = redis_of("region_us_east");
    assert_eq!(primary["global_datastore"], "true");
    assert_eq!(
        (
            primary["global_id"].as_str(),
            primary["writer_endpoint"].as_str()
        ),
        ("null", "null")
    );
    assert_eq!(secondary["global_id"], "module.primary.redis_global_id");
    assert_eq!(
        secondary["writer_endpoint"],
        "module.primary.redis_endpoint"
    );
    // The copy has the primary's shape: the phase's Redis, not us-east's.
    assert_eq!(primary["num_node_groups"], secondary["num_node_groups"]);
    let variables = std::fs::read_to_string(dir.join("variables.tf")).unwrap();
    assert!(
        !variables.contains("\"cache.t"),
        "a burstable node for a global datastore:\n{variables}"
    );

    let redis = std::fs::read_to_string(dir.join("modules/region/redis.tf")).unwrap();
    assert!(redis.contains("resource \"aws_elasticache_global_replication_group\" \"this\""));
    assert!(redis.contains(
        "num_node_groups            = local.global_member ? null : var.redis.num_node_groups"
    ));
    let services = std::fs::read_to_string(dir.join("modules/region/services.tf")).unwrap();
    assert!(services.contains("REDIS_READ_CLUSTER_NODES"));
    assert!(services.contains(
        "redis_writes = local.global_member ? var.redis.writer_endpoint : local.redis_endpoint"
    ));
    let readme = std::fs::read_to_string(sandbox.path("out/enterprise/README.md")).unwrap();
    assert!(readme.contains("global datastore"), "{readme}");
}

/// AWS takes only `a-zA-Z0-9 ._-:/()#,@[]+=&;{}!$*` in a security group's
/// and a rule's description (EC2 API, CreateSecurityGroup); a rule that
/// references a group takes no `&` either.
#[test]
fn security_group_descriptions_use_only_what_aws_accepts() {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=;{}!$*".contains(c);
    let mut seen = 0;
    for phase in PHASES {
        for file in tf_files(&repo().join("out").join(phase).join("terraform")) {
            for block in parse(&file).blocks() {
                let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                if block.identifier() != "resource"
                    || !(labels[0] == "aws_security_group"
                        || labels[0].starts_with("aws_vpc_security_group_"))
                {
                    continue;
                }
                let Some(description) =
                    block.body().attributes().find(|a| a.key() == "description")
                else {
                    continue;
                };
                // The literal parts: interpolations are service names.
                let text = text(description.expr());
                let mut literal = String::new();
                let mut depth = 0;
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek() == Some(&'{') {
                        depth += 1;
                        chars.next();
                    } else if c == '}' && depth > 0 {
                        depth -= 1;
                    } else if depth == 0 {
                        literal.push(c);
                    }
                }
                // Quoted strings of the expression (a conditional has two).
                for (i, part) in literal.split('"').enumerate() {
                    if i % 2 == 1 {
                        assert!(
                            part.chars().all(allowed),
                            "{phase}: {} {}.{}: {part:?}",
                            file.display(),
                            labels[0],
                            labels[1]
                        );
                        seen += 1;
                    }
                }
            }
        }
    }
    assert!(seen > 50, "{seen} descriptions");
}
