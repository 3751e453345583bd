//! The postgresql.conf keys a spec may override in `postgres.parameters`,
//! which of them a spec field controls instead, and what it takes for a
//! change to each to apply. Part of the contract: the rules check
//! `parameters` against this list, and the plan tells a reload from a
//! restart with it.

use crate::spec::types::{ParamValue, Postgres};
use serde::Serialize;

/// What it takes for a changed setting to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Apply {
    /// `postmaster` context: the server must restart.
    Restart,
    /// `sighup` or session context: `pg_ctl reload` is enough.
    Reload,
}

use Apply::{Reload, Restart};

/// Settings users may override, with their context as PostgreSQL 13-17
/// define it (pg_settings.context). Sorted by name.
pub const KNOWN: &[(&str, Apply)] = &[
    ("archive_command", Reload),
    ("archive_mode", Restart),
    ("archive_timeout", Reload),
    ("authentication_timeout", Reload),
    ("autovacuum", Reload),
    ("autovacuum_analyze_scale_factor", Reload),
    ("autovacuum_analyze_threshold", Reload),
    ("autovacuum_max_workers", Restart),
    ("autovacuum_naptime", Reload),
    ("autovacuum_vacuum_cost_delay", Reload),
    ("autovacuum_vacuum_cost_limit", Reload),
    ("autovacuum_vacuum_scale_factor", Reload),
    ("autovacuum_vacuum_threshold", Reload),
    ("autovacuum_work_mem", Reload),
    ("bgwriter_delay", Reload),
    ("bgwriter_lru_maxpages", Reload),
    ("bgwriter_lru_multiplier", Reload),
    ("checkpoint_completion_target", Reload),
    ("checkpoint_timeout", Reload),
    ("client_min_messages", Reload),
    ("commit_delay", Reload),
    ("cpu_tuple_cost", Reload),
    ("deadlock_timeout", Reload),
    ("default_statistics_target", Reload),
    ("default_transaction_isolation", Reload),
    ("effective_cache_size", Reload),
    ("effective_io_concurrency", Reload),
    ("full_page_writes", Reload),
    ("hot_standby_feedback", Reload),
    ("huge_pages", Restart),
    ("idle_in_transaction_session_timeout", Reload),
    ("idle_session_timeout", Reload),
    ("jit", Reload),
    ("lock_timeout", Reload),
    ("log_autovacuum_min_duration", Reload),
    ("log_checkpoints", Reload),
    ("log_connections", Reload),
    ("log_destination", Reload),
    ("log_disconnections", Reload),
    ("log_line_prefix", Reload),
    ("log_lock_waits", Reload),
    ("log_min_duration_statement", Reload),
    ("log_min_error_statement", Reload),
    ("log_min_messages", Reload),
    ("log_statement", Reload),
    ("log_temp_files", Reload),
    ("log_timezone", Reload),
    ("logging_collector", Restart),
    ("maintenance_io_concurrency", Reload),
    ("maintenance_work_mem", Reload),
    ("max_files_per_process", Restart),
    ("max_locks_per_transaction", Restart),
    ("max_logical_replication_workers", Restart),
    ("max_parallel_maintenance_workers", Reload),
    ("max_parallel_workers", Reload),
    ("max_parallel_workers_per_gather", Reload),
    ("max_pred_locks_per_transaction", Restart),
    ("max_prepared_transactions", Restart),
    ("max_replication_slots", Restart),
    ("max_slot_wal_keep_size", Reload),
    ("max_standby_archive_delay", Reload),
    ("max_standby_streaming_delay", Reload),
    ("max_wal_senders", Restart),
    ("max_wal_size", Reload),
    ("max_worker_processes", Restart),
    ("min_wal_size", Reload),
    ("password_encryption", Reload),
    ("random_page_cost", Reload),
    ("seq_page_cost", Reload),
    ("shared_buffers", Restart),
    ("shared_preload_libraries", Restart),
    ("ssl", Reload),
    ("ssl_cert_file", Reload),
    ("ssl_key_file", Reload),
    ("statement_timeout", Reload),
    ("superuser_reserved_connections", Restart),
    ("synchronous_commit", Reload),
    ("synchronous_standby_names", Reload),
    ("tcp_keepalives_count", Reload),
    ("tcp_keepalives_idle", Reload),
    ("tcp_keepalives_interval", Reload),
    ("temp_file_limit", Reload),
    ("timezone", Reload),
    ("track_activity_query_size", Restart),
    ("track_functions", Reload),
    ("track_io_timing", Reload),
    ("wal_buffers", Restart),
    ("wal_compression", Reload),
    ("wal_keep_size", Reload),
    ("wal_level", Restart),
    ("wal_log_hints", Restart),
    ("wal_receiver_timeout", Reload),
    ("wal_sender_timeout", Reload),
    ("wal_writer_delay", Reload),
    ("work_mem", Reload),
];

/// Keys a spec field or the topology decides; overriding them in
/// `parameters` would contradict the spec, so it is an error (PG002) that
/// names the field to change instead.
pub const CONTROLLED: &[(&str, &str)] = &[
    (
        "archive_command",
        "postgres.backup (pgBackRest archives the WAL)",
    ),
    (
        "archive_mode",
        "postgres.backup (pgBackRest archives the WAL)",
    ),
    ("archive_timeout", "postgres.backup.archive_timeout_s"),
    ("config_file", "the target's layout"),
    ("data_directory", "the target's layout"),
    ("hba_file", "the target's layout"),
    ("hot_standby", "postgres.read_replicas"),
    ("listen_addresses", "the target's addresses"),
    ("max_connections", "postgres.primary.max_connections"),
    ("port", "the target's addresses"),
    (
        "primary_conninfo",
        "postgres.read_replicas (written at bring-up)",
    ),
    ("primary_slot_name", "postgres.replication_slots"),
];

pub fn known(name: &str) -> Option<Apply> {
    KNOWN
        .binary_search_by(|(k, _)| k.cmp(&name))
        .ok()
        .map(|i| KNOWN[i].1)
}

pub fn controlled_by(name: &str) -> Option<&'static str> {
    CONTROLLED
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, by)| *by)
}

/// PostgreSQL's default, kept out of pool budgets.
pub const SUPERUSER_RESERVED: u32 = 3;

/// The superuser reserve actually in force (users may raise it).
pub fn superuser_reserved(pg: &Postgres) -> u32 {
    match pg.parameters.get("superuser_reserved_connections") {
        Some(ParamValue::Int(n)) => u32::try_from(*n).unwrap_or(SUPERUSER_RESERVED),
        _ => SUPERUSER_RESERVED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_is_sorted_so_binary_search_works() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(known("shared_buffers"), Some(Restart));
        assert_eq!(known("work_mem"), Some(Reload));
        assert_eq!(known("no_such_thing"), None);
    }
}
