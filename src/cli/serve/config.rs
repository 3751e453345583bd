//! What every request reads, set once at start.

use std::path::PathBuf;

/// The largest request body accepted (a spec is a few KB).
pub const BODY_LIMIT: usize = 256 * 1024;

/// What every request reads.
pub struct Config {
    pub phases: PathBuf,
    pub state: PathBuf,
    pub token: Option<String>,
    pub mermaid_js: Option<Vec<u8>>,
    /// The embedded templates, parsed once: every rendering reuses them.
    pub renderer: crate::render::Renderer,
    /// `/openapi.json`, generated once: it depends on the binary only.
    pub openapi: String,
    /// How long a request waits for a worker before it is answered 503:
    /// a third of --request-timeout, so that a busy server says so before
    /// the request's own timeout (408) ends it.
    pub queue_wait: std::time::Duration,
    /// How long one request may plan, render or observe before it is
    /// answered 503: what --request-timeout leaves after the queue, so the
    /// 408 stays for requests slow to arrive.
    pub work_timeout: std::time::Duration,
}
