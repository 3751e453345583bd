//! The command line: argument parsing, running each command, printing
//! diagnostics, and the exit code (decided here and nowhere else).

use crate::artifacts::{self, Artifacts, Drift};
use crate::diag::{Diagnostic, Diagnostics};
use crate::render::Renderer;
use crate::validate::{self, Checked, ValidPhase};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// How diagnostics are printed.
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
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
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
        #[arg(long, default_value = "phases")]
        phases: PathBuf,
    },
    /// Start a phase: as local processes with --native, else through Docker Compose.
    Up {
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
        } => build(
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
        } => capacity(cli.format, phases, *users, *headroom, names),
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
            let Some(comparisons) = diff_sides(cli.format, phases, from, to, &renderer, &opts)?
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
                compose_up(phase, &renderer, state)
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

fn capacity(
    format: Format,
    phases: &Path,
    users: Option<u64>,
    headroom: f64,
    names: &[String],
) -> anyhow::Result<i32> {
    let checked = validate::check_dir(phases)?;
    let selected = match validate::select(&checked, names, phases) {
        Ok(s) => s,
        Err(d) => {
            report(format, checked.diagnostics.clone(), Some(d), false);
            return Ok(EXIT_ERROR);
        }
    };
    // CAP001 is what this command explains, so it does not stop it.
    let blocking: Vec<Diagnostic> = checked
        .diagnostics
        .clone()
        .finish()
        .into_iter()
        .filter(|d| d.code != crate::diag::Code::Cap001)
        .collect();
    let mut errors = Diagnostics::default();
    errors.extend(blocking);
    if errors.has_errors() {
        report(format, errors, None, false);
        return Ok(EXIT_ERROR);
    }
    let estimates: Vec<(&ValidPhase, crate::capacity::Estimate)> = selected
        .iter()
        .map(|p| (*p, crate::capacity::estimate(&p.spec)))
        .collect();
    let Some(wanted) = users else {
        match format {
            Format::Json => {
                let list: Vec<&crate::capacity::Estimate> =
                    estimates.iter().map(|(_, e)| e).collect();
                crate::say!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "phases": list }))?
                );
            }
            _ => {
                for (p, e) in &estimates {
                    let title = p
                        .spec
                        .title
                        .as_ref()
                        .map_or(p.spec.name.as_str(), |t| t.as_str());
                    crate::say!(
                        "{}",
                        crate::report::capacity_text(e, title, p.spec.users.min)
                    );
                }
            }
        }
        return Ok(EXIT_OK);
    };
    if !(headroom.is_finite() && headroom > 0.0) {
        eprintln!(
            "error: --headroom must be a positive number\n  help: 1.2 asks for 20% spare capacity"
        );
        return Ok(EXIT_ERROR);
    }
    let needed = (wanted as f64 * headroom).ceil() as u64;
    let pick = estimates.iter().find(|(_, e)| e.capacity >= needed);
    let largest = estimates.iter().max_by_key(|(_, e)| e.capacity);
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "users": wanted,
                "headroom": headroom,
                "needed": needed,
                "phase": pick.map(|(p, _)| p.spec.name.as_str()),
                "estimate": pick.map(|(_, e)| e),
                "largest": largest.map(|(_, e)| e),
                "remedy": if pick.is_none() { largest.map(|(_, e)| e.bottleneck.remedy()) } else { None },
            });
            crate::say!("{}", serde_json::to_string_pretty(&doc)?);
        }
        _ => match (pick, largest) {
            (Some((p, e)), _) => crate::say!(
                "{} carries {} users: it carries {} >= {} x {headroom} (bottleneck: {})",
                p.spec.name,
                crate::report::thousands(wanted),
                crate::report::thousands(e.capacity),
                crate::report::thousands(wanted),
                e.bottleneck.label()
            ),
            (None, Some((p, e))) => crate::say!(
                "no phase carries {} users with headroom {headroom} ({} needed): the largest, {}, carries {} (bottleneck: {}); {}",
                crate::report::thousands(wanted),
                crate::report::thousands(needed),
                p.spec.name,
                crate::report::thousands(e.capacity),
                e.bottleneck.label(),
                e.bottleneck.remedy()
            ),
            (None, None) => crate::say!("no phases"),
        },
    }
    Ok(if pick.is_some() { EXIT_OK } else { EXIT_ERROR })
}

/// What a `diff` argument names.
enum Side {
    Dir(PathBuf),
    File(PathBuf),
    Phase(String),
}

fn side(arg: &str) -> Side {
    let path = Path::new(arg);
    if path.is_dir() {
        Side::Dir(path.to_path_buf())
    } else if path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| crate::spec::load::EXTENSIONS.contains(&e))
    {
        Side::File(path.to_path_buf())
    } else {
        Side::Phase(arg.to_owned())
    }
}

/// Loads both sides of a diff and compares them. None when a side is
/// invalid or unknown (its diagnostics are printed).
fn diff_sides(
    format: Format,
    phases: &Path,
    from: &str,
    to: &str,
    renderer: &Renderer,
    opts: &crate::compare::Options,
) -> anyhow::Result<Option<Vec<crate::report::Comparison>>> {
    // Errors are reported in the requested format (and nothing else is
    // printed); warnings go to stderr as text, so stdout stays one document.
    let load = |dir: &Path| -> anyhow::Result<Option<Checked>> {
        let checked = validate::check_dir(dir)?;
        if checked.diagnostics.has_errors() {
            report(format, checked.diagnostics.clone(), None, false);
            return Ok(None);
        }
        report(Format::Text, checked.diagnostics.clone(), None, false);
        Ok(Some(checked))
    };
    match (side(from), side(to)) {
        (Side::Dir(a), Side::Dir(b)) => {
            let (Some(old), Some(new)) = (load(&a)?, load(&b)?) else {
                return Ok(None);
            };
            Ok(Some(crate::compare::compare_dirs(
                &old, &new, renderer, opts,
            )?))
        }
        (Side::Dir(_), _) | (_, Side::Dir(_)) => {
            eprintln!(
                "error: diff compares a directory only with another directory
  help: give two phases directories, or two phase names or spec files"
            );
            Ok(None)
        }
        (a, b) => {
            let mut loaded: Vec<(PathBuf, Checked)> = Vec::new();
            let mut pick = |s: Side| -> anyhow::Result<Option<ValidPhase>> {
                let (dir, wanted) = match &s {
                    Side::File(f) => (
                        f.parent()
                            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
                        None,
                    ),
                    Side::Phase(name) => (phases.to_path_buf(), Some(name.clone())),
                    Side::Dir(_) => unreachable!("directories are handled above"),
                };
                if !loaded.iter().any(|(d, _)| *d == dir) {
                    let Some(checked) = load(&dir)? else {
                        return Ok(None);
                    };
                    loaded.push((dir.clone(), checked));
                }
                let checked = &loaded
                    .iter()
                    .find(|(d, _)| *d == dir)
                    .map(|(_, c)| c)
                    .ok_or_else(|| anyhow::anyhow!("not loaded"))?;
                match (&s, wanted) {
                    (_, Some(name)) => {
                        match validate::select(checked, std::slice::from_ref(&name), &dir) {
                            Ok(mut v) => Ok(v.pop().cloned()),
                            Err(d) => {
                                report(format, Diagnostics::default(), Some(d), false);
                                Ok(None)
                            }
                        }
                    }
                    (Side::File(f), None) => {
                        let found = checked
                            .phases
                            .iter()
                            .find(|p| p.chain[0].file_name() == f.file_name())
                            .cloned();
                        if found.is_none() {
                            eprintln!(
                                "error: {} is not a concrete phase (an abstract spec is never rendered)",
                                f.display()
                            );
                        }
                        Ok(found)
                    }
                    _ => Ok(None),
                }
            };
            let (Some(old), Some(new)) = (pick(a)?, pick(b)?) else {
                return Ok(None);
            };
            Ok(Some(vec![crate::compare::compare(
                Some(&old),
                Some(&new),
                renderer,
                opts,
            )?]))
        }
    }
}

/// `up` without --native: the compose target through `docker compose`,
/// when a Docker engine answers.
fn compose_up(phase: &ValidPhase, renderer: &Renderer, state: &Path) -> anyhow::Result<i32> {
    let engine = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(std::process::Stdio::null())
        .output();
    let answers = matches!(&engine, Ok(out) if out.status.success());
    if !answers {
        let why = match &engine {
            Err(e) => format!("docker cannot be run ({e})"),
            Ok(out) => String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
        };
        eprintln!(
            "error: no Docker engine answers: {why}
  help: run `scaleplan up {} --native` to start the phase as local processes from the installed PostgreSQL, PgBouncer and Redis",
            phase.spec.name
        );
        return Ok(EXIT_ERROR);
    }
    let mut files = Artifacts::default();
    renderer.render_target(phase, crate::render::Layout::Compose, &mut files)?;
    let dir = state.join("compose-target");
    artifacts::write_phase(&dir, phase.spec.name.as_str(), &files)?;
    let compose = dir
        .join(phase.spec.name.as_str())
        .join("compose/docker-compose.yml");
    // The same secrets as a native bring-up: from the environment, or
    // generated once and kept in the state directory, never in out/.
    let secrets = crate::native::Secrets::load_or_create(state)?;
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["compose", "-f"])
        .arg(&compose)
        .args(["up", "--detach", "--wait"]);
    for (key, value) in secrets.env() {
        cmd.env(key, value);
    }
    let status = cmd.status().context("running docker compose")?;
    Ok(if status.success() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
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

fn build(
    format: Format,
    phases_dir: &Path,
    out: &Path,
    check: bool,
    strict: bool,
    templates: Option<&Path>,
    names: &[String],
) -> anyhow::Result<i32> {
    let checked: Checked = validate::check_dir(phases_dir)?;
    let selected = match validate::select(&checked, names, phases_dir) {
        Ok(s) => s,
        Err(d) => {
            report(format, checked.diagnostics.clone(), Some(d), strict);
            return Ok(EXIT_ERROR);
        }
    };
    // In JSON mode stdout carries one document: the diagnostics, then what
    // was written or found stale.
    let json = format == Format::Json;
    let mut doc = serde_json::Value::Null;
    if json {
        let (failed, d) = diagnostics_doc(checked.diagnostics.clone(), None, strict);
        if failed {
            crate::say!("{}", serde_json::to_string_pretty(&d)?);
            return Ok(EXIT_ERROR);
        }
        doc = d;
    } else if report(format, checked.diagnostics.clone(), None, strict) {
        eprintln!("nothing written: fix the errors above first");
        return Ok(EXIT_ERROR);
    }
    // Render everything before touching the disk, so a failure in the last
    // phase leaves out/ exactly as it was.
    let renderer = Renderer::new(templates)?;
    let mut rendered: Vec<(&str, Artifacts)> = Vec::new();
    for phase in &selected {
        let files = renderer
            .render_phase(phase)
            .with_context(|| format!("rendering phase {}", phase.spec.name))?;
        rendered.push((phase.spec.name.as_str(), files));
    }
    let all = names.is_empty();
    // The plans between consecutive phases change with any of them, so
    // they are written when every phase is built.
    if all && checked.phases.len() > 1 {
        let notes = crate::compare::transition_notes(&checked, &rendered);
        rendered.push((TRANSITIONS, notes));
    }
    if check {
        let mut drift = Vec::new();
        for (name, files) in &rendered {
            drift.extend(artifacts::check_tree(
                &out.join(name),
                &format!("{}/{name}", out.display()),
                files,
            )?);
        }
        if all {
            for stray in stray_dirs(out, &rendered)? {
                drift.push(Drift::Extra {
                    path: format!("{}/{stray}/", out.display()),
                });
            }
        }
        if json {
            let list: Vec<serde_json::Value> = drift
                .iter()
                .map(|d| match d {
                    Drift::Changed { path, diff } => {
                        serde_json::json!({"path": path, "status": "stale", "diff": diff})
                    }
                    Drift::Missing { path } => {
                        serde_json::json!({"path": path, "status": "missing"})
                    }
                    Drift::Extra { path } => serde_json::json!({"path": path, "status": "extra"}),
                })
                .collect();
            doc["up_to_date"] = serde_json::Value::Bool(list.is_empty());
            doc["drift"] = serde_json::Value::Array(list);
            crate::say!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(if drift.is_empty() {
                EXIT_OK
            } else {
                EXIT_CHANGES
            });
        }
        return Ok(print_drift(&drift));
    }
    let mut written = Vec::new();
    for (name, files) in &rendered {
        artifacts::write_phase(out, name, files)?;
        let dir = out.join(name).display().to_string();
        if !json {
            crate::say!("wrote {dir} ({} files)", files.len());
        }
        written.push(serde_json::json!({"dir": dir, "files": files.len()}));
    }
    if all {
        for stray in stray_dirs(out, &rendered)? {
            let dir = out.join(&stray);
            if is_generated_tree(&dir)? {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
                if !json {
                    crate::say!("removed {} (no phase of that name)", dir.display());
                }
            } else {
                eprintln!(
                    "warning: {} is not a phase and was not generated by scaleplan; left alone",
                    dir.display()
                );
            }
        }
    }
    if json {
        doc["written"] = serde_json::Value::Array(written);
        crate::say!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(EXIT_OK)
}

/// Entries of out/ that no rendered phase owns.
fn stray_dirs(out: &Path, rendered: &[(&str, Artifacts)]) -> anyhow::Result<Vec<String>> {
    let mut stray = Vec::new();
    if !out.exists() {
        return Ok(stray);
    }
    for entry in std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !rendered.iter().any(|(n, _)| *n == name) && !name.starts_with('.') {
            stray.push(name);
        }
    }
    stray.sort();
    Ok(stray)
}

/// True when every file under `dir` carries scaleplan's generated notice,
/// so removing it cannot lose anything a person wrote.
fn is_generated_tree(dir: &Path) -> anyhow::Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    let files = artifacts::list_files(dir)?;
    Ok(!files.is_empty()
        && files.iter().all(|f| {
            std::fs::read_to_string(dir.join(f))
                .map(|t| {
                    t.lines()
                        .take(3)
                        .any(|l| l.contains("Generated by scaleplan"))
                })
                .unwrap_or(false)
        }))
}

fn print_drift(drift: &[Drift]) -> i32 {
    if drift.is_empty() {
        crate::say!("out/ is up to date");
        return EXIT_OK;
    }
    for d in drift {
        match d {
            Drift::Changed { path, diff } => {
                crate::say!("stale: {path}");
                crate::say_raw!("{diff}");
            }
            Drift::Missing { path } => crate::say!("missing: {path}"),
            Drift::Extra { path } => crate::say!("extra: {path}"),
        }
    }
    eprintln!(
        "{} file(s) differ from the specs: run `scaleplan build` and commit out/",
        drift.len()
    );
    EXIT_CHANGES
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
