//! TOML -> `Node`. toml's `DeTable` keeps byte spans for every key and value,
//! which are turned into line and column here.

use super::limits::{MAX_DEPTH, MAX_NODES};
use super::node::{Kind, Node};
use crate::diag::{Code, Diagnostic, Location, line_col};
use std::path::PathBuf;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub fn parse(text: &str, file: &Arc<PathBuf>) -> Result<Node, Vec<Diagnostic>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let at = locate(text, file, e.span().map_or(0, |s| s.start));
                let message = e.message().trim().trim_end_matches('.').replace('\n', "; ");
                let code = if message.contains("duplicate key") {
                    Code::Load006
                } else {
                    Code::Load004
                };
                Diagnostic::error(
                    code,
                    at,
                    format!("TOML syntax error: {message}"),
                    "fix the TOML syntax at this position (quotes, '=' between key and value, brackets)",
                )
            })
            .collect());
    }
    let mut converter = Converter {
        text,
        file,
        nodes: 0,
    };
    let span = table.span();
    converter
        .table(table.into_inner(), span.start, 0)
        .map_err(|d| vec![d])
}

fn locate(text: &str, file: &Arc<PathBuf>, offset: usize) -> Location {
    let (line, column) = line_col(text, offset);
    Location {
        file: Arc::clone(file),
        line,
        column,
    }
}

struct Converter<'a> {
    text: &'a str,
    file: &'a Arc<PathBuf>,
    nodes: usize,
}

impl Converter<'_> {
    fn at(&self, offset: usize) -> Location {
        locate(self.text, self.file, offset)
    }

    fn guard(&mut self, offset: usize, depth: usize) -> Result<(), Diagnostic> {
        self.nodes += 1;
        if depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return Err(Diagnostic::error(
                Code::Load007,
                self.at(offset),
                "the document is too large or nested too deeply",
                format!(
                    "a spec nests at most {MAX_DEPTH} levels and holds at most {MAX_NODES} values"
                ),
            ));
        }
        Ok(())
    }

    fn table(
        &mut self,
        table: DeTable<'_>,
        offset: usize,
        depth: usize,
    ) -> Result<Node, Diagnostic> {
        self.guard(offset, depth)?;
        let mut entries = Vec::with_capacity(table.len());
        for (key, value) in table {
            let key_at = self.at(key.span().start);
            let mut node = self.value(value, depth + 1)?;
            node.key_at = Some(key_at);
            entries.push((key.into_inner().into_owned(), node));
        }
        Ok(Node::new(Kind::Map(entries), self.at(offset)))
    }

    fn value(&mut self, value: Spanned<DeValue<'_>>, depth: usize) -> Result<Node, Diagnostic> {
        let span = value.span();
        let at = self.at(span.start);
        let kind = match value.into_inner() {
            DeValue::Table(t) => return self.table(t, span.start, depth),
            DeValue::Array(items) => {
                self.guard(span.start, depth)?;
                let mut nodes = Vec::new();
                for item in items {
                    nodes.push(self.value(item, depth + 1)?);
                }
                Kind::Seq(nodes)
            }
            DeValue::String(s) => Kind::Str(s.into_owned()),
            DeValue::Boolean(b) => Kind::Bool(b),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Kind::Int(n),
                Err(_) => {
                    return Err(unsupported(
                        at,
                        format!("integer '{}' is out of range", i.as_str()),
                    ));
                }
            },
            DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
                Ok(x) if x.is_finite() => Kind::Float(x),
                _ => {
                    return Err(unsupported(
                        at,
                        format!("'{}' is not a finite number", f.as_str()),
                    ));
                }
            },
            DeValue::Datetime(d) => {
                return Err(unsupported(
                    at,
                    format!("dates and times ('{d}') have no meaning in a spec"),
                ));
            }
        };
        self.guard(span.start, depth)?;
        Ok(Node::new(kind, at))
    }
}

fn unsupported(at: Location, message: String) -> Diagnostic {
    Diagnostic::error(
        Code::Load008,
        at,
        message,
        "use a plain string, integer or decimal number",
    )
}
