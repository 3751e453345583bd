//! Stage 8, cli: the command line. One file per command; `session` holds
//! the start they share (load, select, report diagnostics), and the exit
//! code is decided here and nowhere else.

mod args;
mod backup;
mod build;
mod capacity;
mod compose;
mod diff;
mod down;
mod init;
mod inspect;
mod list;
mod loadtest;
mod migrate;
mod observe;
mod promote;
mod restore;
mod schema;
mod serve;
mod session;
mod status;
mod up;
mod validate;

pub use args::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Format};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "scaleplan",
    version,
    about = "Compile phased scaling specs into PostgreSQL, PgBouncer, Redis, Compose and Terraform configuration"
)]
pub struct Cli {
    /// Output: text for people, json for tools (one document on stdout),
    /// markdown for `diff` (a pull-request comment).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a new project: an abstract base, a launch and a growth phase
    /// (commented, valid as written) and the schema they name.
    Init(init::Args),
    /// Check specs against the schema and the rules of each component.
    Validate(validate::Args),
    /// Render phases into out/<phase>/, or check out/ against the specs.
    Build(build::Args),
    /// Compare two phases (names or spec files) or two phases directories:
    /// rendered files, spec values and the transition plan.
    Diff(diff::Args),
    /// Estimate the concurrent users each phase carries, per resource.
    Capacity(capacity::Args),
    /// Print the JSON Schema of a phase spec, or check a copy of it.
    Schema(schema::Args),
    /// List the phases in rollout order.
    List(list::Args),
    /// Start a phase: as local processes with --native, else through Docker Compose.
    Up(up::Args),
    /// Move the deployment `up --native` runs to another phase while it
    /// serves, step by step, each step checked.
    Migrate(migrate::Args),
    /// Live load of the running deployment against its capacity model:
    /// utilisation per resource, the bottleneck, when to move on.
    Observe(observe::Args),
    /// Run the phase's k6 load test against the running deployment and
    /// set each resource's measured cost per user beside the model's.
    Loadtest(loadtest::Args),
    /// Take a backup (pgBackRest) of the running local deployment's primary.
    Backup(backup::Args),
    /// Restore the local deployment's database to a point in time from its
    /// backups and WAL archive; the replicas then clone it.
    Restore(restore::Args),
    /// Make a standby the primary when the primary is lost (local target or
    /// Compose), and point the standbys, PgBouncer and the proxy at it.
    Promote(promote::Args),
    /// Stop exactly the processes `up --native` recorded in the state directory.
    Down(down::Args),
    /// Say which recorded processes are up.
    Status(status::Args),
    /// Print a phase's spec after `extends`, with defaults filled in.
    Inspect(inspect::Args),
    /// Serve the phases over HTTP: JSON API, OpenAPI document, and a page
    /// with capacity bars and diagrams.
    Serve(serve::Args),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let f = cli.format;
    match &cli.command {
        Command::Init(a) => init::run(a),
        Command::Validate(a) => validate::run(f, a),
        Command::Build(a) => build::run(f, a),
        Command::Diff(a) => diff::run(f, a),
        Command::Capacity(a) => capacity::run(f, a),
        Command::Schema(a) => schema::run(a),
        Command::List(a) => list::run(f, a),
        Command::Up(a) => up::run(f, a),
        Command::Migrate(a) => migrate::run(f, a),
        Command::Observe(a) => observe::run(f, a),
        Command::Loadtest(a) => loadtest::run(f, a),
        Command::Backup(a) => backup::run(f, a),
        Command::Restore(a) => restore::run(f, a),
        Command::Promote(a) => promote::run(f, a),
        Command::Down(a) => down::run(a),
        Command::Status(a) => status::run(cli.format, a),
        Command::Inspect(a) => inspect::run(f, a),
        Command::Serve(a) => serve::run(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks its definitions only when a command is parsed: check
    /// them all at once, with every flag documented.
    #[test]
    fn every_command_is_well_formed_and_every_flag_has_help() {
        use clap::CommandFactory;
        let cli = Cli::command();
        cli.clone().debug_assert();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{} --{}: no help text",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
