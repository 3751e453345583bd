//! `extends` chains: a phase overlays its parent, which may overlay its own.

use super::load::SourceFile;
use super::node::{Kind, Node, SourceMap};
use crate::diag::{Code, Diagnostic, Location};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// A phase document after its chain is merged: plain JSON for the schema and
/// serde, plus where each value came from.
#[derive(Clone, Debug)]
pub struct Merged {
    pub value: Value,
    pub sources: SourceMap,
    /// The leaf file first, then each parent in turn.
    pub chain: Vec<Arc<PathBuf>>,
}

impl Merged {
    pub fn file(&self) -> &Arc<PathBuf> {
        &self.chain[0]
    }
}

/// Keys that say which phase a file is, or what it alone is allowed, rather
/// than how it is built: a child inheriting its parent's name or order
/// would silently become a second copy of it, and one inheriting a
/// permission (allow_downgrade, allow_below_target) would skip a check its
/// author never waived. These are never inherited.
pub const IDENTITY_KEYS: [&[&str]; 7] = [
    &["abstract"],
    &["extends"],
    &["name"],
    &["title"],
    &["order"],
    &["allow_downgrade"],
    &["capacity", "allow_below_target"],
];

/// Merges `leaf` with its ancestors.
pub fn resolve(leaf: &SourceFile, loaded: &super::load::Loaded) -> Result<Merged, Diagnostic> {
    let files = &loaded.files;
    let mut lineage: Vec<&SourceFile> = vec![leaf];
    let mut current = leaf;
    while let Some(parent_ref) = current.root.get("extends") {
        let Kind::Str(parent_name) = &parent_ref.kind else {
            return Err(Diagnostic::error(
                Code::Ext003,
                parent_ref.at.clone(),
                "`extends` must be the name of another spec file",
                "write the file name without extension, e.g. `extends: base`",
            ));
        };
        let name = parent_name
            .strip_suffix(".yaml")
            .or_else(|| parent_name.strip_suffix(".yml"))
            .or_else(|| parent_name.strip_suffix(".toml"))
            .unwrap_or(parent_name);
        if name.contains('/') || name.contains('\\') || name.is_empty() {
            return Err(Diagnostic::error(
                Code::Ext003,
                parent_ref.at.clone(),
                format!("`extends: {parent_name}` must name a spec in the same directory"),
                "write the file name without extension, e.g. `extends: base`",
            ));
        }
        let Some(parent) = files.get(name) else {
            if loaded.failed.contains(name) {
                return Err(Diagnostic::error(
                    Code::Ext001,
                    parent_ref.at.clone(),
                    format!(
                        "{} extends '{name}', whose file could not be loaded",
                        current.file_name()
                    ),
                    format!("fix the error reported in {name}'s file first"),
                ));
            }
            let known: Vec<&str> = files
                .keys()
                .map(String::as_str)
                .filter(|k| *k != current.stem)
                .collect();
            return Err(Diagnostic::error(
                Code::Ext001,
                parent_ref.at.clone(),
                format!(
                    "{} extends '{name}', but no spec file '{name}' exists next to it",
                    current.file_name()
                ),
                format!("extend one of: {}", known.join(", ")),
            ));
        };
        if let Some(pos) = lineage.iter().position(|f| f.stem == parent.stem) {
            let mut cycle: Vec<String> = lineage[pos..].iter().map(|f| f.file_name()).collect();
            cycle.push(parent.file_name());
            let mut diag = Diagnostic::error(
                Code::Ext002,
                parent_ref.at.clone(),
                format!("`extends` forms a cycle: {}", cycle.join(" -> ")),
                "make one spec in the chain extend nothing (or an abstract base)",
            );
            for f in &lineage[pos..] {
                if !Arc::ptr_eq(&f.path, &current.path) {
                    diag = diag.with_related(Location::start_of(&f.path));
                }
            }
            return Err(diag);
        }
        lineage.push(parent);
        current = parent;
    }

    // Fold from the root ancestor down, so each child overrides its parent.
    let mut merged: Option<Node> = None;
    for file in lineage.iter().rev() {
        let mut node = file.root.clone();
        if !Arc::ptr_eq(&file.path, &leaf.path) {
            for path in IDENTITY_KEYS {
                node.remove_path(path);
            }
        }
        merged = Some(match merged {
            None => node,
            Some(parent) => parent.merge(node),
        });
    }
    let mut merged = merged.unwrap_or_else(|| leaf.root.clone());
    if merged.get("name").is_none() {
        merged.insert(
            "name",
            Node::new(Kind::Str(leaf.stem.clone()), Location::start_of(&leaf.path)),
        );
    }
    let (value, sources) = merged.into_json();
    Ok(Merged {
        value,
        sources,
        chain: lineage.iter().map(|f| Arc::clone(&f.path)).collect(),
    })
}
