//! The phases directory as it is now: planned again whenever a file in it
//! changed (name, size or modification time), else the last plan reused,
//! so an edited spec shows at the next request and an unchanged directory
//! is not planned once per request.

use super::super::session::{self, Loaded, Request};
use super::config::Config;
use super::problem::Problem;
use crate::plan::PlannedPhase;
use crate::render::artifacts::Artifacts;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What identifies the directory's contents: each entry's name, size and
/// modification time (following symlinks, as the loader does).
type Fingerprint = Vec<(String, u64, Option<SystemTime>)>;

static LAST: Mutex<Option<(Fingerprint, Arc<Loaded>)>> = Mutex::new(None);

fn fingerprint(dir: &Path) -> std::io::Result<Fingerprint> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = std::fs::metadata(entry.path()).ok();
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
            meta.and_then(|m| m.modified().ok()),
        ));
    }
    out.sort();
    Ok(out)
}

/// Every phase, planned; the specs' diagnostics as a 422 when they stop it
/// (never reused: a broken directory is read again at each request).
pub fn load(config: &Config) -> Result<Arc<Loaded>, Problem> {
    let before = fingerprint(&config.phases).ok();
    if let Some(key) = &before {
        let last = LAST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, loaded)) = last.as_ref() {
            if k == key {
                return Ok(loaded.clone());
            }
        }
    }
    let loaded = Arc::new(
        session::load_quiet(&Request::all(&config.phases))
            .map_err(|e| Problem::internal(&e))?
            .map_err(Problem::invalid_specs)?,
    );
    // Kept only if nothing changed while it was being read.
    if let Some(key) = before {
        if fingerprint(&config.phases).ok().as_ref() == Some(&key) {
            *LAST
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, loaded.clone()));
        }
    }
    Ok(loaded)
}

pub fn find<'a>(loaded: &'a Loaded, name: &str) -> Result<&'a PlannedPhase, Problem> {
    loaded.planned.get(name).ok_or_else(|| {
        Problem::not_found(format!(
            "no phase {name}: the phases are {}",
            loaded.planned.names().join(", ")
        ))
    })
}

/// The renderings of the plan `load` returned last, by phase: a phase is
/// rendered once per plan, and again only once the directory changed (a
/// new plan). Rendering enterprise took 150 ms a request.
type Renderings = (Arc<Loaded>, BTreeMap<String, Arc<Artifacts>>);

static RENDERED: Mutex<Option<Renderings>> = Mutex::new(None);

/// The files of phase `name`, as `build` renders them.
pub fn rendered(config: &Config, name: &str) -> Result<Arc<Artifacts>, Problem> {
    let loaded = load(config)?;
    {
        let cache = RENDERED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((plan, files)) = cache.as_ref() {
            if Arc::ptr_eq(plan, &loaded) {
                if let Some(files) = files.get(name) {
                    return Ok(files.clone());
                }
            }
        }
    }
    let p = find(&loaded, name)?;
    let files = Arc::new(
        config
            .renderer
            .render_phase(p)
            .map_err(|e| Problem::internal(&e))?,
    );
    let mut cache = RENDERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match cache.as_mut() {
        Some((plan, kept)) if Arc::ptr_eq(plan, &loaded) => {
            kept.insert(name.to_owned(), files.clone());
        }
        _ => *cache = Some((loaded, BTreeMap::from([(name.to_owned(), files.clone())]))),
    }
    Ok(files)
}
