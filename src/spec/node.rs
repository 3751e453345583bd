//! A parsed spec document that remembers where every value came from.
//!
//! YAML and TOML both parse into `Node`s; `extends` merges `Node`s, so each
//! value keeps the location of the file that actually set it. Only at the end
//! is the tree split into a plain JSON value (for the schema and serde) and a
//! `SourceMap` from JSON pointers back to file positions.

use crate::diag::Location;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Where the value starts.
    pub at: Location,
    /// Where its key starts, when the value sits in a mapping.
    pub key_at: Option<Location>,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries keep file order; duplicates are rejected by the parsers.
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn new(kind: Kind, at: Location) -> Self {
        Node {
            kind,
            at,
            key_at: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match &mut self.kind {
            Kind::Map(entries) => {
                let i = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(i).1)
            }
            _ => None,
        }
    }

    /// Removes the value at a path of keys, if there is one.
    pub fn remove_path(&mut self, path: &[&str]) {
        match path {
            [] => {}
            [key] => {
                self.remove(key);
            }
            [first, rest @ ..] => {
                if let Kind::Map(entries) = &mut self.kind {
                    if let Some((_, child)) = entries.iter_mut().find(|(k, _)| k == first) {
                        child.remove_path(rest);
                    }
                }
            }
        }
    }

    /// Sets `key` in a mapping node, replacing an existing entry in place.
    pub fn insert(&mut self, key: &str, value: Node) {
        if let Kind::Map(entries) = &mut self.kind {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, slot)) => *slot = value,
                None => entries.push((key.to_owned(), value)),
            }
        }
    }

    /// Number of nodes in this subtree, used to bound alias expansion.
    /// The text the node holds: its strings and its mapping keys, in bytes.
    pub fn text_bytes(&self) -> usize {
        match &self.kind {
            Kind::Str(s) => s.len(),
            Kind::Seq(items) => items.iter().map(Node::text_bytes).sum(),
            Kind::Map(entries) => entries.iter().map(|(k, v)| k.len() + v.text_bytes()).sum(),
            _ => 0,
        }
    }

    pub fn size(&self) -> usize {
        1 + match &self.kind {
            Kind::Seq(items) => items.iter().map(Node::size).sum(),
            Kind::Map(entries) => entries.iter().map(|(_, v)| v.size()).sum(),
            _ => 0,
        }
    }

    /// Overlays `child` on `self` (the parent): mappings merge key by key,
    /// everything else is replaced, and an explicit null in the child deletes
    /// the inherited key (as in JSON Merge Patch), which is how a phase drops
    /// a block that no longer applies, e.g. `sentinel: null` when moving to
    /// cluster mode.
    pub fn merge(self, child: Node) -> Node {
        match (self.kind, child.kind) {
            (Kind::Map(mut base), Kind::Map(over)) => {
                for (key, value) in over {
                    let existing = base.iter().position(|(k, _)| *k == key);
                    match (existing, matches!(value.kind, Kind::Null)) {
                        (Some(i), true) => {
                            base.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => {
                            let old = std::mem::replace(
                                &mut base[i].1,
                                Node::new(Kind::Null, value.at.clone()),
                            );
                            base[i].1 = old.merge(value);
                        }
                        (None, false) => base.push((key, value)),
                    }
                }
                Node {
                    kind: Kind::Map(base),
                    at: child.at,
                    key_at: child.key_at.or(self.key_at),
                }
            }
            (_, kind) => Node {
                kind,
                at: child.at,
                key_at: child.key_at,
            },
        }
    }

    /// Splits the tree into a JSON value and the map of where each part came
    /// from.
    pub fn into_json(self) -> (Value, SourceMap) {
        let mut map = SourceMap::default();
        let value = to_json(self, String::new(), &mut map);
        (value, map)
    }
}

fn to_json(node: Node, pointer: String, map: &mut SourceMap) -> Value {
    map.entries.insert(
        pointer.clone(),
        Origin {
            value: node.at,
            key: node.key_at,
        },
    );
    match node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(b),
        Kind::Int(i) => Value::Number(i.into()),
        // Parsers reject non-finite floats, so from_f64 cannot fail here; null
        // would only ever surface as a type error, never a panic.
        Kind::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Kind::Str(s) => Value::String(s),
        Kind::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_json(item, format!("{pointer}/{i}"), map))
                .collect(),
        ),
        Kind::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let child = format!("{pointer}/{}", escape_pointer(&key));
                object.insert(key, to_json(value, child, map));
            }
            Value::Object(object)
        }
    }
}

pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[derive(Clone, Debug)]
pub struct Origin {
    pub value: Location,
    pub key: Option<Location>,
}

/// JSON pointer (RFC 6901) -> where that value was written.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    entries: BTreeMap<String, Origin>,
}

impl SourceMap {
    /// The location of the value at `pointer`, or of the closest ancestor
    /// that the files set (a default-filled value has no location of its own,
    /// so the error points at the block that should contain it).
    pub fn value_at(&self, pointer: &str) -> Location {
        self.nearest(pointer).value.clone()
    }

    /// The location of the key at `pointer`, falling back to its value.
    pub fn key_at(&self, pointer: &str) -> Location {
        let origin = self.nearest(pointer);
        origin.key.clone().unwrap_or_else(|| origin.value.clone())
    }

    /// True when a file set this exact pointer (rather than a default).
    pub fn contains(&self, pointer: &str) -> bool {
        self.entries.contains_key(pointer)
    }

    fn nearest(&self, pointer: &str) -> &Origin {
        let mut p = pointer;
        loop {
            if let Some(origin) = self.entries.get(p) {
                return origin;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                // The root is always present: into_json inserts it first.
                None => return &self.entries[""],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn loc(file: &str, line: usize) -> Location {
        Location {
            file: Arc::new(PathBuf::from(file)),
            line,
            column: 1,
        }
    }

    fn map(file: &str, entries: Vec<(&str, Node)>) -> Node {
        Node::new(
            Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            ),
            loc(file, 1),
        )
    }

    fn int(file: &str, line: usize, i: i64) -> Node {
        Node::new(Kind::Int(i), loc(file, line))
    }

    #[test]
    fn merge_keeps_the_location_of_whoever_set_the_value() {
        let parent = map(
            "base.yaml",
            vec![(
                "pgbouncer",
                map(
                    "base.yaml",
                    vec![("a", int("base.yaml", 3, 1)), ("b", int("base.yaml", 4, 2))],
                ),
            )],
        );
        let child = map(
            "child.yaml",
            vec![(
                "pgbouncer",
                map("child.yaml", vec![("b", int("child.yaml", 7, 9))]),
            )],
        );
        let (value, sources) = parent.merge(child).into_json();
        assert_eq!(value, serde_json::json!({"pgbouncer": {"a": 1, "b": 9}}));
        assert_eq!(
            sources.value_at("/pgbouncer/a").file.to_str(),
            Some("base.yaml")
        );
        assert_eq!(sources.value_at("/pgbouncer/b").line, 7);
        assert_eq!(
            sources.value_at("/pgbouncer/b").file.to_str(),
            Some("child.yaml")
        );
        // A pointer nobody set falls back to its closest ancestor.
        assert_eq!(
            sources.value_at("/pgbouncer/zzz").file.to_str(),
            Some("child.yaml")
        );
    }

    #[test]
    fn null_in_child_deletes_the_inherited_key() {
        let parent = map(
            "p",
            vec![("sentinel", map("p", vec![("count", int("p", 2, 3))]))],
        );
        let child = map("c", vec![("sentinel", Node::new(Kind::Null, loc("c", 2)))]);
        let (value, _) = parent.merge(child).into_json();
        assert_eq!(value, serde_json::json!({}));
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let doc = map("f", vec![("a/b~c", int("f", 2, 1))]);
        let (_, sources) = doc.into_json();
        assert!(sources.contains("/a~1b~0c"));
    }
}
