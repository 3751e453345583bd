//! What every command shares: the output format, the arguments several
//! take, and the exit codes.

use clap::ValueEnum;
use std::path::PathBuf;

/// Exit codes, as terraform plan and helm-diff use them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// For `diff`: a pull-request comment (diagnostics print as text).
    Markdown,
}

/// The phases directory, which every command that reads specs takes.
#[derive(clap::Args, Debug, Clone)]
pub struct PhasesDir {
    /// Directory of the phase specs (YAML or TOML, one phase per file).
    #[arg(
        id = "phases",
        long = "phases",
        value_name = "DIR",
        default_value = "phases"
    )]
    pub dir: PathBuf,
}

/// A deployment `up --native` runs, and the phases directory it is
/// planned from: what the commands that act on it take.
#[derive(clap::Args, Debug)]
pub struct Deployment {
    #[command(flatten)]
    pub phases: PhasesDir,
    /// The state directory of the deployment (`up --native`).
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    pub state: PathBuf,
}

/// Template overrides, for commands that render.
#[derive(clap::Args, Debug, Clone)]
pub struct Templates {
    /// Directory whose files replace the embedded templates of the same
    /// path (e.g. DIR/redis/redis.conf); the others stay embedded.
    #[arg(id = "templates", long = "templates", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
