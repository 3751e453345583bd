//! Reading spec files: YAML and TOML into located trees, `extends` chains
//! merged, and the typed spec they deserialize into.

pub mod extends;
pub mod load;
pub mod node;
mod toml;
pub mod types;
mod yaml;

pub use extends::Merged;
pub use load::SourceFile;
pub use node::SourceMap;
pub use types::Phase;

/// Deepest nesting a spec may use. Real specs nest four levels; the bound
/// keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 64;
/// Most values a spec may expand to, aliases included (an alias bomb doubles
/// at every level and would otherwise take all memory).
pub const MAX_NODES: usize = 100_000;
/// Largest spec file read; a phase spec is a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Parses YAML text into JSON with the same loader specs use (bounded
/// depth and alias expansion). Used to read generated YAML back in checks.
pub fn yaml_to_json(text: &str, name: &str) -> Result<serde_json::Value, crate::diag::Diagnostic> {
    let file = std::sync::Arc::new(std::path::PathBuf::from(name));
    yaml::parse(text, &file).map(|node| node.into_json().0)
}
