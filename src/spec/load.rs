//! Finding and parsing the spec files of a phases directory.

use super::limits::MAX_FILE_BYTES;
use super::node::Node;
use super::{toml, yaml};
use crate::diag::{Code, Diagnostic, Diagnostics, Location, line_col};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const EXTENSIONS: [&str; 3] = ["yaml", "yml", "toml"];

/// One parsed spec file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as shown in diagnostics (the phases directory as given, joined
    /// with the file name).
    pub path: Arc<PathBuf>,
    /// File name without extension: what `extends` refers to.
    pub stem: String,
    pub root: Node,
}

impl SourceFile {
    pub fn is_abstract(&self) -> bool {
        matches!(
            self.root.get("abstract").map(|n| &n.kind),
            Some(super::node::Kind::Bool(true))
        )
    }

    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The spec files of a directory that loaded, by stem, and the stems of
/// those that did not (reported already): a spec extending one of those
/// is told so, not that its parent does not exist.
#[derive(Default)]
pub struct Loaded {
    pub files: BTreeMap<String, SourceFile>,
    pub failed: std::collections::BTreeSet<String>,
}

/// Spec files of a directory, by stem. Parse failures are reported and the
/// file left out, so every other file is still checked in the same run.
pub fn load_dir(dir: &Path, diags: &mut Diagnostics) -> Loaded {
    let mut loaded = Loaded::default();
    let files = &mut loaded.files;
    let dir_label = Arc::new(dir.to_path_buf());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diags.push(Diagnostic::error(
                Code::Load001,
                Location::start_of(&dir_label),
                format!("cannot read the phases directory: {e}"),
                "pass the directory that holds the phase specs with --phases DIR",
            ));
            return loaded;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        diags.push(Diagnostic::error(
            Code::Load009,
            Location::start_of(&dir_label),
            "no spec files (*.yaml, *.yml, *.toml) in the phases directory",
            "pass the directory that holds the phase specs with --phases DIR",
        ));
    }
    for path in paths {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(file) = load_file(&path, diags) else {
            loaded.failed.insert(stem);
            continue;
        };
        if let Some(first) = files.get(&stem) {
            let first: &SourceFile = first;
            diags.push(
                Diagnostic::error(
                    Code::Load009,
                    Location::start_of(&file.path),
                    format!("two spec files are both called '{stem}'"),
                    "keep one file per name: `extends` and phase names refer to the file name",
                )
                .with_related(Location::start_of(&first.path)),
            );
            continue;
        }
        files.insert(stem, file);
    }
    loaded
}

/// Reads and parses one spec file, by extension.
pub fn load_file(path: &Path, diags: &mut Diagnostics) -> Option<SourceFile> {
    let shown = Arc::new(path.to_path_buf());
    let bytes = match read_bounded(path) {
        Ok(b) => b,
        Err(message) => {
            diags.push(Diagnostic::error(
                Code::Load001,
                Location::start_of(&shown),
                message,
                "check that the file exists, is readable and is a phase spec",
            ));
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let valid = String::from_utf8_lossy(&bytes[..offset]);
            let (line, column) = line_col(&valid, offset);
            diags.push(Diagnostic::error(
                Code::Load002,
                Location {
                    file: shown,
                    line,
                    column,
                },
                format!("the file is not valid UTF-8 (byte 0x{:02x})", bytes[offset]),
                "save the file as UTF-8",
            ));
            return None;
        }
    };
    if let Some((offset, c)) = text.char_indices().find(|&(_, c)| forbidden(c)) {
        let (line, column) = line_col(&text, offset);
        diags.push(Diagnostic::error(
            Code::Load010,
            Location {
                file: shown,
                line,
                column,
            },
            format!(
                "the file holds the control character U+{:04X}, which YAML and TOML do not allow: a parser could stop there and drop what follows",
                u32::from(c)
            ),
            "remove it (an editor or a tool wrote it by mistake); only tab, line feed and carriage return may appear",
        ));
        return None;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let parsed = if is_toml {
        toml::parse(&text, &shown)
    } else {
        yaml::parse(&text, &shown).map_err(|d| vec![d])
    };
    let root = match parsed {
        Ok(root) => root,
        Err(ds) => {
            diags.extend(ds);
            return None;
        }
    };
    let empty = match &root.kind {
        super::node::Kind::Null => true,
        super::node::Kind::Map(entries) => entries.is_empty(),
        _ => false,
    };
    if empty || !matches!(root.kind, super::node::Kind::Map(_)) {
        diags.push(Diagnostic::error(
            Code::Load005,
            root.at.clone(),
            if empty {
                "the spec file is empty".to_owned()
            } else {
                "a spec must be a mapping of keys to values at the top level".to_owned()
            },
            "start from a shipped phase (phases/launch.yaml) or run `scaleplan schema` to see the keys",
        ));
        return None;
    }
    Some(SourceFile {
        path: shown,
        stem,
        root,
    })
}

/// A character no spec file may hold: the C0 controls but tab, line feed
/// and carriage return, DEL, the C1 controls but NEL, and the two
/// noncharacters U+FFFE and U+FFFF (outside YAML's printable set; TOML
/// allows even fewer).
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}')
        || (('\u{80}'..='\u{9f}').contains(&c) && c != '\u{85}')
        || c == '\u{fffe}'
        || c == '\u{ffff}'
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the spec file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the spec file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the spec file is larger than {} KiB; a phase spec is a few hundred lines",
            MAX_FILE_BYTES / 1024
        ));
    }
    Ok(bytes)
}
