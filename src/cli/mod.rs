//! The command line: argument parsing, running each command, printing
//! diagnostics, and the exit code (decided here and nowhere else).

mod build;
mod capacity;
mod diff;
mod up;

use crate::artifacts;

use crate::diag::{Diagnostic, Diagnostics};
use crate::render::Renderer;
use crate::validate::{self, ValidPhase};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// The directory under out/ holding the transition plans.
const TRANSITIONS: &str = "transitions";

/// Exit codes, as terraform plan and helm-diff use them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "scaleplan",
    version,
    about = "Compile phased scaling specs into PostgreSQL, PgBouncer, Redis and Compose configuration"
)]
pub struct Cli {
    /// Output: text for people, json for tools (one document on stdout),
    /// markdown for `diff` (a pull-request comment).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// For `diff`: a pull-request comment (diagnostics print as text).
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check specs against the schema and the rules of each component.
    Validate {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Phases to check (all when none is named); every spec is loaded.
        names: Vec<String>,
    },
    /// Render phases into out/<phase>/.
    Build {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
        /// Directory the phases are written to, one subdirectory each.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Write nothing; exit 2 if out/ differs from what the specs produce.
        #[arg(long)]
        check: bool,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Directory whose files replace the embedded templates of the same path.
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Phases to build (all when none is named).
        names: Vec<String>,
    },
    /// Compare two phases (names or spec files) or two phases directories:
    /// rendered files, spec values and the transition plan.
    Diff {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
        /// Lines of context around each change.
        #[arg(short = 'C', long, default_value_t = 3)]
        context: usize,
        /// One line per file with +/- counts instead of the patches.
        #[arg(long)]
        stat: bool,
        /// Only files whose path (under out/<phase>/) matches; repeatable.
        #[arg(long, value_name = "PATH-GLOB")]
        only: Vec<String>,
        /// Exit 2 when there are changes (0 none, 1 error).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Colour the text output: auto colours a terminal unless NO_COLOR is set.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
        #[arg(long)]
        templates: Option<PathBuf>,
        /// A phase name, a spec file, or a phases directory.
        from: String,
        /// A phase name, a spec file, or a phases directory (a directory
        /// when FROM is one).
        to: String,
    },
    /// Estimate the concurrent users each phase carries, per resource.
    Capacity {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
        /// Name the smallest phase that carries this many users.
        #[arg(long)]
        users: Option<u64>,
        /// With --users: capacity required per user (1.2 = 20% to spare).
        #[arg(long, default_value_t = 1.2)]
        headroom: f64,
        /// Phases to show (all when none is named).
        names: Vec<String>,
    },
    /// Print the JSON Schema of a phase spec.
    Schema {
        /// Exit 2 if FILE differs from the schema instead of printing it.
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "schemas/phase.schema.json")]
        check: Option<PathBuf>,
    },
    /// List the phases in order.
    List {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
    },
    /// Start a phase: as local processes with --native, else through Docker Compose.
    Up {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
        /// Run the local target as processes from the installed binaries.
        #[arg(long)]
        native: bool,
        /// Where data, logs, secrets and the process record live.
        #[arg(long, default_value = crate::native::DEFAULT_STATE)]
        state: PathBuf,
        /// First port of the local target (default: the spec's targets.local.base_port).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1024..=40000))]
        base_port: Option<u16>,
        /// Seconds each component may take to become healthy.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long)]
        templates: Option<PathBuf>,
        name: String,
    },
    /// Stop exactly the processes `up --native` recorded in the state directory.
    Down {
        #[arg(long, default_value = crate::native::DEFAULT_STATE)]
        state: PathBuf,
        /// Also delete the state directory (data, logs, secrets).
        #[arg(long)]
        purge: bool,
    },
    /// Say which recorded processes are up.
    Status {
        #[arg(long, default_value = crate::native::DEFAULT_STATE)]
        state: PathBuf,
    },
    /// Print a phase's spec after `extends`, with defaults filled in.
    Inspect {
        /// Directory of the phase specs.
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Yaml)]
        output: Output,
        name: String,
    },
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Validate {
            phases,
            strict,
            names,
        } => {
            let checked = validate::check_dir(phases)?;
            let problem = validate::select(&checked, names, phases).err();
            let failed = report(cli.format, checked.diagnostics.clone(), problem, *strict);
            if !failed && cli.format == Format::Text {
                crate::say!(
                    "{} phase(s) valid: {}",
                    checked.phases.len(),
                    checked.names().join(", ")
                );
            }
            Ok(if failed { EXIT_ERROR } else { EXIT_OK })
        }
        Command::Build {
            phases,
            out,
            check,
            strict,
            templates,
            names,
        } => build::build(
            cli.format,
            phases,
            out,
            *check,
            *strict,
            templates.as_deref(),
            names,
        ),
        Command::Schema { check } => {
            let text = validate::schema::schema_text();
            match check {
                None => {
                    crate::say_raw!("{text}");
                    Ok(EXIT_OK)
                }
                Some(path) => {
                    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
                    if on_disk == text {
                        crate::say!("{} is up to date", path.display());
                        Ok(EXIT_OK)
                    } else {
                        crate::say_raw!(
                            "{}",
                            artifacts::unified_diff(&on_disk, &text, &path.display().to_string())
                        );
                        eprintln!(
                            "{} is stale: run `scaleplan schema > {}`",
                            path.display(),
                            path.display()
                        );
                        Ok(EXIT_CHANGES)
                    }
                }
            }
        }
        Command::Capacity {
            phases,
            users,
            headroom,
            names,
        } => capacity::capacity(cli.format, phases, *users, *headroom, names),
        Command::Diff {
            phases,
            context,
            stat,
            only,
            detailed_exitcode,
            color,
            templates,
            from,
            to,
        } => {
            let paint = match color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    use std::io::IsTerminal;
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            let globs = only.clone();
            let filter = move |path: &str| {
                globs.is_empty() || globs.iter().any(|g| crate::diff::glob_match(g, path))
            };
            let opts = crate::compare::Options {
                context: *context,
                only: &filter,
            };
            let renderer = Renderer::new(templates.as_deref())?;
            let Some(comparisons) =
                diff::diff_sides(cli.format, phases, from, to, &renderer, &opts)?
            else {
                return Ok(EXIT_ERROR);
            };
            let text = match cli.format {
                Format::Text => crate::report::text(&comparisons, *stat, paint),
                Format::Markdown => {
                    crate::report::markdown(&comparisons, *stat, crate::report::MARKDOWN_CAP)
                }
                Format::Json => crate::report::json(&comparisons),
            };
            crate::say_raw!("{text}");
            let changed = comparisons
                .iter()
                .any(crate::report::Comparison::has_changes);
            Ok(if *detailed_exitcode && changed {
                EXIT_CHANGES
            } else {
                EXIT_OK
            })
        }
        Command::Up {
            phases,
            native,
            state,
            base_port,
            timeout,
            templates,
            name,
        } => {
            let checked = validate::check_dir(phases)?;
            let phase = match validate::select(&checked, std::slice::from_ref(name), phases) {
                Ok(mut v) => v.pop(),
                Err(d) => {
                    report(cli.format, checked.diagnostics.clone(), Some(d), false);
                    return Ok(EXIT_ERROR);
                }
            };
            if report(
                cli.format,
                only_for(checked.diagnostics.clone(), phase),
                None,
                false,
            ) {
                return Ok(EXIT_ERROR);
            }
            let Some(phase) = phase else {
                return Ok(EXIT_ERROR);
            };
            let renderer = Renderer::new(templates.as_deref())?;
            if *native {
                let opts = crate::native::UpOptions {
                    state_dir: state,
                    base_port: base_port.unwrap_or(phase.spec.targets.local.base_port),
                    timeout: std::time::Duration::from_secs(*timeout),
                };
                crate::native::up(phase, &renderer, &opts)?;
                Ok(EXIT_OK)
            } else {
                up::compose_up(phase, &renderer, state)
            }
        }
        Command::Down { state, purge } => {
            crate::native::down(state, *purge)?;
            Ok(EXIT_OK)
        }
        Command::Status { state } => Ok(if crate::native::status(state)? {
            EXIT_OK
        } else {
            EXIT_ERROR
        }),
        Command::List { phases } => {
            let checked = validate::check_dir(phases)?;
            if cli.format == Format::Json {
                let (failed, mut doc) = diagnostics_doc(checked.diagnostics.clone(), None, false);
                doc["phases"] = checked
                    .phases
                    .iter()
                    .map(|p| {
                        let s = &p.spec;
                        serde_json::json!({
                            "order": s.order,
                            "name": s.name.as_str(),
                            "title": s.title.as_ref().map(|t| t.as_str()),
                            "users": {"min": s.users.min, "max": s.users.max},
                            "redis_mode": s.redis.mode.as_str(),
                            "files": p.file_names,
                        })
                    })
                    .collect();
                crate::say!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(if failed { EXIT_ERROR } else { EXIT_OK });
            }
            let failed = report(cli.format, checked.diagnostics.clone(), None, false);
            for p in &checked.phases {
                let s = &p.spec;
                crate::say!(
                    "{:>2}  {:<12} {:<28} users {}-{}  redis {}  {}",
                    s.order,
                    s.name,
                    s.title.as_ref().map_or("", |t| t.as_str()),
                    s.users.min,
                    s.users.max,
                    s.redis.mode.as_str(),
                    p.file_names.join(" <- ")
                );
            }
            Ok(if failed { EXIT_ERROR } else { EXIT_OK })
        }
        Command::Inspect {
            phases,
            output,
            name,
        } => {
            let checked = validate::check_dir(phases)?;
            let selection = validate::select(&checked, std::slice::from_ref(name), phases);
            let (phase, problem) = match selection {
                Ok(mut v) => (v.pop(), None),
                Err(d) => (None, Some(d)),
            };
            let relevant = only_for(checked.diagnostics.clone(), phase);
            if report(cli.format, relevant, problem, false) {
                return Ok(EXIT_ERROR);
            }
            let Some(phase) = phase else {
                return Ok(EXIT_ERROR);
            };
            let value = serde_json::to_value(&phase.spec)?;
            match output {
                Output::Json => crate::say!("{}", serde_json::to_string_pretty(&value)?),
                Output::Yaml => crate::say_raw!("{}", to_yaml(&value)),
            }
            Ok(EXIT_OK)
        }
    }
}

/// Diagnostics about one phase's files (or all, when there is no phase).
fn only_for(diags: Diagnostics, phase: Option<&ValidPhase>) -> Diagnostics {
    let Some(phase) = phase else { return diags };
    let mut kept = Diagnostics::default();
    for d in diags.finish() {
        if phase.chain.contains(&d.location.file) {
            kept.push(d);
        }
    }
    kept
}

/// The diagnostics of a run as one JSON document, and whether they fail it.
fn diagnostics_doc(
    diags: Diagnostics,
    extra: Option<Diagnostic>,
    strict: bool,
) -> (bool, serde_json::Value) {
    let mut diags = diags;
    if let Some(d) = extra {
        diags.push(d);
    }
    let failed = diags.has_errors() || (strict && diags.has_warnings());
    let list = diags.finish();
    let errors = list.iter().filter(|d| d.is_error()).count();
    let warnings = list.len() - errors;
    let doc = serde_json::json!({
        "diagnostics": list,
        "errors": errors,
        "warnings": warnings,
        "ok": !failed,
    });
    (failed, doc)
}

/// Prints diagnostics; true when they fail the command.
fn report(format: Format, diags: Diagnostics, extra: Option<Diagnostic>, strict: bool) -> bool {
    if format == Format::Json {
        let (failed, doc) = diagnostics_doc(diags, extra, strict);
        crate::say!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return failed;
    }
    let mut diags = diags;
    if let Some(d) = extra {
        diags.push(d);
    }
    let failed = diags.has_errors() || (strict && diags.has_warnings());
    let list = diags.finish();
    let errors = list.iter().filter(|d| d.is_error()).count();
    let warnings = list.len() - errors;
    let mut stderr = std::io::stderr().lock();
    for d in &list {
        let _ = writeln!(stderr, "{d}");
    }
    if !list.is_empty() {
        let _ = writeln!(
            stderr,
            "{errors} error(s), {warnings} warning(s){}",
            if strict && warnings > 0 {
                " (--strict: warnings fail)"
            } else {
                ""
            }
        );
    }
    failed
}

/// JSON -> YAML text for `inspect`, keeping key order.
fn to_yaml(value: &serde_json::Value) -> String {
    use yaml_rust2::{Yaml, YamlEmitter};
    fn convert(v: &serde_json::Value) -> Yaml {
        match v {
            serde_json::Value::Null => Yaml::Null,
            serde_json::Value::Bool(b) => Yaml::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                None => Yaml::Real(n.to_string()),
            },
            serde_json::Value::String(s) => Yaml::String(s.clone()),
            serde_json::Value::Array(a) => Yaml::Array(a.iter().map(convert).collect()),
            serde_json::Value::Object(o) => {
                let mut h = yaml_rust2::yaml::Hash::new();
                for (k, v) in o {
                    h.insert(Yaml::String(k.clone()), convert(v));
                }
                Yaml::Hash(h)
            }
        }
    }
    let mut text = String::new();
    let mut emitter = YamlEmitter::new(&mut text);
    let _ = emitter.dump(&convert(value));
    text.push('\n');
    text
}
