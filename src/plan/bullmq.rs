//! What BullMQ keeps in Redis, as far as a migration must know it: the
//! key sets of a queue's jobs not yet finished. The native migration counts
//! them and the Compose step's shell check does too, from this one list.

/// How a job set is stored: it decides the command that counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobSet {
    /// A list: LLEN.
    List,
    /// A sorted set: ZCARD.
    SortedSet,
}

impl JobSet {
    pub fn count_command(self) -> &'static str {
        match self {
            JobSet::List => "LLEN",
            JobSet::SortedSet => "ZCARD",
        }
    }
}

/// BullMQ 5's sets of jobs not yet finished, by key suffix
/// (`<prefix>:<queue>:<suffix>`). A job scheduler (a repeatable job)
/// always keeps its next run in `delayed`.
pub const UNFINISHED: [(&str, JobSet); 6] = [
    ("wait", JobSet::List),
    ("paused", JobSet::List),
    ("active", JobSet::List),
    ("delayed", JobSet::SortedSet),
    ("prioritized", JobSet::SortedSet),
    ("waiting-children", JobSet::SortedSet),
];

/// The hash BullMQ keeps for every queue (`<prefix>:<queue>:meta`): how a
/// queue is found.
pub const META_SUFFIX: &str = ":meta";
