//! Stage 4, render: a planned phase through minijinja templates into
//! `Artifacts`, the in-memory files every later stage works on.
//!
//! Escaping is chosen by the output's syntax, from the template's name, and
//! applied by the formatter to every `{{ value }}`: a spec value is quoted or
//! checked for the file it lands in, so it can never add a line or a
//! directive. Keys and comments go through the `key` and `comment` filters,
//! which check their input and are the only source of unescaped text.

pub mod artifacts;
pub mod auth;
pub mod compose;
pub mod diagram;
mod docs;
pub mod format;
pub mod mermaid;
pub mod monitoring;
mod nodes;
pub mod notice;
pub mod reference;
mod scaling;
pub mod templates;
mod terraform;

use crate::plan::PlannedPhase;
use crate::plan::identity::{ROLES, SECRET_VARS};
use crate::plan::target::Target;
use anyhow::Context;
use artifacts::Artifacts;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value, ValueKind};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, context,
};
use notice::Generated;
use serde::Serialize;
use std::path::Path;
use templates as t;

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
    /// HAProxy's configuration: words separated by spaces.
    Haproxy,
    /// KEY=VALUE lines of an env file.
    EnvFile,
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
            n if n.ends_with(".cfg") => Syntax::Haproxy,
            n if n.ends_with(".env") => Syntax::EnvFile,
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
            Syntax::Haproxy => "haproxy",
            Syntax::EnvFile => "envfile",
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
            "haproxy" => Syntax::Haproxy,
            "envfile" => Syntax::EnvFile,
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
        // '$', '{' and '}' let the cloud's file name templatefile()
        // variables (`${writer_address}`); none can start a line or a
        // directive, and no spec value contains them.
        Syntax::Ini => all_in(s, "_.:/,@*=-${}")
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
        // '|' would end a table cell and '<' could open HTML.
        Syntax::Markdown => Ok(s.replace('|', "\\|").replace('<', "&lt;")),
        // A space would start another argument, '#' a comment.
        Syntax::Haproxy => all_in(s, "_.:/-@?=&%+,")
            .then(|| s.to_owned())
            .ok_or_else(|| refuse(syntax, "the word", s)),
        // Values are read to the end of the line; a space or '#' could be
        // taken for a comment, a quote for quoting. `${...}` references a
        // secret's variable.
        Syntax::EnvFile => all_in(s, "_.:/-@${},+=")
            .then(|| s.to_owned())
            .ok_or_else(|| refuse(syntax, "the value", s)),
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

/// `{{ value|yaml_plain }}`: a YAML plain (unquoted) scalar, for readers
/// that treat plain and quoted scalars differently (the PgBouncer
/// exporter substitutes `$(VAR)` only in plain ones). Only characters that
/// cannot start a YAML construct or end the scalar are allowed.
fn yaml_plain_filter(value: &Value) -> Result<Value, Error> {
    let s = value.as_str().unwrap_or_default();
    if all_in(s, ":/@$()._-") && !s.starts_with(['$', '@', '-', ':']) && !s.contains(": ") {
        Ok(Value::from_safe_string(s.to_owned()))
    } else {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} cannot be a plain YAML scalar"),
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

/// `{{ cmd|code }}`: one line inside a fenced code block of Markdown, as
/// written: Markdown escapes nothing in code, so the table-cell escaping
/// would put a `\|` into the shell command a user copies. One line that
/// cannot end the fence.
fn code_filter(value: &Value) -> Result<Value, Error> {
    let s = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    if has_control(&s) || s.contains("```") {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} would break out of a code block"),
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
    let notice = Generated {
        sources: field("sources")?,
        subject: field("subject")?,
    };
    // Checked above to be free of line breaks, and written as a comment.
    Ok(Value::from_safe_string(notice.lines(prefix)))
}

/// The printf formats of the auth files the start scripts write, for
/// templates (`auth.redis`); per-phase ones come in their context.
#[derive(Serialize)]
struct AuthFormats {
    redis: String,
}

/// An environment variable's name, checked to be one.
fn variable(name: &str) -> Result<&str, Error> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(name)
    } else {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{name:?} is not an environment variable name"),
        ))
    }
}

/// `{{ env(secrets.redis) }}`: a reference to a variable, `$NAME`, for a
/// shell to expand.
fn env_fn(name: &str) -> Result<Value, Error> {
    // A checked name: letters, digits and '_' only.
    Ok(Value::from_safe_string(format!("${}", variable(name)?)))
}

/// `{{ require_env(secrets.redis) }}`: `${NAME:?set NAME}`, which a shell
/// and Compose expand, and stop on when the variable is unset.
fn require_env_fn(name: &str) -> Result<Value, Error> {
    let name = variable(name)?;
    // A checked name: letters, digits and '_' only.
    Ok(Value::from_safe_string(format!("${{{name}:?set {name}}}")))
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
        env.add_filter("code", code_filter);
        env.add_filter("hcl_label", hcl_label_filter);
        env.add_filter("yaml_plain", yaml_plain_filter);
        env.add_filter("hcl_or_null", hcl_or_null_filter);
        env.add_function("header", header_fn);
        env.add_function("fail", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("env", env_fn);
        env.add_function("require_env", require_env_fn);
        // Every template names secrets and roles the same way.
        env.add_global("secrets", Value::from(Serde(SECRET_VARS)));
        env.add_global("roles", Value::from(Serde(ROLES)));
        env.add_global(
            "compose_secrets_dir",
            crate::plan::target::COMPOSE_SECRETS_DIR,
        );
        env.add_global(
            "auth",
            Value::from(Serde(AuthFormats {
                redis: auth::printf_format(&auth::redis_auth("%s")),
            })),
        );
        for (name, source) in t::sources(overrides)? {
            env.add_template_owned(name, source)
                .with_context(|| format!("template {name} does not parse"))?;
        }
        Ok(Renderer { env })
    }

    /// Renders one template. An error names the template and the line
    /// (minijinja keeps both with debug on).
    pub fn render<S: Serialize>(
        &self,
        name: &str,
        generated: &Generated,
        ctx: S,
    ) -> anyhow::Result<String> {
        let template = self.env.get_template(name)?;
        let ctx =
            context! { generated => Value::from(Serde(generated)), ..Value::from(Serde(&ctx)) };
        template.render(ctx).map_err(|e| {
            let at = match e.line() {
                Some(line) => format!("{}:{line}", e.name().unwrap_or(name)),
                None => name.to_owned(),
            };
            anyhow::anyhow!("template {at}: {e:#}")
        })
    }

    /// Every file of a phase, keyed by its path under out/<phase>/.
    pub fn render_phase(&self, phase: &PlannedPhase) -> anyhow::Result<Artifacts> {
        let spec = phase.spec();
        let mut files = Artifacts::default();
        if spec.targets.compose.enabled {
            self.render_target(phase, Target::Compose, &mut files)?;
        }
        if spec.targets.local.enabled {
            self.render_target(phase, phase.local.target, &mut files)?;
        }
        if spec.targets.terraform.enabled {
            self.render_terraform(phase, &mut files)
                .with_context(|| format!("phase {}, terraform target", spec.name))?;
        }
        self.render_docs(phase, &mut files)
            .with_context(|| format!("phase {}, summary and load test", spec.name))?;
        self.render_monitoring(phase, &mut files)
            .with_context(|| format!("phase {}, monitoring", spec.name))?;
        Ok(files)
    }

    /// The phase's scaling.json (out/<phase>/scaling.json), which the
    /// app's ScalingModule reads.
    pub fn scaling_file(&self, phase: &PlannedPhase) -> anyhow::Result<String> {
        scaling::scaling_json(phase, &generated(phase))
    }
}

/// The notice of a phase's files.
fn generated(phase: &PlannedPhase) -> Generated {
    Generated::phase(phase.name(), &phase.title, &phase.phase.file_names)
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
