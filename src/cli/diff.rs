//! `scaleplan diff`: what each argument names, loading both sides, and the
//! report.

use super::args::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Format, PhasesDir, Templates};
use super::session::{self, Loaded, Request};
use crate::compare::report::{self, Comparison};
use crate::compare::{self, Options, diff::glob_match};
use crate::plan::PlannedPhase;
use crate::render::Renderer;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
    /// Lines of context around each change.
    #[arg(short = 'C', long, value_name = "N", default_value_t = 3)]
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
    #[command(flatten)]
    templates: Templates,
    /// A phase name, a spec file, or a phases directory.
    from: String,
    /// A phase name, a spec file, or a phases directory (a directory
    /// when FROM is one).
    to: String,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let paint = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            use std::io::IsTerminal;
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let globs = &args.only;
    let filter = |path: &str| globs.is_empty() || globs.iter().any(|g| glob_match(g, path));
    let opts = Options {
        context: args.context,
        only: &filter,
    };
    let renderer = Renderer::new(args.templates.dir.as_deref())?;
    let Some(comparisons) = sides(
        format,
        &args.phases.dir,
        &args.from,
        &args.to,
        &renderer,
        &opts,
    )?
    else {
        return Ok(EXIT_ERROR);
    };
    let text = match format {
        Format::Text => report::text(&comparisons, args.stat, paint),
        Format::Markdown => report::markdown(&comparisons, args.stat, report::MARKDOWN_CAP),
        Format::Json => report::json(&comparisons),
    };
    crate::say_raw!("{text}");
    let changed = comparisons.iter().any(Comparison::has_changes);
    Ok(if args.detailed_exitcode && changed {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
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

/// Loads a phases directory for one side. Errors stop the diff (reported
/// in the chosen format); warnings go to stderr as text, so stdout stays
/// one document.
fn load(format: Format, dir: &Path) -> anyhow::Result<Option<Loaded>> {
    let loaded = match session::load(format, &Request::all(dir))? {
        Ok(loaded) => loaded,
        Err(_) => return Ok(None),
    };
    if format == Format::Json {
        session::print(Format::Text, &loaded.report, false);
    }
    Ok(Some(loaded))
}

/// The phase a name or spec file argument names, from its loaded directory.
fn pick<'a>(
    format: Format,
    side: &Side,
    loaded: &'a Loaded,
    dir: &Path,
) -> Option<&'a PlannedPhase> {
    match side {
        Side::Phase(name) => match loaded.planned.select(std::slice::from_ref(name), dir) {
            Ok(found) => found.first().copied(),
            Err(d) => {
                session::print_one(format, d);
                None
            }
        },
        Side::File(f) => {
            let found = loaded
                .planned
                .phases
                .iter()
                .find(|p| p.phase.chain[0].file_name() == f.file_name());
            if found.is_none() {
                eprintln!(
                    "error: {} is not a concrete phase (an abstract spec is never rendered)",
                    f.display()
                );
            }
            found
        }
        Side::Dir(_) => None,
    }
}

/// Loads both sides of a diff and compares them. None when a side is
/// invalid or unknown (its diagnostics are printed).
fn sides(
    format: Format,
    phases: &Path,
    from: &str,
    to: &str,
    renderer: &Renderer,
    opts: &Options,
) -> anyhow::Result<Option<Vec<Comparison>>> {
    let dir_of = |s: &Side| match s {
        Side::File(f) => f
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        Side::Phase(_) => phases.to_path_buf(),
        Side::Dir(d) => d.clone(),
    };
    match (side(from), side(to)) {
        (Side::Dir(a), Side::Dir(b)) => {
            let (Some(old), Some(new)) = (load(format, &a)?, load(format, &b)?) else {
                return Ok(None);
            };
            Ok(Some(compare::compare_dirs(
                &old.planned,
                &new.planned,
                renderer,
                opts,
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
            let (dir_a, dir_b) = (dir_of(&a), dir_of(&b));
            let Some(loaded_a) = load(format, &dir_a)? else {
                return Ok(None);
            };
            // Both sides usually come from one directory: load it once.
            let loaded_b = if dir_b == dir_a {
                None
            } else {
                match load(format, &dir_b)? {
                    Some(l) => Some(l),
                    None => return Ok(None),
                }
            };
            let (Some(old), Some(new)) = (
                pick(format, &a, &loaded_a, &dir_a),
                pick(format, &b, loaded_b.as_ref().unwrap_or(&loaded_a), &dir_b),
            ) else {
                return Ok(None);
            };
            Ok(Some(vec![compare::compare(
                Some(old),
                Some(new),
                renderer,
                opts,
            )?]))
        }
    }
}
