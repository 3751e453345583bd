//! No phase change replaces what holds data. Each pair of consecutive
//! shipped phases is compared as rendered: every stateful Terraform
//! resource keeps its address and every argument that would make AWS
//! replace it, and every stateful Compose service keeps its name and its
//! volume. A replacement passes only when the transition plan lists it as
//! a step of its own.

use hcl::{Body, Expression};
use std::collections::BTreeMap;
use std::path::Path;
use testkit::{Sandbox, repo, run_in};

/// Arguments whose change makes the AWS provider replace a resource (its
/// schema marks them ForceNew or RequiresReplace), for the resources that
/// hold data or that AWS keys a deployment on, with where that is stated:
/// `internal/service/<dir>/<file>.go` in hashicorp/terraform-provider-aws
/// (5.x and 6.x) and the resource's page in the provider docs.
const FORCES_NEW: &[(&str, &[&str], &str)] = &[
    (
        "aws_db_instance",
        &[
            "engine",
            "username",
            "db_name",
            "availability_zone",
            "storage_encrypted",
            "kms_key_id",
            "character_set_name",
            "nchar_character_set_name",
            "timezone",
            "snapshot_identifier",
            "custom_iam_instance_profile",
            "backup_target",
        ],
        "rds/instance.go; docs r/db_instance (identifier renames in place since 5.0.0, #31232)",
    ),
    (
        "aws_elasticache_replication_group",
        &[
            "replication_group_id",
            "engine",
            "at_rest_encryption_enabled",
            "kms_key_id",
            "port",
            "subnet_group_name",
            "snapshot_arns",
            "snapshot_name",
            "global_replication_group_id",
            "data_tiering_enabled",
            "network_type",
        ],
        "elasticache/replication_group.go; docs r/elasticache_replication_group (cluster_mode, num_node_groups, replicas_per_node_group, parameter_group_name change in place)",
    ),
    (
        "aws_elasticache_parameter_group",
        &["name", "family", "description"],
        "elasticache/parameter_group.go; docs r/elasticache_parameter_group",
    ),
    (
        "aws_elasticache_subnet_group",
        &["name"],
        "elasticache/subnet_group.go; docs r/elasticache_subnet_group",
    ),
    (
        "aws_db_parameter_group",
        &["name", "name_prefix", "family", "description"],
        "rds/parameter_group.go; docs r/db_parameter_group (create_before_destroy with name_prefix, #41048)",
    ),
    (
        "aws_db_subnet_group",
        &["name", "name_prefix"],
        "rds/subnet_group.go; docs r/db_subnet_group",
    ),
    (
        "aws_security_group",
        &["name", "name_prefix", "description", "vpc_id"],
        "ec2/vpc_security_group.go; docs r/security_group",
    ),
    (
        "aws_secretsmanager_secret",
        &["name", "name_prefix"],
        "secretsmanager/secret.go; docs r/secretsmanager_secret",
    ),
    (
        "aws_secretsmanager_secret_version",
        &["secret_id", "secret_string", "secret_binary"],
        "secretsmanager/secret_version.go; docs r/secretsmanager_secret_version",
    ),
    (
        "random_password",
        &[
            "length",
            "special",
            "upper",
            "lower",
            "numeric",
            "min_lower",
            "min_upper",
            "min_numeric",
            "min_special",
            "override_special",
            "keepers",
        ],
        "hashicorp/terraform-provider-random internal/provider/resource_password.go (RequiresReplace on every input)",
    ),
    (
        "aws_kms_key",
        &[
            "key_usage",
            "customer_master_key_spec",
            "multi_region",
            "custom_key_store_id",
            "xks_key_id",
        ],
        "kms/key.go; docs r/kms_key",
    ),
    (
        "aws_ecs_cluster",
        &["name"],
        "ecs/cluster.go; docs r/ecs_cluster",
    ),
    (
        "aws_ecs_service",
        &[
            "name",
            "cluster",
            "launch_type",
            "iam_role",
            "scheduling_strategy",
        ],
        "ecs/service.go; docs r/ecs_service",
    ),
];

/// Resources that hold data: never replaced unless the plan says so.
/// Others in the table may be replaced only where the template creates the
/// new one before the old one goes (`create_before_destroy`).
const HOLDS_DATA: &[&str] = &[
    "aws_db_instance",
    "aws_elasticache_replication_group",
    "aws_secretsmanager_secret",
    "aws_secretsmanager_secret_version",
    "random_password",
    "aws_kms_key",
];

fn parse(path: &Path) -> Body {
    hcl::parse(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One rendering of the Terraform target: the module calls of the root,
/// and the region module's resources and locals.
struct Rendering {
    modules: BTreeMap<String, BTreeMap<String, Expression>>,
    resources: Vec<Resource>,
    locals: BTreeMap<String, Expression>,
}

/// A resource block: type, name, body.
type Resource = (String, String, Body);

/// The resources and locals of the .tf files directly in `dir`.
fn resources_in(dir: &Path) -> (Vec<Resource>, BTreeMap<String, Expression>) {
    let mut resources = Vec::new();
    let mut locals = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    for file in files {
        for block in parse(&file).blocks() {
            match block.identifier() {
                "resource" => resources.push((
                    block.labels()[0].as_str().to_owned(),
                    block.labels()[1].as_str().to_owned(),
                    block.body().clone(),
                )),
                "locals" => {
                    for a in block.body().attributes() {
                        locals.insert(a.key().to_owned(), a.expr().clone());
                    }
                }
                _ => {}
            }
        }
    }
    (resources, locals)
}

fn rendering(dir: &Path) -> Rendering {
    let mut modules = BTreeMap::new();
    for block in parse(&dir.join("main.tf")).blocks() {
        if block.identifier() == "module" {
            let args = block
                .body()
                .attributes()
                .map(|a| (a.key().to_owned(), a.expr().clone()))
                .collect();
            modules.insert(block.labels()[0].as_str().to_owned(), args);
        }
    }
    let (resources, locals) = resources_in(&dir.join("modules/region"));
    Rendering {
        modules,
        resources,
        locals,
    }
}

fn text(e: &Expression) -> String {
    hcl::format::to_string(e).unwrap_or_else(|_| format!("{e:?}"))
}

/// The expression as text, with the module's inputs (`var.x.y`) and locals
/// put in, so two phases compare by what they pass in, not by names.
fn resolve(
    e: &Expression,
    args: &BTreeMap<String, Expression>,
    r: &Rendering,
    depth: u8,
) -> String {
    let source = text(e);
    if depth > 8 {
        return source;
    }
    let mut out = String::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find(['v', 'l']) {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        let boundary = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        let path_len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(tail.len());
        let path: Vec<&str> = tail[..path_len].split('.').collect();
        let resolved = match (boundary, path.as_slice()) {
            (true, ["var", name, fields @ ..]) => Some(match args.get(*name) {
                Some(arg) => field(arg, fields),
                None => format!("<default of var.{name}>"),
            }),
            (true, ["local", name, ..]) => r
                .locals
                .get(*name)
                .map(|l| format!("({})", resolve(l, args, r, depth + 1))),
            _ => None,
        };
        match resolved {
            Some(value) => {
                out.push_str(&value);
                rest = &tail[path_len..];
            }
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A field of an object the root passes in (whose values name the root's
/// own variables, which both phases share, so they stay as they are).
fn field(e: &Expression, fields: &[&str]) -> String {
    match (e, fields) {
        (_, []) => text(e),
        (Expression::Object(object), [first, more @ ..]) => object
            .iter()
            .find(|(k, _)| match k {
                hcl::ObjectKey::Identifier(i) => i.as_str() == *first,
                hcl::ObjectKey::Expression(e) => text(e).trim_matches('"') == *first,
                _ => false,
            })
            .map_or_else(|| format!("<no {first}>"), |(_, v)| field(v, more)),
        _ => format!("{}.{}", text(e), fields.join(".")),
    }
}

/// Every (address, argument, value) that decides whether AWS replaces a
/// resource of the table, and whether the template creates before it
/// destroys.
fn identities(dir: &Path) -> BTreeMap<String, (BTreeMap<String, String>, bool)> {
    let r = rendering(dir);
    let mut out = BTreeMap::new();
    for (module, args) in &r.modules {
        for (kind, name, body) in &r.resources {
            let Some((_, forces, _)) = FORCES_NEW.iter().find(|(k, _, _)| k == kind) else {
                continue;
            };
            let mut values = BTreeMap::new();
            for a in body.attributes() {
                if forces.contains(&a.key()) {
                    values.insert(a.key().to_owned(), resolve(a.expr(), args, &r, 0));
                }
            }
            let before = body.blocks().any(|b| {
                b.identifier() == "lifecycle"
                    && b.body()
                        .attributes()
                        .any(|a| a.key() == "create_before_destroy" && text(a.expr()) == "true")
            });
            out.insert(format!("module.{module}.{kind}.{name}"), (values, before));
        }
    }
    // The root's own resources (the secrets, the peering), which read the
    // root's variables and locals only.
    let (resources, locals) = resources_in(dir);
    let root = Rendering {
        modules: BTreeMap::new(),
        resources,
        locals,
    };
    let none = BTreeMap::new();
    for (kind, name, body) in &root.resources {
        let Some((_, forces, _)) = FORCES_NEW.iter().find(|(k, _, _)| k == kind) else {
            continue;
        };
        let values = body
            .attributes()
            .filter(|a| forces.contains(&a.key()))
            .map(|a| (a.key().to_owned(), resolve(a.expr(), &none, &root, 0)))
            .collect();
        out.insert(format!("{kind}.{name}"), (values, false));
    }
    out
}

/// What a phase change would replace in the Terraform target, except what
/// the plan lists as a step of its own.
fn terraform_replacements(a: &Path, b: &Path, steps: &[String]) -> Vec<String> {
    let (before, after) = (identities(a), identities(b));
    let listed = |address: &str| steps.iter().any(|s| s.contains(address));
    let mut problems = Vec::new();
    for (address, (values, _)) in &before {
        let kind = if address.starts_with("module.") {
            address.split('.').nth(2)
        } else {
            address.split('.').next()
        }
        .unwrap_or("");
        let Some((new_values, create_first)) = after.get(address) else {
            if HOLDS_DATA.contains(&kind) && !listed(address) {
                problems.push(format!("{address} is gone"));
            }
            continue;
        };
        for (arg, value) in values {
            let new = new_values.get(arg).map_or("<unset>", String::as_str);
            if new != value {
                let harmless = *create_first && !HOLDS_DATA.contains(&kind);
                if !harmless && !listed(address) {
                    problems.push(format!("{address}: {arg} {value} -> {new} replaces it"));
                }
            }
        }
    }
    problems
}

/// Stateful Compose services (those with a named volume): name -> (volume
/// and mount, image).
fn stateful_services(compose: &Path) -> (String, BTreeMap<String, (String, String)>) {
    let doc = testkit::yaml_to_json(&std::fs::read_to_string(compose).unwrap());
    let mut out = BTreeMap::new();
    for (name, service) in doc["services"].as_object().unwrap() {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let spec = volume.as_str().unwrap();
            if !spec.starts_with('.') {
                let image = service["image"].as_str().unwrap_or("").to_owned();
                out.insert(name.clone(), (spec.to_owned(), image));
            }
        }
    }
    (doc["name"].as_str().unwrap_or("").to_owned(), out)
}

fn compose_replacements(a: &Path, b: &Path, steps: &[String]) -> Vec<String> {
    let (project_a, before) = stateful_services(a);
    let (project_b, after) = stateful_services(b);
    let mut problems = Vec::new();
    if project_a != project_b {
        problems.push(format!(
            "the Compose project {project_a} becomes {project_b}"
        ));
    }
    for (name, (volume, image)) in &before {
        match after.get(name) {
            None if !steps.iter().any(|s| s.contains(name.as_str())) => problems.push(format!(
                "{name} (volume {volume}) is gone and no step retires it"
            )),
            None => {}
            Some((v, i)) => {
                if v != volume {
                    problems.push(format!("{name}: volume {volume} becomes {v}"));
                }
                if i != image && !steps.iter().any(|s| s.starts_with("Upgrade")) {
                    problems.push(format!(
                        "{name}: image {image} becomes {i} without an upgrade step"
                    ));
                }
            }
        }
    }
    problems
}

/// The transition plan's step titles and reasons, as `diff` reports them.
fn steps(from: &str, to: &str) -> Vec<String> {
    let run = run_in(&repo(), &["--format", "json", "diff", from, to], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    doc["comparisons"][0]["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["title"].as_str().unwrap(),
                s["why"].as_str().unwrap()
            )
        })
        .collect()
}

const PHASES: [&str; 4] = ["launch", "growth", "scale", "enterprise"];

#[test]
fn no_phase_change_replaces_stored_data() {
    let out = repo().join("out");
    let mut compared = 0;
    for pair in PHASES.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let steps = steps(a, b);
        let mut problems = terraform_replacements(
            &out.join(a).join("terraform"),
            &out.join(b).join("terraform"),
            &steps,
        );
        problems.extend(compose_replacements(
            &out.join(a).join("compose/docker-compose.yml"),
            &out.join(b).join("compose/docker-compose.yml"),
            &steps,
        ));
        assert!(problems.is_empty(), "{a} -> {b}:\n{}", problems.join("\n"));
        compared += identities(&out.join(a).join("terraform")).len();
    }
    assert!(compared > 60, "only {compared} resources compared");
}

/// The check sees a renamed database, a moved module, a lost volume.
#[test]
fn the_check_sees_what_would_be_replaced() {
    let sandbox = Sandbox::new("replacement");
    for phase in ["launch", "growth"] {
        let from = repo().join("out").join(phase);
        for file in testkit::files_under(&from) {
            let rel = file.strip_prefix(&from).unwrap();
            let to = sandbox.path(phase).join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap();
        }
    }
    sandbox.edit(
        "growth/terraform/modules/region/postgres.tf",
        &[(
            "  username                    = \"postgres\"",
            "  username                    = \"admin\"",
        )],
    );
    sandbox.edit(
        "growth/terraform/secrets.tf",
        &[("  length  = 48", "  length  = 64")],
    );
    sandbox.edit(
        "growth/compose/docker-compose.yml",
        &[("- \"redis-1-data:/data\"", "- \"redis-one-data:/data\"")],
    );
    let tf = terraform_replacements(
        &sandbox.path("launch/terraform"),
        &sandbox.path("growth/terraform"),
        &[],
    );
    assert!(
        tf.iter()
            .any(|p| p.contains("aws_db_instance.writer: username")),
        "{tf:?}"
    );
    assert!(
        tf.iter()
            .any(|p| p.contains("random_password.redis_auth: length")),
        "{tf:?}"
    );
    let compose = compose_replacements(
        &sandbox.path("launch/compose/docker-compose.yml"),
        &sandbox.path("growth/compose/docker-compose.yml"),
        &[],
    );
    assert!(
        compose.iter().any(|p| p.contains("redis-1: volume")),
        "{compose:?}"
    );
    // A phase-named resource is what this test exists to catch.
    sandbox.edit(
        "growth/terraform/main.tf",
        &[(
            "  name       = \"sikka\"",
            "  name       = \"sikka-growth\"",
        )],
    );
    let tf = terraform_replacements(
        &sandbox.path("launch/terraform"),
        &sandbox.path("growth/terraform"),
        &[],
    );
    assert!(
        tf.iter()
            .any(|p| p.contains("aws_elasticache_replication_group.this: replication_group_id")),
        "{tf:?}"
    );
}
