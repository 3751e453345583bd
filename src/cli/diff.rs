//! `scaleplan diff`: what each argument names, and loading both sides.

use super::{Format, report};
use crate::diag::Diagnostics;
use crate::render::Renderer;
use crate::validate::{self, Checked, ValidPhase};
use std::path::{Path, PathBuf};

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
pub(super) fn diff_sides(
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
