//! Bounds on what a spec file may be, so hostile input cannot exhaust
//! the stack or memory.

/// Deepest nesting a spec may use. Real specs nest four levels; the bound
/// keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 64;
/// Most values a spec may expand to, aliases included (an alias bomb doubles
/// at every level and would otherwise take all memory).
pub const MAX_NODES: usize = 100_000;
/// Largest spec file read; a phase spec is a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most bytes of text a spec may expand to, aliases included: a few
/// anchors holding long strings, repeated by aliases of aliases, stay under
/// the value count but would take hundreds of megabytes (an alias repeats
/// its anchor's text in the tree built from it).
pub const MAX_EXPANDED_BYTES: usize = 2 * 1024 * 1024;
