//! `Artifacts`, the in-memory rendering every command shares, and the two
//! ways it meets the disk: an atomic write of out/<phase>, and a check that
//! compares without writing.

use anyhow::{Context, bail};
use similar::TextDiff;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Relative path -> file text, ordered so every listing is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Artifacts(BTreeMap<String, String>);

impl Artifacts {
    pub fn insert(&mut self, path: String, text: String) {
        self.0.insert(path, text);
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.0.get(path).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Replaces `out/<phase>` with exactly `files`. The new tree is written
/// next to it and swapped in by rename, so a reader (or a crash) sees the
/// old tree or the new one, never half of each.
pub fn write_phase(out: &Path, phase: &str, files: &Artifacts) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let target = out.join(phase);
    let staging = out.join(format!(".{phase}.new-{}", std::process::id()));
    let retired = out.join(format!(".{phase}.old-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let result = (|| -> anyhow::Result<()> {
        for (path, text) in files.iter() {
            let full = safe_join(&staging, path)?;
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
        }
        if target.exists() {
            std::fs::rename(&target, &retired)
                .with_context(|| format!("moving aside {}", target.display()))?;
        }
        std::fs::rename(&staging, &target)
            .with_context(|| format!("moving {} into place", target.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        if retired.exists() && !target.exists() {
            let _ = std::fs::rename(&retired, &target);
        }
    } else if retired.exists() {
        std::fs::remove_dir_all(&retired)
            .with_context(|| format!("removing {}", retired.display()))?;
    }
    result
}

/// Brings `out/<phase>` to exactly `files` while containers run from it:
/// each changed file is rewritten where it is (the same inode), as the
/// transition's `cp -R` does. A directory swapped in by rename would leave
/// every container that Compose does not recreate reading its single-file
/// mounts from the deleted tree, so a later edit and HUP (a transition's
/// reload, a promotion) would reload the old settings. Files the phase no
/// longer has are removed, except the operator's dotfiles (`.env`). The
/// first write of a phase is `write_phase`'s.
pub fn update_phase(out: &Path, phase: &str, files: &Artifacts) -> anyhow::Result<()> {
    let target = out.join(phase);
    if !target.is_dir() {
        return write_phase(out, phase, files);
    }
    for (path, text) in files.iter() {
        let full = safe_join(&target, path)?;
        if std::fs::read(&full).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
    }
    for path in list_files(&target)? {
        let dotfile = path.rsplit('/').next().is_some_and(|n| n.starts_with('.'));
        if files.get(&path).is_none() && !dotfile {
            let full = safe_join(&target, &path)?;
            std::fs::remove_file(&full).with_context(|| format!("removing {}", full.display()))?;
        }
    }
    Ok(())
}

/// Joins a generated relative path under `root`, refusing anything that
/// could leave it. Paths come from phase and node names that the schema
/// already restricts; this is the last line of defence.
fn safe_join(root: &Path, relative: &str) -> anyhow::Result<PathBuf> {
    let rel = Path::new(relative);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("refusing to write {relative:?}: not a plain relative path");
    }
    Ok(root.join(rel))
}

/// How a file on disk differs from what the specs produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    Changed { path: String, diff: String },
    Missing { path: String },
    Extra { path: String },
}

impl Drift {
    pub fn path(&self) -> &str {
        match self {
            Drift::Changed { path, .. } | Drift::Missing { path } | Drift::Extra { path } => path,
        }
    }
}

/// Compares `files` with the tree under `dir` without writing anything.
/// Paths in the result are relative to `dir`'s parent's view: `prefix/rel`.
pub fn check_tree(dir: &Path, prefix: &str, files: &Artifacts) -> anyhow::Result<Vec<Drift>> {
    let mut drift = Vec::new();
    let on_disk = list_files(dir)?;
    for (path, expected) in files.iter() {
        let shown = format!("{prefix}/{path}");
        match std::fs::read(dir.join(path)) {
            Ok(bytes) => {
                let actual = String::from_utf8_lossy(&bytes);
                if actual != expected {
                    drift.push(Drift::Changed {
                        diff: unified_diff(&actual, expected, &shown),
                        path: shown,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                drift.push(Drift::Missing { path: shown })
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", dir.join(path).display()));
            }
        }
    }
    for path in on_disk {
        if files.get(&path).is_none() {
            drift.push(Drift::Extra {
                path: format!("{prefix}/{path}"),
            });
        }
    }
    drift.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(drift)
}

/// Files under `dir`, relative, with '/' separators. A missing dir is empty.
pub fn list_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A unified diff from `old` to `new`, bounded in time so a pathological
/// pair of files cannot stall a check.
pub fn unified_diff(old: &str, new: &str, path: &str) -> String {
    TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_phase_is_updated_in_place() {
        use std::os::unix::fs::MetadataExt;
        let out = std::env::temp_dir().join(format!("scaleplan-update-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut files = Artifacts::default();
        files.insert(
            "compose/pgbouncer/pgbouncer.ini".to_owned(),
            "default_pool_size = 40\n".to_owned(),
        );
        files.insert("compose/gone.conf".to_owned(), "x\n".to_owned());
        update_phase(&out, "growth", &files).unwrap();
        let ini = out.join("growth/compose/pgbouncer/pgbouncer.ini");
        let inode = std::fs::metadata(&ini).unwrap().ino();
        std::fs::write(out.join("growth/compose/.env"), "SECRET=1\n").unwrap();

        let mut next = Artifacts::default();
        next.insert(
            "compose/pgbouncer/pgbouncer.ini".to_owned(),
            "default_pool_size = 7\n".to_owned(),
        );
        next.insert("compose/new.conf".to_owned(), "y\n".to_owned());
        update_phase(&out, "growth", &next).unwrap();
        // The same file, as a container's single-file mount holds it.
        assert_eq!(std::fs::metadata(&ini).unwrap().ino(), inode);
        assert_eq!(
            std::fs::read_to_string(&ini).unwrap(),
            "default_pool_size = 7\n"
        );
        assert_eq!(
            list_files(&out.join("growth")).unwrap(),
            [
                "compose/.env",
                "compose/new.conf",
                "compose/pgbouncer/pgbouncer.ini"
            ]
        );
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn safe_join_refuses_escapes() {
        let root = Path::new("/tmp/x");
        assert!(safe_join(root, "a/b.conf").is_ok());
        assert!(safe_join(root, "../etc/passwd").is_err());
        assert!(safe_join(root, "/etc/passwd").is_err());
        assert!(safe_join(root, "a/./b").is_ok());
    }
}
