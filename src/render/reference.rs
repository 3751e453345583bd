//! docs/reference.md: the spec's field reference, generated from the JSON
//! Schema (which is generated from the types), so the reference can never
//! describe a field the loader does not take. A section per object, a row
//! per field: its type, whether it is required or its default, its bounds
//! and its description.

use serde_json::{Map, Value};
use std::fmt::Write;

/// The reference for `schema` (the phase schema as a JSON value).
pub fn markdown(schema: &Value) -> String {
    let defs = schema.get("$defs").and_then(Value::as_object);
    let mut out = String::from(
        "# Spec reference\n\n\
         Every field of a phase spec, generated from `schemas/phase.schema.json` by\n\
         `scaleplan schema --reference` (a test fails when this page is stale; do not\n\
         edit it by hand). How phases extend each other, the rules and what each\n\
         field does to the generated files: [spec.md](spec.md).\n",
    );
    section(&mut out, "Phase", "The top level of a phase spec.", schema);
    let mut values = Vec::new();
    for (name, def) in defs.into_iter().flatten() {
        if def.get("properties").is_some() {
            section(&mut out, name, &description(def), def);
        } else {
            values.push((name, def));
        }
    }
    out.push_str("\n## Value types\n\n| type | values |\n|---|---|\n");
    for (name, def) in values {
        let _ = writeln!(
            out,
            "| <a id=\"{}\"></a>{name} | {} |",
            anchor(name),
            cell(&value_type(def))
        );
    }
    out
}

fn section(out: &mut String, name: &str, about: &str, def: &Value) {
    let _ = write!(out, "\n## {name}\n\n");
    if !about.is_empty() {
        let _ = write!(out, "{about}\n\n");
    }
    out.push_str(
        "| field | type | required / default | bounds | description |\n|---|---|---|---|---|\n",
    );
    let required: Vec<&str> = def
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = Map::new();
    let props = def
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (field, p) in props {
        let default = if required.contains(&field.as_str()) {
            "required".to_owned()
        } else {
            p.get("default")
                .map_or_else(|| "unset".to_owned(), show_default)
        };
        let _ = writeln!(
            out,
            "| `{field}` | {} | {} | {} | {} |",
            cell(&type_of(p)),
            cell(&default),
            cell(&bounds(p)),
            cell(&description(p))
        );
    }
}

/// A link to a definition's section or row.
fn anchor(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn type_of(p: &Value) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#{})", anchor(name));
    }
    if let Some(any) = p.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<String> = any.iter().map(type_of).collect();
        return parts.join(" or ");
    }
    if let Some(values) = p.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| {
                format!(
                    "`{}`",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    let kinds: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let shown: Vec<String> = kinds
        .iter()
        .map(|k| match *k {
            "array" => format!(
                "list of {}",
                p.get("items").map_or_else(|| "values".to_owned(), type_of)
            ),
            "object" => match p.get("additionalProperties") {
                Some(v @ Value::Object(_)) => format!("map of {}", type_of(v)),
                _ => "object".to_owned(),
            },
            other => other.to_owned(),
        })
        .collect();
    if shown.is_empty() {
        "any".to_owned()
    } else {
        shown.join(" or ")
    }
}

/// A definition without fields: its enum, pattern or type, and what it
/// means.
fn value_type(def: &Value) -> String {
    let mut s = type_of(def);
    let b = bounds(def);
    if !b.is_empty() {
        s.push_str(&format!("; {b}"));
    }
    let d = description(def);
    if !d.is_empty() {
        s.push_str(&format!(": {d}"));
    }
    s
}

fn bounds(p: &Value) -> String {
    let mut out = Vec::new();
    let num = |k: &str| p.get(k).filter(|v| v.is_number()).map(Value::to_string);
    match (num("minimum"), num("exclusiveMinimum"), num("maximum")) {
        (Some(lo), _, Some(hi)) => out.push(format!("{lo} to {hi}")),
        (Some(lo), _, None) => out.push(format!(">= {lo}")),
        (None, Some(lo), Some(hi)) => out.push(format!("> {lo}, <= {hi}")),
        (None, Some(lo), None) => out.push(format!("> {lo}")),
        (None, None, Some(hi)) => out.push(format!("<= {hi}")),
        (None, None, None) => {}
    }
    for (k, label) in [
        ("minLength", "length >="),
        ("maxLength", "length <="),
        ("minItems", "items >="),
        ("maxItems", "items <="),
    ] {
        if let Some(v) = num(k) {
            out.push(format!("{label} {v}"));
        }
    }
    if let Some(pattern) = p.get("pattern").and_then(Value::as_str) {
        out.push(format!("matches `{pattern}`"));
    }
    out.join("; ")
}

fn show_default(v: &Value) -> String {
    match v {
        // A whole block's default is its fields' defaults, listed in its
        // own section.
        Value::Object(m) if !m.is_empty() => "its fields' defaults".to_owned(),
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

fn description(p: &Value) -> String {
    p.get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text safe inside a table cell: '|' would end it.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_type_default_bounds_and_meaning() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"$ref": "#/$defs/Label", "description": "The\nname."},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 15, "default": 0},
                "mode": {"anyOf": [{"$ref": "#/$defs/Mode"}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "$defs": {
                "Label": {"type": "string", "pattern": "^[a-z]+$", "description": "a | b"},
                "Mode": {"type": "string", "enum": ["a", "b"]}
            }
        });
        let md = markdown(&schema);
        assert!(
            md.contains("| `name` | [Label](#label) | required |  | The name. |"),
            "{md}"
        );
        assert!(
            md.contains("| `replicas` | integer | `0` | 0 to 15 |  |"),
            "{md}"
        );
        assert!(
            md.contains("| `mode` | [Mode](#mode) or null | unset |"),
            "{md}"
        );
        assert!(md.contains("| `tags` | list of string |"), "{md}");
        assert!(md.contains("matches `^[a-z]+$`: a \\| b |"), "{md}");
        assert!(md.contains("`a`, `b`"), "{md}");
    }
}
