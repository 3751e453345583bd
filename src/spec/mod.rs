//! Stage 1, spec: reading spec files (YAML and TOML) into located trees,
//! merging `extends` chains, and the typed spec they deserialize into, with
//! the catalogues the contract names (PostgreSQL keys, images).

pub mod extends;
pub mod images;
pub mod limits;
pub mod load;
pub mod node;
pub mod params;
mod toml;
pub mod types;
mod yaml;

pub use extends::Merged;
pub use load::SourceFile;
pub use node::SourceMap;
pub use types::Phase;

/// Phases built from JSON in unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Phase;
    use serde_json::Value;

    /// Overlays `b` on `a` key by key, as `extends` does.
    pub fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    /// A minimal valid phase with `overlays` merged on, in order.
    pub fn phase(overlays: &[Value]) -> Phase {
        let mut v = serde_json::json!({
            "project": "demo", "name": "a", "order": 1, "users": {"min": 1, "max": 10},
            "app": {"image": "x/app:1"},
            "postgres": {"database": "demo", "primary": {"cpu": 2, "memory_mb": 4096, "storage_gb": 10, "max_connections": 200}},
        });
        for o in overlays {
            merge(&mut v, o.clone());
        }
        super::types::derive_defaults(&mut v);
        serde_json::from_value(v).expect("a valid test phase")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// Hostile and broken documents end in a diagnostic or a value, never a
    /// panic.
    #[test]
    fn no_input_panics_the_loaders() {
        let file = Arc::new(PathBuf::from("x.yaml"));
        let mut inputs: Vec<String> = [
            "",
            "[",
            "{",
            "]",
            "- - -",
            "a: &x\n  b: *x",
            "&a [*a]",
            "*nope",
            "!!binary aGk=",
            "? [complex]\n: key",
            "a:\tb",
            "\u{feff}a: 1",
            "a: 'unterminated",
            "a: \"\\x\"",
            "---\n...\n---\n",
            "a: !custom 1",
            "%YAML 1.1\n---\na: 1",
            "a: .inf",
            "a: .nan",
            "a: 0x",
            "a: 99999999999999999999999",
            "{a: 1, a: 2}",
            "- a\n-b\n - c",
            "a:\n- 1\n  - 2",
            "&a a: 1",
            ": x",
            "a: |\n  text\n b",
            "[1, 2,, 3]",
            "a: *",
            "a: &",
            "? a",
            "a: b: c",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        inputs.push("[".repeat(10_000));
        inputs.push("a:\n".to_owned() + &" b:\n".repeat(500));
        inputs.push("x".repeat(100_000));
        for input in &inputs {
            let _ = yaml::parse(input, &file);
        }
        let toml_file = Arc::new(PathBuf::from("x.toml"));
        for input in [
            "",
            "[",
            "a = ",
            "a = [",
            "[[a]]\n[a]",
            "a.b = 1\na = 2",
            "a = 1979-05-27T07:32:00Z",
            "a = inf",
            "a = nan",
            "a = 0xZZ",
            "a = 99999999999999999999999",
            "a = { b = 1, b = 2 }",
            "\u{feff}a = 1",
            "a = \"\\u0000\"",
        ] {
            let _ = toml::parse(input, &toml_file);
        }
        let _ = toml::parse(&"a = [".repeat(5000), &toml_file);
    }
}
