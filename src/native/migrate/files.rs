//! Installing the new phase's files: a step copies the part of the
//! rendering it acts on from config.next into config, where the servers
//! and the generated scripts read them.

use super::Migrator;
use crate::plan::layout::Part;
use anyhow::Context;
use std::path::Path;

impl Migrator<'_> {
    /// Copies each part over what config/ holds (files the new phase no
    /// longer has stay until the migration ends and config.next replaces
    /// config whole). Copying the same bytes again changes nothing, so a
    /// step that runs again installs again.
    pub fn install(&self, parts: &[Part]) -> anyhow::Result<()> {
        for part in parts {
            copy_tree(&self.next.join(part.rel()), &self.b.config.join(part.rel()))?;
        }
        Ok(())
    }

    /// Copies only these files or directories of the rendering (paths
    /// relative to it), for a step that must not touch the rest of a part.
    pub fn install_paths<P: AsRef<Path>>(&self, paths: &[P]) -> anyhow::Result<()> {
        for rel in paths {
            let rel = rel.as_ref();
            copy_tree(&self.next.join(rel), &self.b.config.join(rel))?;
        }
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if from.is_file() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, to)
            .with_context(|| format!("installing {} as {}", from.display(), to.display()))?;
    }
    Ok(())
}
