//! Rendering: the topology of a phase through minijinja templates into
//! `Artifacts`.
//!
//! Escaping is chosen by the output's syntax, from the template's name, and
//! applied by the formatter to every `{{ value }}`: a spec value is quoted or
//! checked for the file it lands in, so it can never add a line or a
//! directive. Keys and comments go through the `key` and `comment` filters,
//! which check their input and are the only source of unescaped text.

use crate::artifacts::Artifacts;
use crate::spec::types::RegionRole;
use crate::templates as t;
use crate::topology::{self, PostgresNode, RedisLayout, RedisNode, Target, Topology};
use crate::validate::ValidPhase;
use anyhow::Context;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value, ValueKind};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, context,
};
use serde::Serialize;
use std::path::Path;

/// The syntax of a generated file, which decides how values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    PgConf,
    Hba,
    Ini,
    RedisConf,
    Yaml,
    Js,
    Hcl,
    Shell,
    Markdown,
    Plain,
}

impl Syntax {
    pub fn for_template(name: &str) -> Syntax {
        match name {
            t::PG_HBA_CONF => Syntax::Hba,
            n if n.starts_with("postgres/") && n.ends_with(".conf") => Syntax::PgConf,
            n if n.starts_with("redis/") && n.ends_with(".conf") => Syntax::RedisConf,
            n if n.ends_with(".ini") => Syntax::Ini,
            n if n.ends_with(".yml") || n.ends_with(".yaml") => Syntax::Yaml,
            n if n.ends_with(".sh") => Syntax::Shell,
            n if n.ends_with(".js") => Syntax::Js,
            n if n.ends_with(".tf") || n.ends_with(".hcl") => Syntax::Hcl,
            n if n.ends_with(".md") => Syntax::Markdown,
            _ => Syntax::Plain,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Syntax::PgConf => "pgconf",
            Syntax::Hba => "hba",
            Syntax::Ini => "ini",
            Syntax::RedisConf => "redisconf",
            Syntax::Yaml => "yaml",
            Syntax::Shell => "shell",
            Syntax::Js => "js",
            Syntax::Hcl => "hcl",
            Syntax::Markdown => "markdown",
            Syntax::Plain => "plain",
        }
    }

    fn from_name(name: &str) -> Syntax {
        match name {
            "pgconf" => Syntax::PgConf,
            "hba" => Syntax::Hba,
            "ini" => Syntax::Ini,
            "redisconf" => Syntax::RedisConf,
            "yaml" => Syntax::Yaml,
            "shell" => Syntax::Shell,
            "js" => Syntax::Js,
            "hcl" => Syntax::Hcl,
            "markdown" => Syntax::Markdown,
            _ => Syntax::Plain,
        }
    }
}

fn refuse(syntax: Syntax, what: &str, text: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "{what} {text:?} cannot be written safely into a {} file",
            syntax.name()
        ),
    )
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn all_in(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Escapes one value for a syntax. Public for tests.
pub fn escape(syntax: Syntax, value: &Value) -> Result<String, Error> {
    let kind = value.kind();
    if matches!(kind, ValueKind::Undefined | ValueKind::None) {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "an empty value would reach a generated file",
        ));
    }
    // JSON is valid YAML and JavaScript: strings come out quoted and escaped.
    if matches!(syntax, Syntax::Yaml | Syntax::Js) {
        return serde_json::to_string(value)
            .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()));
    }
    // A JSON value is an HCL value too, once template sequences are
    // escaped: "${" and "%{" would otherwise interpolate.
    if syntax == Syntax::Hcl {
        if kind == ValueKind::Seq {
            // terraform fmt writes lists with a space after each comma.
            let items: Result<Vec<String>, Error> = value
                .try_iter()?
                .map(|item| escape(Syntax::Hcl, &item))
                .collect();
            return Ok(format!("[{}]", items?.join(", ")));
        }
        let json = serde_json::to_string(value)
            .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
        return Ok(json.replace("${", "$${").replace("%{", "%%{"));
    }
    if kind == ValueKind::Bool {
        let b = value.is_true();
        return Ok(match syntax {
            Syntax::PgConf => {
                if b {
                    "on"
                } else {
                    "off"
                }
            }
            Syntax::RedisConf => {
                if b {
                    "yes"
                } else {
                    "no"
                }
            }
            Syntax::Ini => {
                if b {
                    "1"
                } else {
                    "0"
                }
            }
            _ => {
                if b {
                    "true"
                } else {
                    "false"
                }
            }
        }
        .to_owned());
    }
    if kind == ValueKind::Number {
        return Ok(value.to_string());
    }
    let Some(s) = value.as_str() else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("a {kind} cannot be written into a config value"),
        ));
    };
    if has_control(s) {
        return Err(refuse(
            syntax,
            "a value with a line break or control character",
            s,
        ));
    }
    match syntax {
        Syntax::PgConf => Ok(format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))),
        Syntax::Hba => all_in(s, "_.:/-")
            .then(|| s.to_owned())
            .ok_or_else(|| refuse(syntax, "the token", s)),
        Syntax::Ini => all_in(s, "_.:/,@*=-")
            .then(|| s.to_owned())
            .ok_or_else(|| refuse(syntax, "the value", s)),
        Syntax::RedisConf => Ok(if all_in(s, "_.:/@-") {
            s.to_owned()
        } else {
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        }),
        Syntax::Shell => Ok(if all_in(s, "_.:/@=,+-") {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }),
        Syntax::Markdown => Ok(s
            .replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('>', "&gt;")),
        Syntax::Plain | Syntax::Yaml | Syntax::Js | Syntax::Hcl => Ok(s.to_owned()),
    }
}

fn formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_safe() {
        return out.write_str(&value.to_string()).map_err(Error::from);
    }
    let syntax = match state.auto_escape() {
        AutoEscape::Custom(name) => Syntax::from_name(name),
        _ => Syntax::Plain,
    };
    out.write_str(&escape(syntax, value)?).map_err(Error::from)
}

/// `{{ name|key }}`: a key, service name or directive word, which must be a
/// plain word; passes through unquoted.
fn key_filter(value: &Value) -> Result<Value, Error> {
    let s = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    if all_in(&s, "_.-") {
        Ok(Value::from_safe_string(s))
    } else {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} is not a plain word and cannot be a key"),
        ))
    }
}

/// `{{ name|hcl_label }}`: a block label such as a module name, quoted.
fn hcl_label_filter(value: &Value) -> Result<Value, Error> {
    let s = value.as_str().unwrap_or_default();
    if all_in(s, "_-") && !s.starts_with(|c: char| c.is_ascii_digit()) {
        Ok(Value::from_safe_string(format!("\"{s}\"")))
    } else {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} cannot be an HCL label"),
        ))
    }
}

/// `{{ x|hcl_or_null }}`: an optional number or string, `null` when absent.
fn hcl_or_null_filter(value: &Value) -> Result<Value, Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(Value::from_safe_string("null".to_owned()));
    }
    escape(Syntax::Hcl, value).map(Value::from_safe_string)
}

/// `{{ text|comment }}`: text inside a comment, which only needs to stay on
/// its line.
fn comment_filter(value: &Value) -> Result<Value, Error> {
    let s = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    if has_control(&s) {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} would break out of a comment"),
        ))
    } else {
        Ok(Value::from_safe_string(s))
    }
}

/// `{{ header("#") }}`: the generated-file notice, from the `generated`
/// context every render gets.
fn header_fn(state: &State, prefix: &str) -> Result<Value, Error> {
    let generated = state
        .lookup("generated")
        .ok_or_else(|| Error::new(ErrorKind::UndefinedError, "no generated context"))?;
    let field = |name: &str| -> Result<String, Error> {
        let v = generated.get_attr(name)?;
        let s = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        if has_control(&s) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "header text with a line break",
            ));
        }
        Ok(s)
    };
    Ok(Value::from_safe_string(format!(
        "{prefix} Generated by scaleplan from {} ({}). Do not edit:\n{prefix} change the spec and run `scaleplan build`. Phase {}: {}.",
        field("file")?,
        field("chain")?,
        field("phase")?,
        field("title")?,
    )))
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    pub fn new(overrides: Option<&Path>) -> anyhow::Result<Renderer> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()?,
        );
        env.set_debug(true);
        env.set_auto_escape_callback(|name| {
            AutoEscape::Custom(Syntax::for_template(name).name().into())
        });
        env.set_formatter(formatter);
        env.add_filter("key", key_filter);
        env.add_filter("comment", comment_filter);
        env.add_filter("hcl_label", hcl_label_filter);
        env.add_filter("hcl_or_null", hcl_or_null_filter);
        env.add_function("header", header_fn);
        env.add_function("fail", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        for (name, source) in t::sources(overrides)? {
            env.add_template_owned(name, source)
                .with_context(|| format!("template {name} does not parse"))?;
        }
        Ok(Renderer { env })
    }

    fn render<S: Serialize>(
        &self,
        name: &str,
        generated: &Generated,
        ctx: S,
    ) -> anyhow::Result<String> {
        let template = self.env.get_template(name)?;
        let ctx =
            context! { generated => Value::from(Serde(generated)), ..Value::from(Serde(&ctx)) };
        template
            .render(ctx)
            .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}"))
    }

    /// Every file of a phase, keyed by its path under out/<phase>/.
    pub fn render_phase(&self, phase: &ValidPhase) -> anyhow::Result<Artifacts> {
        let spec = &phase.spec;
        let mut files = Artifacts::default();
        if spec.targets.compose.enabled {
            self.render_target(phase, Layout::Compose, &mut files)?;
        }
        if spec.targets.local.enabled {
            self.render_target(
                phase,
                Layout::Local {
                    base_port: spec.targets.local.base_port,
                },
                &mut files,
            )?;
        }
        if spec.targets.terraform.enabled {
            self.render_terraform(phase, &mut files)
                .with_context(|| format!("phase {}, terraform target", spec.name))?;
        }
        self.render_docs(phase, &mut files)
            .with_context(|| format!("phase {}, summary and load test", spec.name))?;
        Ok(files)
    }

    /// The files of one target, keyed by their path under out/<phase>/.
    pub fn render_target(
        &self,
        phase: &ValidPhase,
        layout: Layout,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let spec = &phase.spec;
        let generated = generated(phase);
        let topo = topology::plan(spec, layout.target());
        let secondary: Vec<&str> = spec
            .regions
            .iter()
            .filter(|r| r.role == RegionRole::Secondary)
            .map(|r| r.name.as_str())
            .collect();
        self.render_nodes(&topo, layout, &generated, files)
            .and_then(|()| match layout {
                Layout::Compose => self.render_compose_only(&topo, &secondary, &generated, files),
                Layout::Local { .. } => Ok(()),
            })
            .with_context(|| format!("phase {}, {} target", spec.name, layout.dir()))
    }

    /// out/<phase>/terraform: the root module and the region module.
    fn render_terraform(&self, phase: &ValidPhase, files: &mut Artifacts) -> anyhow::Result<()> {
        let spec = &phase.spec;
        let g = generated(phase);
        let topo = topology::plan(spec, Target::Compose);
        let regions = crate::terraform::regions(spec);
        let primary = regions.iter().find(|r| r.primary).unwrap_or(&regions[0]);
        let size = |cpu: f64, memory: u32| crate::terraform::fargate(cpu, memory);
        let mut services = vec![TfService {
            name: topo.app.name.clone(),
            image: topo.app.image.clone(),
            replicas: topo.app.replicas,
            cpu: size(topo.app.resources.cpu, topo.app.resources.memory_mb).0,
            memory: size(topo.app.resources.cpu, topo.app.resources.memory_mb).1,
            port: Some(topo.app.port),
            uses_postgres: true,
            uses_redis: true,
        }];
        services.extend(
            topo.services
                .iter()
                .chain(topo.workers.iter())
                .map(|s| TfService {
                    name: s.name.clone(),
                    image: s.image.clone(),
                    replicas: s.replicas,
                    cpu: size(s.resources.cpu, s.resources.memory_mb).0,
                    memory: size(s.resources.cpu, s.resources.memory_mb).1,
                    port: s.port,
                    uses_postgres: s.uses_postgres,
                    uses_redis: s.uses_redis,
                }),
        );
        let pgb_size = size(
            topo.pgbouncer.resources.cpu,
            topo.pgbouncer.resources.memory_mb,
        );
        let ctx = TerraformCtx {
            project: spec.project.as_str(),
            phase: spec.name.as_str(),
            title: g.title.clone(),
            primary_region: primary.aws_region.clone(),
            primary_module: primary.module.clone(),
            primary_name: primary.name.clone(),
            region_names: regions.iter().map(|r| r.name.clone()).collect(),
            regions: regions.clone(),
            postgres: &topo.postgres,
            pgbouncer: &topo.pgbouncer,
            pgbouncer_size: [pgb_size.0, pgb_size.1],
            parameters: crate::terraform::db_parameters(spec),
            multi_az: spec.postgres.multi_az,
            postgres_class: crate::terraform::db_class(spec),
            admin_user: ADMIN_USER,
            services,
        };
        for name in [
            t::TF_VERSIONS,
            t::TF_VARIABLES,
            t::TF_MAIN,
            t::TF_OUTPUTS,
            t::TF_README,
            t::TF_TEST,
            t::TF_REGION_VERSIONS,
            t::TF_REGION_VARIABLES,
            t::TF_REGION_SECURITY,
            t::TF_REGION_SECRETS,
            t::TF_REGION_POSTGRES,
            t::TF_REGION_REDIS,
            t::TF_REGION_SERVICES,
            t::TF_REGION_OUTPUTS,
        ] {
            files.insert(name.to_owned(), self.render(name, &g, &ctx)?);
        }
        Ok(())
    }

    /// The phase summary (README.md) and the load test, which belong to no
    /// target.
    fn render_docs(&self, phase: &ValidPhase, files: &mut Artifacts) -> anyhow::Result<()> {
        let spec = &phase.spec;
        let g = generated(phase);
        let e = crate::capacity::estimate(spec);
        let topo = topology::plan(spec, Target::Compose);
        let thousands = crate::report::thousands;
        files.insert(
            "loadtest/k6.js".to_owned(),
            self.render(
                t::K6_JS,
                &g,
                LoadtestCtx {
                    phase: spec.name.as_str(),
                    users_min: spec.users.min,
                    users_max: spec.users.max,
                    capacity: e.capacity,
                    spike_peak: e.capacity + e.capacity / 2,
                    bottleneck: e.bottleneck.label(),
                    smoke_vus: spec.users.min.clamp(1, 5),
                    think_seconds: 60.0 / spec.workload.requests_per_user_per_min,
                    p95_ms: 500,
                    spike_p95_ms: 2000,
                },
            )?,
        );
        let redis_summary = match &topo.redis {
            RedisLayout::Standalone { .. } => "standalone".to_owned(),
            RedisLayout::Sentinel {
                nodes,
                sentinels,
                quorum,
                ..
            } => format!(
                "Sentinel: 1 master, {} replicas, {} sentinels (quorum {quorum})",
                nodes.len() - 1,
                sentinels.len()
            ),
            RedisLayout::Cluster {
                shards,
                replicas_per_shard,
                ..
            } => {
                format!("Cluster: {shards} shards x {replicas_per_shard} replica(s)")
            }
        };
        let mut listed: Vec<String> = files.iter().map(|(p, _)| p.to_owned()).collect();
        listed.push("README.md".to_owned());
        listed.sort();
        let doc = PhaseDocCtx {
            phase: spec.name.as_str(),
            title: g.title.clone(),
            project: spec.project.as_str(),
            order: spec.order,
            users_min: thousands(spec.users.min.into()),
            users_max: thousands(spec.users.max.into()),
            capacity: thousands(e.capacity),
            headroom: format!("{:.2}x", e.headroom),
            bottleneck: e.bottleneck.label(),
            remedy: e.bottleneck.remedy(),
            lines: e
                .lines
                .iter()
                .map(|l| DocLine {
                    label: l.resource.label(),
                    users: l.users.map_or_else(|| "no limit".to_owned(), thousands),
                    work: l.work.clone(),
                    bottleneck: l.resource == e.bottleneck,
                })
                .collect(),
            postgres: &topo.postgres,
            pgbouncer: &topo.pgbouncer,
            redis: &topo.redis,
            redis_summary,
            app: &topo.app,
            services: topo.services.iter().chain(topo.workers.iter()).collect(),
            regions: spec
                .regions
                .iter()
                .map(|r| format!("{} ({}, {:?})", r.name, r.cloud_region, r.role).to_lowercase())
                .collect(),
            files: listed,
            base_port: spec.targets.local.base_port,
        };
        files.insert(
            "README.md".to_owned(),
            self.render(t::PHASE_README, &g, doc)?,
        );
        Ok(())
    }

    /// Config files of every node: the same templates for every target,
    /// with the target's addresses and paths.
    fn render_nodes(
        &self,
        topo: &Topology,
        layout: Layout,
        g: &Generated,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let dir = layout.dir();
        let pg = &topo.postgres;
        let nodes: Vec<(&PostgresNode, &str)> = std::iter::once((&pg.primary, "primary"))
            .chain(pg.replicas.iter().map(|r| (r, "standby")))
            .collect();
        for (node, role) in &nodes {
            let node_dir = format!("{dir}/postgres/{}", node.name);
            files.insert(
                format!("{node_dir}/postgresql.conf"),
                self.render(
                    t::POSTGRESQL_CONF,
                    g,
                    PgConfCtx {
                        role,
                        node,
                        postgres: pg,
                        listen_address: layout.listen(),
                        hba_path: layout.hba_path(),
                        socket_dir: layout.socket_dir(),
                    },
                )?,
            );
            files.insert(
                format!("{node_dir}/pg_hba.conf"),
                self.render(
                    t::PG_HBA_CONF,
                    g,
                    HbaCtx {
                        postgres: pg,
                        superuser: SUPERUSER,
                        replication_user: REPLICATION_USER,
                        client_network: layout.client_network(),
                    },
                )?,
            );
        }
        files.insert(
            format!("{dir}/postgres/init-roles.sql"),
            self.render(t::INIT_ROLES_SQL, g, context! {})?,
        );
        for node in &topo.pgbouncer.instances {
            files.insert(
                format!("{dir}/pgbouncer/{}/pgbouncer.ini", node.name),
                self.render(
                    t::PGBOUNCER_INI,
                    g,
                    PgbouncerCtx {
                        node,
                        pgbouncer: &topo.pgbouncer,
                        postgres: pg,
                        listen_address: layout.listen_ipv4(),
                        auth_file: &layout.pgbouncer_auth_file(&node.name),
                        admin_user: ADMIN_USER,
                        socket_dir: layout.socket_dir(),
                    },
                )?,
            );
        }
        let redis = &topo.redis;
        for node in redis.data_nodes() {
            files.insert(
                format!("{dir}/redis/{}/redis.conf", node.name),
                self.render(
                    t::REDIS_CONF,
                    g,
                    RedisConfCtx {
                        node,
                        redis,
                        bind: layout.listen_ipv4(),
                        data_dir: &layout.redis_dir(&node.name),
                        auth_include: layout.redis_auth(),
                        repl_diskless_sync_delay: layout.diskless_sync_delay(),
                    },
                )?,
            );
        }
        if let RedisLayout::Sentinel {
            sentinels, nodes, ..
        } = redis
        {
            for node in sentinels {
                files.insert(
                    format!("{dir}/redis/{}/sentinel.conf", node.name),
                    self.render(
                        t::SENTINEL_CONF,
                        g,
                        SentinelCtx {
                            node,
                            master: &nodes[0],
                            redis,
                            bind: layout.listen_ipv4(),
                            data_dir: &layout.redis_dir(&node.name),
                            auth_include: layout.redis_auth(),
                        },
                    )?,
                );
            }
        }
        Ok(())
    }

    /// Files only Compose needs: the compose file and the scripts its
    /// containers run at start.
    fn render_compose_only(
        &self,
        topo: &Topology,
        secondary: &[&str],
        g: &Generated,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let layout = Layout::Compose;
        let pg = &topo.postgres;
        for node in &pg.replicas {
            files.insert(
                format!("compose/postgres/{}/standby-start.sh", node.name),
                self.render(
                    t::STANDBY_START_SH,
                    g,
                    StandbyCtx {
                        node,
                        primary: &pg.primary,
                        replication_user: REPLICATION_USER,
                    },
                )?,
            );
        }
        files.insert(
            "compose/postgres/init-roles.sh".to_owned(),
            self.render(
                t::INIT_ROLES_SH,
                g,
                RolesCtx {
                    postgres: pg,
                    replication_user: REPLICATION_USER,
                },
            )?,
        );
        files.insert(
            "compose/pgbouncer/start.sh".to_owned(),
            self.render(
                t::PGBOUNCER_START_SH,
                g,
                PgbouncerStartCtx {
                    postgres: pg,
                    admin_user: ADMIN_USER,
                    auth_file: &layout.pgbouncer_auth_file(""),
                },
            )?,
        );
        let redis = &topo.redis;
        if let RedisLayout::Cluster { .. } = redis {
            files.insert(
                "compose/redis/cluster-create.sh".to_owned(),
                self.render(t::CLUSTER_CREATE_SH, g, ClusterCtx { redis })?,
            );
        }
        files.insert(
            "compose/redis/start.sh".to_owned(),
            self.render(
                t::REDIS_START_SH,
                g,
                context! { auth_include => layout.redis_auth() },
            )?,
        );
        files.insert(
            "compose/docker-compose.yml".to_owned(),
            self.render(t::DOCKER_COMPOSE_YML, g, ComposeCtx::new(topo, secondary))?,
        );
        files.insert(
            "compose/.env.example".to_owned(),
            self.render(
                t::ENV_EXAMPLE,
                g,
                context! {
                    postgres => Value::from(Serde(pg)),
                    replication_user => REPLICATION_USER,
                    admin_user => ADMIN_USER,
                    redis => Value::from(Serde(redis)),
                },
            )?,
        );
        Ok(())
    }
}

pub const SUPERUSER: &str = "postgres";
pub const REPLICATION_USER: &str = "replicator";
pub const ADMIN_USER: &str = "pgbouncer_admin";

/// Where a target's files live and which addresses its servers listen on.
/// Compose paths are inside containers; local paths are relative to the
/// state directory, which `scaleplan up` runs every process from, so the
/// same generated files work wherever the state directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Compose,
    Local { base_port: u16 },
}

impl Layout {
    pub fn target(self) -> Target {
        match self {
            Layout::Compose => Target::Compose,
            Layout::Local { base_port } => Target::Local { base_port },
        }
    }

    /// The directory under out/<phase>/.
    pub fn dir(self) -> &'static str {
        match self {
            Layout::Compose => "compose",
            Layout::Local { .. } => "local",
        }
    }

    /// PostgreSQL's listen_addresses: every interface inside a container
    /// (the Compose network), loopback only on a shared machine.
    fn listen(self) -> &'static str {
        match self {
            Layout::Compose => "*",
            Layout::Local { .. } => "127.0.0.1",
        }
    }

    fn listen_ipv4(self) -> &'static str {
        match self {
            Layout::Compose => "0.0.0.0",
            Layout::Local { .. } => "127.0.0.1",
        }
    }

    /// Local processes get hba_file on their command line, since its path
    /// depends on the state directory.
    fn hba_path(self) -> Option<&'static str> {
        match self {
            Layout::Compose => Some("/etc/postgresql/pg_hba.conf"),
            Layout::Local { .. } => None,
        }
    }

    /// Unix sockets: the images' defaults in Compose; none locally, where
    /// several servers share one machine and talk over TCP.
    fn socket_dir(self) -> Option<&'static str> {
        match self {
            Layout::Compose => None,
            Layout::Local { .. } => Some(""),
        }
    }

    fn client_network(self) -> &'static str {
        match self {
            Layout::Compose => "samenet",
            Layout::Local { .. } => "127.0.0.1/32",
        }
    }

    pub fn pgbouncer_auth_file(self, node: &str) -> String {
        match self {
            Layout::Compose => "/run/scaleplan/userlist.txt".to_owned(),
            Layout::Local { .. } => format!("{node}/userlist.txt"),
        }
    }

    pub fn redis_dir(self, node: &str) -> String {
        match self {
            Layout::Compose => "/data".to_owned(),
            Layout::Local { .. } => node.to_owned(),
        }
    }

    /// Redis resolves a relative include after `dir` has moved it into the
    /// node's directory, so locally the auth file sits beside the data.
    pub fn redis_auth(self) -> &'static str {
        match self {
            Layout::Compose => "/run/scaleplan/redis-auth.conf",
            Layout::Local { .. } => "auth.conf",
        }
    }

    /// Redis 7 waits 5 s before a full sync to batch replicas; locally
    /// replicas start together and waiting only slows bring-up.
    fn diskless_sync_delay(self) -> u32 {
        match self {
            Layout::Compose => 5,
            Layout::Local { .. } => 0,
        }
    }
}

fn generated(phase: &ValidPhase) -> Generated {
    let spec = &phase.spec;
    Generated {
        phase: spec.name.as_str().to_owned(),
        title: spec
            .title
            .as_ref()
            .map_or_else(|| spec.name.as_str().to_owned(), |t| t.as_str().to_owned()),
        file: phase.file_names[0].clone(),
        chain: if phase.file_names.len() > 1 {
            format!("extends {}", phase.file_names[1..].join(" <- "))
        } else {
            "no parent".to_owned()
        },
    }
}

#[derive(Serialize)]
struct TfService {
    name: String,
    image: String,
    replicas: u32,
    /// Fargate CPU units and MiB.
    cpu: u32,
    memory: u32,
    port: Option<u16>,
    uses_postgres: bool,
    uses_redis: bool,
}

#[derive(Serialize)]
struct TerraformCtx<'a> {
    project: &'a str,
    phase: &'a str,
    title: String,
    primary_region: String,
    primary_module: String,
    primary_name: String,
    region_names: Vec<String>,
    regions: Vec<crate::terraform::RegionPlan>,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    pgbouncer_size: [u32; 2],
    parameters: Vec<crate::terraform::DbParameter>,
    multi_az: bool,
    postgres_class: String,
    admin_user: &'a str,
    services: Vec<TfService>,
}

#[derive(Serialize)]
struct LoadtestCtx<'a> {
    phase: &'a str,
    users_min: u32,
    users_max: u32,
    capacity: u64,
    spike_peak: u64,
    bottleneck: &'a str,
    smoke_vus: u32,
    think_seconds: f64,
    p95_ms: u32,
    spike_p95_ms: u32,
}

#[derive(Serialize)]
struct DocLine {
    label: &'static str,
    users: String,
    work: String,
    bottleneck: bool,
}

#[derive(Serialize)]
struct PhaseDocCtx<'a> {
    phase: &'a str,
    title: String,
    project: &'a str,
    order: u32,
    users_min: String,
    users_max: String,
    capacity: String,
    headroom: String,
    bottleneck: &'a str,
    remedy: &'a str,
    lines: Vec<DocLine>,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    redis: &'a RedisLayout,
    redis_summary: String,
    app: &'a topology::AppTier,
    services: Vec<&'a topology::ServiceTier>,
    regions: Vec<String>,
    files: Vec<String>,
    base_port: u16,
}

/// What every generated file says about where it came from.
#[derive(Serialize)]
struct Generated {
    phase: String,
    title: String,
    file: String,
    chain: String,
}

#[derive(Serialize)]
struct PgConfCtx<'a> {
    role: &'a str,
    node: &'a PostgresNode,
    postgres: &'a topology::PostgresCluster,
    listen_address: &'a str,
    hba_path: Option<&'a str>,
    socket_dir: Option<&'a str>,
}

#[derive(Serialize)]
struct HbaCtx<'a> {
    postgres: &'a topology::PostgresCluster,
    superuser: &'a str,
    replication_user: &'a str,
    client_network: &'a str,
}

#[derive(Serialize)]
struct StandbyCtx<'a> {
    node: &'a PostgresNode,
    primary: &'a PostgresNode,
    replication_user: &'a str,
}

#[derive(Serialize)]
struct RolesCtx<'a> {
    postgres: &'a topology::PostgresCluster,
    replication_user: &'a str,
}

#[derive(Serialize)]
struct PgbouncerCtx<'a> {
    node: &'a topology::PgbouncerNode,
    pgbouncer: &'a topology::PgbouncerTier,
    postgres: &'a topology::PostgresCluster,
    listen_address: &'a str,
    auth_file: &'a str,
    admin_user: &'a str,
    socket_dir: Option<&'a str>,
}

#[derive(Serialize)]
struct PgbouncerStartCtx<'a> {
    postgres: &'a topology::PostgresCluster,
    admin_user: &'a str,
    auth_file: &'a str,
}

#[derive(Serialize)]
struct RedisConfCtx<'a> {
    node: &'a RedisNode,
    redis: &'a RedisLayout,
    bind: &'a str,
    data_dir: &'a str,
    auth_include: &'a str,
    repl_diskless_sync_delay: u32,
}

#[derive(Serialize)]
struct SentinelCtx<'a> {
    node: &'a RedisNode,
    master: &'a RedisNode,
    redis: &'a RedisLayout,
    bind: &'a str,
    data_dir: &'a str,
    auth_include: &'a str,
}

#[derive(Serialize)]
struct ClusterCtx<'a> {
    redis: &'a RedisLayout,
}

/// One Compose service that runs application code (the app, a service or
/// a worker).
#[derive(Serialize)]
struct AppService {
    name: String,
    image: String,
    port: Option<u16>,
    /// A node one-liner that requests the health path: the backend's image
    /// has node, not necessarily curl or wget.
    healthcheck: Option<String>,
    replicas: u32,
    resources: topology::Resources,
    uses_postgres: bool,
    uses_redis: bool,
}

#[derive(Serialize)]
struct ComposeCtx<'a> {
    project: &'a str,
    phase: &'a str,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    redis: &'a RedisLayout,
    redis_nodes: Vec<&'a RedisNode>,
    /// How redis/start.sh runs a data node: `replicated` where Sentinel
    /// rewrites the config, `server` elsewhere.
    redis_start_mode: &'static str,
    app_services: Vec<AppService>,
    volumes: Vec<String>,
    database_url: String,
    database_read_url: String,
    sentinel_list: String,
    cluster_list: String,
    pgbouncer_host_port: u16,
    redis_host_port: u16,
    secondary_regions: &'a [&'a str],
}

impl<'a> ComposeCtx<'a> {
    fn new(topo: &'a Topology, secondary: &'a [&'a str]) -> Self {
        let pg = &topo.postgres;
        let pgb = &topo.pgbouncer;
        let hosts = pgb
            .instances
            .iter()
            .map(|i| format!("{}:{}", i.endpoint.host, i.endpoint.port))
            .collect::<Vec<_>>()
            .join(",");
        let redis = &topo.redis;
        let redis_nodes = redis.data_nodes();
        let mut volumes: Vec<String> = std::iter::once(&pg.primary)
            .chain(pg.replicas.iter())
            .map(|n| format!("{}-data", n.name))
            .collect();
        volumes.extend(redis_nodes.iter().map(|n| format!("{}-data", n.name)));
        let (sentinel_list, cluster_list) = match redis {
            RedisLayout::Sentinel { sentinels, .. } => (
                sentinels
                    .iter()
                    .map(|s| format!("{}:{}", s.endpoint.host, s.endpoint.port))
                    .collect::<Vec<_>>()
                    .join(","),
                String::new(),
            ),
            RedisLayout::Cluster { nodes, .. } => (
                String::new(),
                nodes
                    .iter()
                    .map(|s| format!("{}:{}", s.endpoint.host, s.endpoint.port))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            RedisLayout::Standalone { .. } => (String::new(), String::new()),
        };
        if let RedisLayout::Sentinel { sentinels, .. } = redis {
            volumes.extend(sentinels.iter().map(|n| format!("{}-data", n.name)));
        }
        let probe = |port: u16, path: &str| {
            let url = serde_json::to_string(&format!("http://127.0.0.1:{port}{path}"))
                .unwrap_or_default();
            format!(
                "require('http').get({url}, (r) => process.exit(r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1))"
            )
        };
        let mut app_services = vec![AppService {
            name: topo.app.name.clone(),
            image: topo.app.image.clone(),
            port: Some(topo.app.port),
            healthcheck: Some(probe(topo.app.port, &topo.app.health_path)),
            replicas: topo.app.replicas,
            resources: topo.app.resources.clone(),
            uses_postgres: true,
            uses_redis: true,
        }];
        app_services.extend(
            topo.services
                .iter()
                .chain(topo.workers.iter())
                .map(|s| AppService {
                    name: s.name.clone(),
                    image: s.image.clone(),
                    port: s.port,
                    healthcheck: s.port.map(|p| probe(p, &s.health_path)),
                    replicas: s.replicas,
                    resources: s.resources.clone(),
                    uses_postgres: s.uses_postgres,
                    uses_redis: s.uses_redis,
                }),
        );
        ComposeCtx {
            project: &topo.project,
            phase: &topo.phase,
            postgres: pg,
            pgbouncer: pgb,
            redis,
            redis_nodes,
            redis_start_mode: if matches!(redis, RedisLayout::Sentinel { .. }) {
                "replicated"
            } else {
                "server"
            },
            app_services,
            volumes,
            database_url: format!("postgres://{}@{hosts}/{}", pg.user, pgb.write_db.alias),
            database_read_url: format!("postgres://{}@{hosts}/{}", pg.user, pgb.read_alias),
            sentinel_list,
            cluster_list,
            pgbouncer_host_port: topology::PGBOUNCER_PORT,
            redis_host_port: topology::REDIS_PORT,
            secondary_regions: secondary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_parses() {
        let renderer = Renderer::new(None).expect("templates parse");
        for (name, _) in t::ALL {
            assert!(renderer.env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn values_cannot_add_lines_in_any_syntax() {
        let evil = Value::from("x\nmaxmemory 0");
        for syntax in [
            Syntax::PgConf,
            Syntax::Hba,
            Syntax::Ini,
            Syntax::RedisConf,
            Syntax::Shell,
            Syntax::Plain,
        ] {
            assert!(escape(syntax, &evil).is_err(), "{syntax:?}");
        }
        assert_eq!(escape(Syntax::Yaml, &evil).unwrap(), "\"x\\nmaxmemory 0\"");
    }

    #[test]
    fn escaping_per_syntax() {
        let v = Value::from("it's");
        assert_eq!(escape(Syntax::PgConf, &v).unwrap(), "'it''s'");
        assert_eq!(escape(Syntax::Shell, &v).unwrap(), "'it'\\''s'");
        assert!(escape(Syntax::Ini, &Value::from("a;b")).is_err());
        assert!(escape(Syntax::Hba, &Value::from("all all")).is_err());
        assert_eq!(
            escape(Syntax::RedisConf, &Value::from("a b")).unwrap(),
            "\"a b\""
        );
        assert_eq!(escape(Syntax::PgConf, &Value::from(true)).unwrap(), "on");
        assert_eq!(
            escape(Syntax::RedisConf, &Value::from(false)).unwrap(),
            "no"
        );
        assert_eq!(escape(Syntax::Yaml, &Value::from(3)).unwrap(), "3");
        assert!(escape(Syntax::PgConf, &Value::from(())).is_err());
    }

    #[test]
    fn syntax_follows_the_template_name() {
        assert_eq!(Syntax::for_template(t::POSTGRESQL_CONF), Syntax::PgConf);
        assert_eq!(Syntax::for_template(t::PG_HBA_CONF), Syntax::Hba);
        assert_eq!(Syntax::for_template(t::REDIS_CONF), Syntax::RedisConf);
        assert_eq!(Syntax::for_template(t::PGBOUNCER_INI), Syntax::Ini);
        assert_eq!(Syntax::for_template(t::DOCKER_COMPOSE_YML), Syntax::Yaml);
        assert_eq!(Syntax::for_template(t::REDIS_START_SH), Syntax::Shell);
    }
}
