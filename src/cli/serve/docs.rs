//! The documents only `serve` answers with (the others are the CLI's).

use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Health {
    pub ok: bool,
}

/// `GET .../files`: the rendered tree.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct FilesDoc {
    pub phase: String,
    pub files: Vec<FileEntry>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct FileEntry {
    pub path: String,
    pub bytes: usize,
}
