//! YAML -> `Node`, keeping the position of every key and value.
//!
//! yaml-rust2's event parser is driven by hand rather than through its
//! recursive `load`, so nesting depth and alias expansion are bounded here
//! and a hostile file (an alias bomb, ten thousand nested brackets) ends in a
//! located error instead of a stack overflow or an out-of-memory kill.

use super::limits::{MAX_DEPTH, MAX_EXPANDED_BYTES, MAX_NODES};
use super::node::{Kind, Node};
use crate::diag::{Code, Diagnostic, Location};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

enum Frame {
    Seq {
        items: Vec<Node>,
        at: Location,
        anchor: usize,
    },
    Map {
        entries: Vec<(String, Node)>,
        at: Location,
        anchor: usize,
        key: Option<(String, Location)>,
    },
}

struct Builder<'a> {
    file: &'a Arc<PathBuf>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    /// Bytes of text in the tree so far, aliases expanded.
    bytes: usize,
}

pub fn parse(text: &str, file: &Arc<PathBuf>) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        nodes: 0,
        bytes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            if e.info().contains("recursion limit") {
                builder.limit(e.marker(), "nesting is too deep")
            } else {
                Diagnostic::error(
                    Code::Load003,
                    builder.loc(e.marker()),
                    format!("YAML syntax error: {}", e.info()),
                    "fix the YAML syntax at this position (indentation, a missing ':' or an unclosed bracket or quote)",
                )
            }
        })?;
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::error(
                        Code::Load008,
                        builder.loc(&mark),
                        "a spec file holds one YAML document, this is a second one",
                        "put each phase in its own file and remove the extra '---'",
                    ));
                }
            }
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::Scalar(value, style, anchor, tag) => {
                let node = builder.scalar(value, style, tag.as_ref(), &mark)?;
                builder.finish(node, anchor, &mark)?;
            }
            Event::Alias(id) => {
                let node = builder.alias(id, &mark)?;
                builder.deliver(node, &mark)?;
            }
            Event::SequenceStart(anchor, tag) => {
                builder.check_collection_tag(tag.as_ref(), "seq", &mark)?;
                builder.open(
                    Frame::Seq {
                        items: Vec::new(),
                        at: builder.loc(&mark),
                        anchor,
                    },
                    &mark,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                builder.check_collection_tag(tag.as_ref(), "map", &mark)?;
                builder.open(
                    Frame::Map {
                        entries: Vec::new(),
                        at: builder.loc(&mark),
                        anchor,
                        key: None,
                    },
                    &mark,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match builder.stack.pop() {
                    Some(Frame::Seq { items, at, anchor }) => {
                        (Node::new(Kind::Seq(items), at), anchor)
                    }
                    Some(Frame::Map {
                        entries,
                        at,
                        anchor,
                        ..
                    }) => (Node::new(Kind::Map(entries), at), anchor),
                    None => continue,
                };
                builder.finish(node, anchor, &mark)?;
            }
        }
    }
    let root = builder.root.take();
    Ok(root.unwrap_or_else(|| Node::new(Kind::Null, Location::start_of(file))))
}

impl Builder<'_> {
    fn loc(&self, mark: &Marker) -> Location {
        Location {
            file: Arc::clone(self.file),
            line: mark.line().max(1),
            column: mark.col() + 1,
        }
    }

    fn limit(&self, mark: &Marker, what: &str) -> Diagnostic {
        Diagnostic::error(
            Code::Load007,
            self.loc(mark),
            format!("the document is too large: {what}"),
            format!(
                "a spec nests at most {MAX_DEPTH} levels and expands to at most {MAX_NODES} values and {} MiB of text; remove the deep nesting or the repeated aliases",
                MAX_EXPANDED_BYTES / (1024 * 1024)
            ),
        )
    }

    fn count(&mut self, n: usize, mark: &Marker) -> Result<(), Diagnostic> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(self.limit(mark, "aliases expand past the value limit"));
        }
        Ok(())
    }

    /// Text added to the tree, counted before it is copied.
    fn weigh(&mut self, bytes: usize, mark: &Marker) -> Result<(), Diagnostic> {
        self.bytes += bytes;
        if self.bytes > MAX_EXPANDED_BYTES {
            return Err(self.limit(
                mark,
                &format!(
                    "aliases expand past {} MiB of text",
                    MAX_EXPANDED_BYTES / (1024 * 1024)
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, mark: &Marker) -> Result<(), Diagnostic> {
        self.expect_value_position(mark)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.limit(mark, "nesting is too deep"));
        }
        self.count(1, mark)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Collections cannot be mapping keys: JSON, and so the schema, only has
    /// string keys.
    fn expect_value_position(&self, mark: &Marker) -> Result<(), Diagnostic> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(Diagnostic::error(
                Code::Load008,
                self.loc(mark),
                "a mapping key must be a plain string, not a list or mapping",
                "write the key as a plain word",
            ));
        }
        Ok(())
    }

    fn check_collection_tag(
        &self,
        tag: Option<&Tag>,
        expected: &str,
        mark: &Marker,
    ) -> Result<(), Diagnostic> {
        match tag {
            None => Ok(()),
            Some(t) if is_core_tag(t) && t.suffix == expected => Ok(()),
            Some(t) => Err(self.bad_tag(t, mark)),
        }
    }

    fn bad_tag(&self, tag: &Tag, mark: &Marker) -> Diagnostic {
        Diagnostic::error(
            Code::Load008,
            self.loc(mark),
            format!(
                "YAML tag '{}{}' is not supported in a spec",
                tag.handle, tag.suffix
            ),
            "remove the tag; quote the value if it must be a string",
        )
    }

    fn scalar(
        &mut self,
        value: String,
        style: TScalarStyle,
        tag: Option<&Tag>,
        mark: &Marker,
    ) -> Result<Node, Diagnostic> {
        let at = self.loc(mark);
        let value_bytes = value.len();
        let forced = match tag {
            None => None,
            Some(t) if is_core_tag(t) => Some(t.suffix.as_str()),
            Some(t) => return Err(self.bad_tag(t, mark)),
        };
        let kind = match (forced, style) {
            (Some("str"), _)
            | (
                None,
                TScalarStyle::SingleQuoted
                | TScalarStyle::DoubleQuoted
                | TScalarStyle::Literal
                | TScalarStyle::Folded,
            ) => Kind::Str(value),
            (None | Some("int" | "float" | "bool" | "null"), _) => match Yaml::from_str(&value) {
                Yaml::Null => Kind::Null,
                Yaml::Boolean(b) => Kind::Bool(b),
                Yaml::Integer(i) => Kind::Int(i),
                // Digits alone are an integer, whatever their size: one
                // past i64 is refused here, where it is written, rather
                // than read as a float.
                Yaml::Real(_) if is_decimal_integer(&value) => {
                    return Err(Diagnostic::error(
                        Code::Load008,
                        at,
                        format!(
                            "the integer {value} is beyond what a spec can hold (±9223372036854775807)"
                        ),
                        "use a smaller number: each field's range is in `scaleplan schema`",
                    ));
                }
                Yaml::Real(r) => match r.parse::<f64>() {
                    Ok(f) if f.is_finite() => Kind::Float(f),
                    _ => {
                        return Err(Diagnostic::error(
                            Code::Load008,
                            at,
                            format!("'{r}' is not a finite number"),
                            "use a plain decimal number",
                        ));
                    }
                },
                _ => Kind::Str(value),
            },
            (Some(other), _) => {
                return Err(Diagnostic::error(
                    Code::Load008,
                    at,
                    format!("YAML tag '!!{other}' is not supported in a spec"),
                    "remove the tag",
                ));
            }
        };
        self.count(1, mark)?;
        self.weigh(value_bytes, mark)?;
        Ok(Node::new(kind, at))
    }

    fn alias(&mut self, id: usize, mark: &Marker) -> Result<Node, Diagnostic> {
        let Some(target) = self.anchors.get(&id) else {
            return Err(Diagnostic::error(
                Code::Load003,
                self.loc(mark),
                "alias refers to an anchor that is not defined before it",
                "define the anchor (&name) before using the alias (*name)",
            ));
        };
        let (size, bytes) = (target.size(), target.text_bytes());
        // Counted first: the copy is what takes the memory.
        self.count(size, mark)?;
        self.weigh(bytes, mark)?;
        let Some(target) = self.anchors.get(&id) else {
            return Err(self.limit(mark, "an alias without its anchor"));
        };
        let mut node = target.clone();
        node.at = self.loc(mark);
        Ok(node)
    }

    fn finish(&mut self, node: Node, anchor: usize, mark: &Marker) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.deliver(node, mark)
    }

    fn deliver(&mut self, mut node: Node, mark: &Marker) -> Result<(), Diagnostic> {
        let file = Arc::clone(self.file);
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some((name, key_at)) => {
                    node.key_at = Some(key_at);
                    entries.push((name, node));
                }
                None => {
                    let name = match node.kind {
                        Kind::Str(s) => s,
                        Kind::Int(i) => i.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Null => "null".to_owned(),
                        Kind::Seq(_) | Kind::Map(_) => {
                            return Err(Diagnostic::error(
                                Code::Load008,
                                Location {
                                    file,
                                    line: mark.line(),
                                    column: mark.col() + 1,
                                },
                                "a mapping key must be a plain string, not a list or mapping",
                                "write the key as a plain word",
                            ));
                        }
                    };
                    if let Some((_, first)) = entries.iter().find(|(k, _)| *k == name) {
                        let first_at = first.key_at.clone().unwrap_or_else(|| first.at.clone());
                        return Err(Diagnostic::error(
                            Code::Load006,
                            node.at,
                            format!("duplicate key '{name}' in the same mapping"),
                            "remove one of the two entries; YAML keeps only one and it is unclear which you meant",
                        )
                        .with_related(first_at));
                    }
                    *key = Some((name, node.at));
                }
            },
        }
        Ok(())
    }
}

/// An optional sign and decimal digits: YAML's plain integer.
fn is_decimal_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_core_tag(tag: &Tag) -> bool {
    tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anchors holding long strings, repeated by aliases of aliases: few
    /// values, hundreds of megabytes once expanded. Refused at the alias
    /// that crosses the bound, before it is copied.
    #[test]
    fn aliases_of_long_strings_are_refused_by_their_expanded_text() {
        let long = "x".repeat(200_000);
        let doc = format!(
            "a: &a \"{long}\"\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        );
        let file = Arc::new(PathBuf::from("bomb.yaml"));
        let err = parse(&doc, &file).expect_err("an expansion past the bound");
        assert_eq!(err.code, Code::Load007, "{err:?}");
        assert!(err.message.contains("MiB of text"), "{}", err.message);
        assert_eq!(err.location.line, 2, "{err:?}");
        // The same text once, or a few times, is a spec.
        let fine = format!("a: &a \"{long}\"\nb: [*a, *a]\n");
        assert!(parse(&fine, &file).is_ok());
    }
}
