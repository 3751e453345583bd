//! Integration tests: the real binary on real files.

mod bad_input;
mod build;
mod capacity;
mod compose_images;
mod compose_schema;
mod diagrams;
mod diff;
mod init;
mod layering;
mod migrate;
mod monitoring;
mod ports;
mod recovery;
mod replacement;
mod robustness;
mod serve;
mod snapshots;
mod terraform;
