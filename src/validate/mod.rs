//! Stage 2, validate: a phases directory loaded, merged, checked against
//! the schema, deserialized, and checked against the rules of each
//! component and between consecutive phases. The result holds every
//! problem found, and the phases that passed the schema.

pub mod rules;
pub mod schema;
pub mod transition;

use crate::diag::{Code, Diagnostic, Diagnostics, Location};
use crate::spec::node::SourceMap;
use crate::spec::{Phase, extends, load};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A phase that passed the schema and deserialized; rule errors are in the
/// diagnostics beside it.
#[derive(Clone, Debug)]
pub struct ValidPhase {
    pub spec: Phase,
    pub sources: SourceMap,
    /// The leaf file first, then its parents.
    pub chain: Vec<Arc<PathBuf>>,
    /// File names of `chain`, for headers that must not depend on where the
    /// phases directory sits on this machine.
    pub file_names: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Checked {
    /// Concrete (non-abstract) phases, sorted by order then name.
    pub phases: Vec<ValidPhase>,
    pub diagnostics: Diagnostics,
}

/// Loads and checks every spec of a directory.
pub fn check_dir(dir: &Path) -> anyhow::Result<Checked> {
    let mut diags = Diagnostics::default();
    let loaded = load::load_dir(dir, &mut diags);
    let files = &loaded.files;
    let schema = schema::SchemaCheck::new()?;
    let mut phases = Vec::new();
    for file in files.values() {
        if file.is_abstract() {
            continue;
        }
        let merged = match extends::resolve(file, &loaded) {
            Ok(m) => m,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let problems = schema.check(&merged);
        if !problems.is_empty() {
            diags.extend(problems);
            continue;
        }
        let mut value = merged.value.clone();
        crate::spec::types::derive_defaults(&mut value);
        let spec: Phase = match serde_json::from_value(value) {
            Ok(spec) => spec,
            Err(e) => {
                // The schema is generated from these types, so this means the
                // two disagree: report it located rather than panic.
                diags.push(Diagnostic::error(
                    Code::Sch007,
                    Location::start_of(merged.file()),
                    format!("the spec passed the schema but does not load: {e}"),
                    "please report this as a scaleplan bug, with the spec",
                ));
                continue;
            }
        };
        diags.extend(rules::check_phase(&spec, &merged.sources));
        let file_names = merged
            .chain
            .iter()
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        phases.push(ValidPhase {
            spec,
            sources: merged.sources,
            chain: merged.chain,
            file_names,
        });
    }
    diags.extend(rules::check_together(
        phases.iter().map(|p| (&p.spec, &p.sources)),
    ));
    phases.sort_by(|a, b| {
        (a.spec.order, a.spec.name.as_str()).cmp(&(b.spec.order, b.spec.name.as_str()))
    });
    // Consecutive phases by order: what a rollout actually moves between.
    for pair in phases.windows(2) {
        diags.extend(transition::check(
            &pair[0].spec,
            &pair[1].spec,
            &pair[1].sources,
        ));
    }
    Ok(Checked {
        phases,
        diagnostics: diags,
    })
}
