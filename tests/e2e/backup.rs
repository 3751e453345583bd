//! Backups and point-in-time recovery on the local target: pgBackRest
//! archives the primary's WAL from the start; `scaleplan backup` takes a
//! backup; after a table is dropped, `scaleplan restore --to TIME` brings
//! back every row committed before TIME, and the replicas clone the
//! restored primary and stream again.

use crate::harness::{Phase, eventually, psql, secret};
use std::time::Duration;

fn sql(port: u16, query: &str) -> String {
    psql(
        port,
        "postgres",
        secret("SCALEPLAN_POSTGRES_PASSWORD"),
        "sikka",
        query,
    )
    .unwrap_or_else(|e| panic!("{query}: {e}"))
    .trim()
    .to_owned()
}

/// The database's clock, in UTC, as `restore --to` takes it.
const NOW: &str =
    "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

#[test]
fn a_dropped_table_is_restored_to_a_point_in_time_and_the_replicas_stream_again() {
    let mut phase = Phase::up_at("growth", 25000);
    let primary = phase.port("postgres-primary");
    sql(
        primary,
        "CREATE TABLE orders (n int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 1000)",
    );

    // Nothing to restore from yet: said, nothing touched.
    let none = phase.scaleplan(&["restore", "growth", "--to", "latest"]);
    assert_eq!(none.code, 1, "{}\n{}", none.stdout, none.stderr);
    assert!(none.stderr.contains("holds no backup"), "{}", none.stderr);
    assert!(
        none.stderr.contains("scaleplan backup growth"),
        "{}",
        none.stderr
    );

    let before_backups = sql(primary, NOW);
    let full = phase.scaleplan(&["backup", "growth", "--type", "full"]);
    assert_eq!(full.code, 0, "{}\n{}", full.stdout, full.stderr);
    assert!(full.stdout.contains("(full)"), "{}", full.stdout);

    // More rows after the backup: they come back from the WAL archive.
    sql(
        primary,
        "INSERT INTO orders SELECT generate_series(1001, 1500)",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let target = sql(primary, NOW);
    std::thread::sleep(Duration::from_millis(1100));
    sql(
        primary,
        "INSERT INTO orders SELECT generate_series(1501, 2000)",
    );
    sql(primary, "DROP TABLE orders");

    // A time the backups do not reach is refused, with the earliest.
    let early = phase.scaleplan(&["restore", "growth", "--to", &before_backups]);
    assert_eq!(early.code, 1, "{}\n{}", early.stdout, early.stderr);
    assert!(
        early.stderr.contains("before the earliest point"),
        "{}",
        early.stderr
    );
    // A time without its offset is refused: the server's zone would decide.
    let zoneless = phase.scaleplan(&["restore", "growth", "--to", "2026-01-01 00:00:00"]);
    assert_eq!(zoneless.code, 1, "{}", zoneless.stderr);
    assert!(
        zoneless.stderr.contains("with its offset"),
        "{}",
        zoneless.stderr
    );

    let restore = phase.scaleplan(&["restore", "growth", "--to", &target]);
    assert_eq!(restore.code, 0, "{}\n{}", restore.stdout, restore.stderr);
    eprintln!("{}", restore.stdout);
    assert!(
        restore
            .stdout
            .contains("taking a full backup of the restored primary"),
        "{}",
        restore.stdout
    );
    let primary = phase.port("postgres-primary");
    assert_eq!(
        sql(primary, "SELECT count(*), max(n) FROM orders"),
        "1500|1500"
    );
    // Every node's data from before the restore is kept aside.
    for node in [
        "postgres-primary",
        "postgres-replica-1",
        "postgres-replica-2",
    ] {
        let kept: Vec<_> = std::fs::read_dir(phase.state.join(node))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("data.before-restore-"))
            .collect();
        assert_eq!(kept.len(), 1, "{node}: {kept:?}");
        assert!(
            phase
                .state
                .join(node)
                .join(&kept[0])
                .join("global/pg_control")
                .exists(),
            "{node}"
        );
    }
    // The recovery settings are gone: a replica cloned from it inherits
    // none of them.
    assert_eq!(
        sql(
            primary,
            "SELECT count(*) FROM pg_file_settings WHERE name LIKE 'recovery_target%' OR name = 'restore_command'"
        ),
        "0"
    );

    // The replicas cloned the restored primary and stream what it writes.
    sql(primary, "INSERT INTO orders VALUES (5000)");
    for replica in ["postgres-replica-1", "postgres-replica-2"] {
        let port = phase.port(replica);
        eventually(
            &format!("{replica} streams the restored primary"),
            Duration::from_secs(30),
            || {
                psql(
                    port,
                    "postgres",
                    secret("SCALEPLAN_POSTGRES_PASSWORD"),
                    "sikka",
                    "SELECT count(*) FROM orders",
                )
                .is_ok_and(|c| c.trim() == "1501")
            },
        );
    }
    assert_eq!(
        sql(
            primary,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2"
    );
    // The new timeline is archived too: another backup works, and with a
    // full one this recent (the restore's) it is incremental.
    let incr = phase.scaleplan(&["backup", "growth"]);
    assert_eq!(incr.code, 0, "{}\n{}", incr.stdout, incr.stderr);
    assert!(incr.stdout.contains("(incr)"), "{}", incr.stdout);

    // The primary's data directory is lost: `up` does not start an empty
    // cluster in its place, and points at the backups; `restore --to
    // latest` brings back everything archived.
    // A row, and its WAL segment archived (archive_timeout_s does it
    // within a minute on a quiet server; the switch does it now).
    sql(primary, "INSERT INTO orders VALUES (5001)");
    let segment = sql(primary, "SELECT pg_walfile_name(pg_switch_wal())");
    eventually("the segment archived", Duration::from_secs(30), || {
        sql(
            primary,
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
        ) >= segment
    });
    phase.stop_checked();
    std::fs::remove_dir_all(phase.state.join("postgres-primary/data")).unwrap();
    let refused = phase.try_bring("growth", &[]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("scaleplan restore growth --to latest"),
        "{}",
        refused.stderr
    );
    let latest = phase.scaleplan(&["restore", "growth", "--to", "latest"]);
    assert_eq!(latest.code, 0, "{}\n{}", latest.stdout, latest.stderr);
    eprintln!("{}", latest.stdout);
    let primary = phase.port("postgres-primary");
    assert_eq!(
        sql(primary, "SELECT count(*), max(n) FROM orders"),
        "1502|5001"
    );
    phase.down();
}
