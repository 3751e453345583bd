//! A dead primary, recovered: `kill -9` the primary under a writer, then
//! `scaleplan promote`. Writes resume through the same DATABASE_URL (the
//! proxy's), every acknowledged row is on the new primary but for the
//! commits `promote` reports lost (the standbys are made to fall behind
//! first, so some are), the other standby streams from it, and the old
//! primary rejoins only through `up --reseed`.

use crate::harness::{Phase, eventually, psql, secret};
use scaleplan::native::migrate::promote::lsn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn app(port: u16, sql: &str) -> Result<String, String> {
    psql(
        port,
        "app",
        secret("SCALEPLAN_APP_DB_PASSWORD"),
        "sikka",
        sql,
    )
}

fn superuser(port: u16, sql: &str) -> String {
    psql(
        port,
        "postgres",
        secret("SCALEPLAN_POSTGRES_PASSWORD"),
        "sikka",
        sql,
    )
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn a_killed_primary_is_replaced_by_the_most_advanced_standby() {
    let mut phase = Phase::up_at("growth", 29000);
    // The app's address: the proxy's write port.
    let url = phase.port("pg-proxy");
    app(url, "CREATE TABLE ledger (n int PRIMARY KEY)").unwrap();

    // A writer through the app's address, one row per transaction; a row
    // counts as acknowledged once its INSERT returned.
    let acked = Arc::new(Mutex::new(Vec::<u32>::new()));
    let failed = Arc::new(Mutex::new(0u32));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                n += 1;
                match app(url, &format!("INSERT INTO ledger VALUES ({n})")) {
                    Ok(_) => acked.lock().unwrap().push(n),
                    Err(_) => {
                        *failed.lock().unwrap() += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })
    };
    eventually("rows written", Duration::from_secs(30), || {
        acked.lock().unwrap().len() >= 50
    });

    // The primary stops sending WAL (its WAL senders paused) while the
    // writer goes on: it acknowledges commits no standby has, as
    // asynchronous replication does when the standbys fall behind. Then
    // the primary dies, all its processes at once (kill -9 of its group).
    let primary_pid = phase.proc("postgres-primary").pid.to_string();
    let out = std::process::Command::new("pgrep")
        .args(["-P", &primary_pid, "-f", "walsender"])
        .output()
        .unwrap();
    let senders: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(senders.len(), 2, "a WAL sender per standby");
    for pid in &senders {
        assert!(
            std::process::Command::new("kill")
                .args(["-STOP", pid])
                .status()
                .unwrap()
                .success()
        );
    }
    let paused_at = acked.lock().unwrap().len();
    eventually(
        "commits the standbys do not have",
        Duration::from_secs(30),
        || acked.lock().unwrap().len() >= paused_at + 20,
    );
    phase.kill_group("postgres-primary");
    // Each server process of PostgreSQL's is a session of its own, out of
    // the postmaster's group: the paused senders are killed one by one
    // (a SIGCONT would let them send what they hold first).
    for pid in &senders {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    // A restore to `latest` would throw away the WAL the standbys hold
    // beyond the archive: refused, pointing at promote.
    let restore = phase.scaleplan(&["restore", "growth", "--to", "latest"]);
    assert_eq!(restore.code, 1, "{}\n{}", restore.stdout, restore.stderr);
    assert!(
        restore.stderr.contains("promote one instead"),
        "{}",
        restore.stderr
    );
    let promote = phase.scaleplan(&["promote", "growth", "--timeout", "90"]);
    assert_eq!(promote.code, 0, "{}\n{}", promote.stdout, promote.stderr);
    eprintln!("{}", promote.stdout);
    let before = acked.lock().unwrap().len();
    eventually(
        "writes resume through the same address",
        Duration::from_secs(30),
        || acked.lock().unwrap().len() >= before + 20,
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // The promoted standby is the writer now; the report said so.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(phase.state.join("state.json")).unwrap())
            .unwrap();
    let promoted = state["postgres_writer"].as_str().unwrap().to_owned();
    assert!(
        promote
            .stdout
            .contains(&format!("{promoted} is the primary")),
        "{}",
        promote.stdout
    );
    let primary = phase.port(&promoted);
    assert_eq!(superuser(primary, "SELECT pg_is_in_recovery()"), "f");

    // Every acknowledged row is there, but for the commits reported lost.
    let present: std::collections::BTreeSet<u32> = superuser(primary, "SELECT n FROM ledger")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let acked = acked.lock().unwrap().clone();
    let missing: Vec<u32> = acked
        .iter()
        .copied()
        .filter(|n| !present.contains(n))
        .collect();
    let lost = if promote.stdout.contains("no acknowledged write was lost") {
        0
    } else {
        let text = &promote.stdout;
        let at = text
            .find(" committed transactions")
            .unwrap_or_else(|| panic!("the report counts no lost commits:\n{text}"));
        let digits: String = text[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    };
    eprintln!(
        "{} rows acknowledged, {} writes failed during the failover, {} missing, {lost} commits reported lost",
        acked.len(),
        failed.lock().unwrap(),
        missing.len()
    );
    // Rows acknowledged after the standbys stopped receiving are gone,
    // and `promote` said how many commits were: no fewer than the rows.
    assert!(!missing.is_empty(), "the paused standbys had every row");
    assert!(
        missing.len() <= lost,
        "rows acknowledged and missing beyond the reported loss ({lost}): {missing:?}"
    );
    assert!(
        promote.stdout.contains("synchronous_standby_names"),
        "{}",
        promote.stdout
    );

    // The other standby follows the new primary.
    let other = ["postgres-replica-1", "postgres-replica-2"]
        .into_iter()
        .find(|n| *n != promoted)
        .unwrap();
    let newest = acked.last().copied().unwrap();
    let port = phase.port(other);
    eventually(
        &format!("{other} streams from {promoted}"),
        Duration::from_secs(30),
        || {
            psql(
                port,
                "postgres",
                secret("SCALEPLAN_POSTGRES_PASSWORD"),
                "sikka",
                &format!("SELECT count(*) FROM ledger WHERE n = {newest}"),
            )
            .is_ok_and(|c| c.trim() == "1")
        },
    );

    // The new primary archives on its timeline: a backup of it works.
    let backup = phase.scaleplan(&["backup", "growth"]);
    assert_eq!(backup.code, 0, "{}\n{}", backup.stdout, backup.stderr);

    // The old primary does not come back by itself ...
    let refused = phase.try_bring("growth", &[]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let said = format!("{}\n{}", refused.stdout, refused.stderr);
    assert!(said.contains("--reseed postgres-primary"), "{said}");
    // ... only as a standby, reseeded from the new primary.
    phase.up_args = vec!["--reseed".to_owned(), "postgres-primary".to_owned()];
    phase.bring("growth", &[]);
    eventually(
        "both standbys stream from the new primary",
        Duration::from_secs(30),
        || {
            superuser(
                primary,
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .trim()
                == "2"
        },
    );
    phase.down();
}

/// `promote` records its choice before pg_promote: a run that stopped in
/// between (its state file says which standby, the standby still in
/// recovery) is finished by the next run, pg_promote included.
#[test]
fn a_promotion_cut_short_before_pg_promote_is_finished_by_the_next_run() {
    let mut phase = Phase::up_at("growth", 34000);
    phase.kill_hard("postgres-primary");
    // What was in flight when it died reaches the standbys within
    // milliseconds; then what they received no longer moves.
    std::thread::sleep(Duration::from_secs(1));
    // The interrupted run had chosen the most advanced standby, as promote
    // does: the other follows it only from behind. (Picking one blindly
    // failed a run in which the other had received a record more.)
    let (chosen, received) = ["postgres-replica-1", "postgres-replica-2"]
        .into_iter()
        .map(|name| {
            let at = superuser(phase.port(name), "SELECT pg_last_wal_receive_lsn()");
            (name, at)
        })
        .max_by_key(|(_, at)| lsn(at).unwrap_or_else(|| panic!("an LSN: {at}")))
        .unwrap();
    let port = phase.port(chosen);
    // The state as the interrupted run left it.
    let path = phase.state.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    state["postgres_writer"] = chosen.into();
    state["promoting"] =
        serde_json::json!({ "lost": "postgres-primary", "received_lsn": received });
    state["processes"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["name"] != "postgres-primary");
    std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    assert_eq!(superuser(port, "SELECT pg_is_in_recovery()"), "t");

    let promote = phase.scaleplan(&["promote", "growth", "--timeout", "90"]);
    assert_eq!(promote.code, 0, "{}\n{}", promote.stdout, promote.stderr);
    assert!(
        promote
            .stdout
            .contains(&format!("finishing the promotion of {chosen}")),
        "{}",
        promote.stdout
    );
    assert_eq!(superuser(port, "SELECT pg_is_in_recovery()"), "f");
    let url = phase.port("pg-proxy");
    app(url, "CREATE TABLE after_promote (n int)").unwrap();
    app(url, "INSERT INTO after_promote VALUES (1)").unwrap();
    phase.down();
}
