//! The JSON Schema of a phase, generated from the spec types, and the check
//! of every merged document against it. Each violation becomes a located
//! diagnostic: the instance path of the error is looked up in the source map.

use crate::diag::{Code, Diagnostic};
use crate::spec::Merged;
use crate::spec::types::{self, Phase};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

/// The schema as published in schemas/phase.schema.json.
pub fn schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Phase)).unwrap_or(Value::Null);
    bound_integers(&mut schema);
    schema
}

/// schemars names an unsigned field's width as a `format` (uint32), which
/// JSON Schema does not check: a value past it (`max: 99999999999999999999999`)
/// passed the schema and failed only when loaded, unlocated. Each such
/// field gets the `maximum` its type holds, so the check locates it.
fn bound_integers(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let width = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some(u64::from(u8::MAX)),
                Some("uint16") => Some(u64::from(u16::MAX)),
                Some("uint32") => Some(u64::from(u32::MAX)),
                _ => None,
            };
            if let Some(max) = width {
                let bounded = map
                    .get("maximum")
                    .and_then(Value::as_u64)
                    .map_or(max, |m| m.min(max));
                map.insert("maximum".to_owned(), bounded.into());
            }
            for v in map.values_mut() {
                bound_integers(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// The schema file's exact text: pretty JSON with a final newline, so the
/// committed file diffs cleanly.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

pub struct SchemaCheck {
    schema: Value,
    validator: jsonschema::Validator,
}

impl SchemaCheck {
    pub fn new() -> anyhow::Result<Self> {
        let schema = schema();
        let validator = jsonschema::draft202012::new(&schema)
            .map_err(|e| anyhow::anyhow!("the generated schema is invalid: {e}"))?;
        Ok(SchemaCheck { schema, validator })
    }

    /// Every violation in the document, each located.
    pub fn check(&self, doc: &Merged) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for error in self.validator.iter_errors(&doc.value) {
            let pointer = error.instance_path().as_str().to_owned();
            let instance = error.instance().clone().into_owned();
            self.describe(doc, &pointer, &instance, error.kind(), &mut out);
        }
        out
    }

    fn describe(
        &self,
        doc: &Merged,
        pointer: &str,
        instance: &Value,
        kind: &ValidationErrorKind,
        out: &mut Vec<Diagnostic>,
    ) {
        let at = doc.sources.value_at(pointer);
        let field = display_path(pointer);
        let diag = match kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = allowed_keys(&self.schema, pointer);
                for key in unexpected {
                    let key_pointer =
                        format!("{pointer}/{}", crate::spec::node::escape_pointer(key));
                    let help = match closest(key, &known) {
                        Some(best) => format!(
                            "did you mean '{best}'? known keys here: {}",
                            known.join(", ")
                        ),
                        None => format!("known keys here: {}", known.join(", ")),
                    };
                    out.push(Diagnostic::error(
                        Code::Sch001,
                        doc.sources.key_at(&key_pointer),
                        format!(
                            "unknown key '{key}' in {}",
                            if field.is_empty() { "the spec" } else { &field }
                        ),
                        help,
                    ));
                }
                return;
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(set) => set
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                Diagnostic::error(
                    Code::Sch002,
                    at,
                    format!(
                        "{field} must be {} {expected}, found {}",
                        article(&expected),
                        describe_value(instance)
                    ),
                    format!("write {field} as {} {expected}", article(&expected)),
                )
            }
            ValidationErrorKind::Enum { options } => {
                let allowed: Vec<String> = options
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let suggestion = instance
                    .as_str()
                    .and_then(|s| closest(s, &allowed))
                    .map(|b| format!("did you mean '{b}'? "))
                    .unwrap_or_default();
                Diagnostic::error(
                    Code::Sch003,
                    at,
                    format!(
                        "{field} is {}, which is not one of the allowed values",
                        describe_value(instance)
                    ),
                    format!("{suggestion}allowed: {}", allowed.join(", ")),
                )
            }
            ValidationErrorKind::Minimum { limit } => range(at, &field, instance, ">=", limit),
            ValidationErrorKind::ExclusiveMinimum { limit } => {
                range(at, &field, instance, ">", limit)
            }
            ValidationErrorKind::Maximum { limit } => range(at, &field, instance, "<=", limit),
            ValidationErrorKind::ExclusiveMaximum { limit } => {
                range(at, &field, instance, "<", limit)
            }
            ValidationErrorKind::Pattern { pattern } => {
                pattern_error(at, &field, instance, pattern)
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or("?");
                let whole = if field.is_empty() {
                    name.to_owned()
                } else {
                    format!("{field}.{name}")
                };
                Diagnostic::error(
                    Code::Sch006,
                    at,
                    format!("missing required key {whole}"),
                    format!("add {whole} (run `scaleplan schema` for its description)"),
                )
            }
            ValidationErrorKind::AnyOf { context }
            | ValidationErrorKind::OneOfNotValid { context } => {
                // An optional value is "anyOf [T, null]", a parameter is
                // "bool | number | text". The one branch that failed on more
                // than the value's own type (a pattern, a range, a field
                // inside) says what is really wrong: report its errors.
                let telling: Vec<&Vec<jsonschema::ValidationError<'static>>> = context
                    .iter()
                    .filter(|errors| {
                        !errors.iter().all(|e| {
                            matches!(e.kind(), ValidationErrorKind::Type { .. })
                                && e.instance_path().as_str() == pointer
                        })
                    })
                    .collect();
                if let [errors] = telling.as_slice() {
                    for e in errors.iter() {
                        let inner = e.instance().clone().into_owned();
                        self.describe(doc, e.instance_path().as_str(), &inner, e.kind(), out);
                    }
                    return;
                }
                Diagnostic::error(
                    Code::Sch002,
                    at,
                    format!("{field} has the wrong type: {}", describe_value(instance)),
                    if pointer.starts_with("/postgres/parameters/") {
                        "a parameter value is a boolean, a number or a one-line string".to_owned()
                    } else {
                        "run `scaleplan schema` to see the accepted types".to_owned()
                    },
                )
            }
            other => Diagnostic::error(
                Code::Sch007,
                at,
                format!("{field}: {other:?}")
                    .chars()
                    .take(300)
                    .collect::<String>(),
                "run `scaleplan schema` to see what is accepted here",
            ),
        };
        out.push(diag);
    }
}

fn range(
    at: crate::diag::Location,
    field: &str,
    instance: &Value,
    op: &str,
    limit: &Value,
) -> Diagnostic {
    Diagnostic::error(
        Code::Sch004,
        at,
        format!("{field} is {instance}, but it must be {op} {limit}"),
        format!("set {field} to a value {op} {limit}"),
    )
}

/// Patterns have a code of their own when breaking them means something
/// specific: a name that cannot be a host name, or text that could add a
/// line to a generated config file.
fn pattern_error(
    at: crate::diag::Location,
    field: &str,
    instance: &Value,
    pattern: &str,
) -> Diagnostic {
    let shown = describe_value(instance);
    if pattern == types::LABEL_PATTERN {
        Diagnostic::error(
            Code::Name001,
            at,
            format!(
                "{field} is {shown}, which is not a valid DNS label; it becomes a host name, a service name and a directory under out/"
            ),
            "use lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit",
        )
    } else if pattern == types::TEXT_PATTERN
        || instance.as_str().is_some_and(|s| !types::is_text(s))
    {
        Diagnostic::error(
            Code::Safe001,
            at,
            format!(
                "{field} contains a line break or control character, which could add a line or directive to a generated config file"
            ),
            "keep the value on one line, without control characters",
        )
    } else {
        let what = match pattern {
            types::IDENT_PATTERN => {
                "a lowercase identifier (letters, digits, '_'), at most 63 characters"
            }
            types::IMAGE_PATTERN => "an image reference such as ghcr.io/org/app:1.2.3",
            types::CLOUD_REGION_PATTERN => "a region such as eu-west-1",
            types::PGBOUNCER_VERSION_PATTERN => "a version as major.minor, such as 1.23",
            types::DB_CLASS_PATTERN => "an RDS instance class such as db.r6g.xlarge",
            types::CACHE_CLASS_PATTERN => "an ElastiCache node type such as cache.r7g.large",
            types::BACKUP_WINDOW_PATTERN => {
                "a daily window in UTC as HH:MM-HH:MM (two digits each), such as 03:00-04:00"
            }
            _ => "a value in the required format",
        };
        Diagnostic::error(
            Code::Sch005,
            at,
            format!("{field} is {shown}, which is not {what}"),
            format!("write {field} as {what}"),
        )
    }
}

/// `/postgres/primary/cpu` -> `postgres.primary.cpu`, `/services/0/name` ->
/// `services[0].name`: how users write paths in help text.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.chars().all(|c| c.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn describe_value(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!(
            "the string {}",
            serde_json::to_string(s).unwrap_or_default()
        ),
        Value::Object(_) => "a mapping".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    };
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

/// The property names the schema allows at an instance pointer.
fn allowed_keys(schema: &Value, pointer: &str) -> Vec<String> {
    let mut node = schema;
    for segment in pointer.split('/').skip(1) {
        node = resolve(schema, node);
        let next = if segment.chars().all(|c| c.is_ascii_digit()) {
            node.get("items")
        } else {
            node.get("properties").and_then(|p| p.get(segment))
        };
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    let node = resolve(schema, node);
    node.get("properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows `$ref`s and picks the object branch of `anyOf` (schemars writes
/// `Option<T>` as `anyOf: [T, null]`).
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let path = reference.trim_start_matches('#');
            match root.pointer(path) {
                Some(target) => node = target,
                None => return node,
            }
        } else if let Some(branches) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Value::as_array)
        {
            match branches
                .iter()
                .find(|b| b.get("$ref").is_some() || b.get("properties").is_some())
            {
                Some(b) => node = b,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

/// The candidate closest to `word` by edit distance, if close enough to be
/// a plausible typo.
pub fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let keys = vec!["default_pool_size".to_owned(), "pool_mode".to_owned()];
        assert_eq!(
            closest("default_pool_sise", &keys),
            Some("default_pool_size")
        );
        assert_eq!(closest("pool_mod", &keys), Some("pool_mode"));
        assert_eq!(closest("zzz", &keys), None);
    }

    #[test]
    fn display_path_reads_like_the_spec() {
        assert_eq!(
            display_path("/postgres/primary/cpu"),
            "postgres.primary.cpu"
        );
        assert_eq!(display_path("/services/0/name"), "services[0].name");
        assert_eq!(display_path(""), "");
    }

    #[test]
    fn allowed_keys_follow_refs() {
        let s = schema();
        let keys = allowed_keys(&s, "/pgbouncer");
        assert!(keys.contains(&"default_pool_size".to_owned()), "{keys:?}");
        let keys = allowed_keys(&s, "/redis/sentinel");
        assert!(keys.contains(&"quorum".to_owned()), "{keys:?}");
        let keys = allowed_keys(&s, "/services/0");
        assert!(keys.contains(&"uses".to_owned()), "{keys:?}");
    }
}
