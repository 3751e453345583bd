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
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let root = match parse_bytes(bytes, &shown, is_toml) {
        Ok(root) => root,
        Err(ds) => {
            diags.extend(ds);
            return None;
        }
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
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

/// A spec file's bytes as a tree: UTF-8 without a control character, then
/// YAML or TOML. Every error is located in `shown`.
pub fn parse_bytes(
    bytes: Vec<u8>,
    shown: &Arc<PathBuf>,
    is_toml: bool,
) -> Result<Node, Vec<Diagnostic>> {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let valid = String::from_utf8_lossy(&bytes[..offset]);
            let (line, column) = line_col(&valid, offset);
            return Err(vec![Diagnostic::error(
                Code::Load002,
                Location {
                    file: shown.clone(),
                    line,
                    column,
                },
                format!("the file is not valid UTF-8 (byte 0x{:02x})", bytes[offset]),
                "save the file as UTF-8",
            )]);
        }
    };
    if let Some((offset, c)) = text.char_indices().find(|&(_, c)| forbidden(c)) {
        let (line, column) = line_col(&text, offset);
        return Err(vec![Diagnostic::error(
            Code::Load010,
            Location {
                file: shown.clone(),
                line,
                column,
            },
            format!(
                "the file holds the control character U+{:04X}, which YAML and TOML do not allow: a parser could stop there and drop what follows",
                u32::from(c)
            ),
            "remove it (an editor or a tool wrote it by mistake); only tab, line feed and carriage return may appear",
        )]);
    }
    if is_toml {
        toml::parse(&text, shown)
    } else {
        yaml::parse(&text, shown).map_err(|d| vec![d])
    }
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

#[cfg(test)]
mod properties {
    //! What the loader does with any input: a document it can read loads to
    //! exactly the value it spells; anything else gets a located error;
    //! nothing panics, and nothing it builds passes the size bounds.
    use super::*;
    use crate::spec::limits::{MAX_EXPANDED_BYTES, MAX_NODES};
    use proptest::prelude::*;
    use serde_json::Value;

    fn shown() -> Arc<PathBuf> {
        Arc::new(PathBuf::from("phases/p.yaml"))
    }

    /// JSON values of the kinds a spec holds (no floats: their text form
    /// is the float crate's, not a spec's), with keys and strings from the
    /// whole of Unicode but the controls a spec file may not hold raw
    /// (JSON escapes them, so they still appear in the values).
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // JSON escapes the C0 controls but writes DEL, the C1 controls
            // and the noncharacters raw, which a spec may not hold.
            ".{0,40}".prop_map(|s| Value::String(s.chars().filter(|&c| !forbidden(c)).collect())),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_][a-z0-9_]{0,11}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Bytes biased toward what breaks loaders: NULs and other controls, a
    /// BOM, invalid UTF-8, YAML's structure characters, anchors and aliases.
    fn hostile() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\0".to_vec()),
            Just("\u{feff}".as_bytes().to_vec()),
            Just(vec![0xff]),
            Just(vec![0xc3]),
            Just(vec![0x07]),
            Just(b"\x7f".to_vec()),
            Just("\u{85}".as_bytes().to_vec()),
            Just(b"&a ".to_vec()),
            Just(b"*a".to_vec()),
            Just(b"[*a, *a, *a, *a]".to_vec()),
            Just(b": ".to_vec()),
            Just(b"- ".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"  ".to_vec()),
            Just(b"{".to_vec()),
            Just(b"}".to_vec()),
            Just(b"'".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"#".to_vec()),
            Just(b"!!".to_vec()),
            "[a-z0-9]{1,8}".prop_map(String::into_bytes),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    /// Every diagnostic points inside the text (or at the line just
    /// after its end), with a code and a help line.
    fn located(bytes: &[u8], ds: &[Diagnostic]) -> Result<(), TestCaseError> {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        prop_assert!(!ds.is_empty());
        for d in ds {
            prop_assert!(
                d.location.line >= 1 && d.location.line <= lines + 1,
                "{d:?} outside {lines} lines"
            );
            prop_assert!(d.location.column >= 1, "{d:?}");
            prop_assert!(!d.help.is_empty(), "{d:?}");
        }
        Ok(())
    }

    /// Within the bounds a loaded tree must stay: values and text.
    fn bounded(node: &Node) -> Result<(), TestCaseError> {
        prop_assert!(node.size() <= MAX_NODES);
        prop_assert!(node.text_bytes() <= MAX_EXPANDED_BYTES);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// JSON is YAML: a value written as JSON (pretty or compact) loads
        /// as exactly that value.
        #[test]
        fn a_document_loads_to_the_value_it_spells(v in value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let node = parse_bytes(text.clone().into_bytes(), &shown(), false)
                .map_err(|d| TestCaseError::fail(format!("{text}: {d:?}")))?;
            bounded(&node)?;
            let (back, _) = node.into_json();
            prop_assert_eq!(back, v);
        }

        /// Any bytes, as YAML and as TOML: a tree within the bounds, or
        /// located errors; never a panic.
        #[test]
        fn any_bytes_load_or_are_refused_where_they_go_wrong(bytes in hostile()) {
            for is_toml in [false, true] {
                match parse_bytes(bytes.clone(), &shown(), is_toml) {
                    Ok(node) => bounded(&node)?,
                    Err(ds) => located(&bytes, &ds)?,
                }
            }
        }

        /// A NUL anywhere in a document that loads is refused, never cut
        /// short.
        #[test]
        fn a_nul_is_never_the_end(v in value(), at in any::<prop::sample::Index>()) {
            let text = serde_json::to_string_pretty(&v).unwrap();
            let i = at.index(text.len() + 1);
            let i = (0..=i).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let mut bytes = text.into_bytes();
            bytes.insert(i, 0);
            let refused = parse_bytes(bytes.clone(), &shown(), false);
            prop_assert!(matches!(&refused, Err(ds) if ds[0].code == Code::Load010), "{refused:?}");
        }
    }
}
