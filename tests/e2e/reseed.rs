//! Nothing deletes data by itself: a primary whose data directory is gone
//! is not initialised anew unless asked (`up --reinit-primary`); when the
//! primary is another cluster, the replicas refuse to start, name both
//! system identifiers and the command that reseeds, and keep their data;
//! `up --reseed` then lets exactly the named replicas clone the new
//! primary.

use crate::harness::{Phase, psql, secret};
use std::process::Command;

fn superuser(port: u16, sql: &str) -> String {
    psql(
        port,
        "postgres",
        secret("SCALEPLAN_POSTGRES_PASSWORD"),
        "postgres",
        sql,
    )
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .trim()
    .to_owned()
}

const SYSTEM_ID: &str = "SELECT system_identifier FROM pg_control_system()";

/// The cluster a data directory holds, from its control file.
fn cluster_of(data: &std::path::Path) -> String {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let out = Command::new(dirs.last().unwrap().join("bin/pg_controldata"))
        .arg(data)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Database system identifier:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no control file in {}", data.display()))
}

#[test]
fn a_replica_refuses_a_primary_of_another_cluster_until_reseeded() {
    let mut phase = Phase::up_at("growth", 26000);
    let primary = phase.port("postgres-primary");
    let old = superuser(primary, SYSTEM_ID);
    superuser(
        primary,
        "CREATE TABLE kept_on_replicas AS SELECT generate_series(1, 100) AS n",
    );
    let replica = phase.port("postgres-replica-1");
    crate::harness::eventually(
        "the rows on the replica",
        std::time::Duration::from_secs(30),
        || {
            psql(
                replica,
                "postgres",
                secret("SCALEPLAN_POSTGRES_PASSWORD"),
                "postgres",
                "SELECT count(*) FROM kept_on_replicas",
            )
            .is_ok_and(|c| c.trim() == "100")
        },
    );
    phase.stop_checked();

    // The primary's data is lost: `up` does not initialise a new cluster
    // where this deployment's was, unless asked.
    std::fs::remove_dir_all(phase.state.join("postgres-primary/data")).unwrap();
    let run = phase.try_bring("growth", &[]);
    let said = format!("{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "up must fail:\n{said}");
    assert!(
        said.contains(&format!("primary was cluster {old}")),
        "{said}"
    );
    assert!(said.contains("--reinit-primary"), "{said}");
    assert!(
        !phase.state.join("postgres-primary/data").exists(),
        "{said}"
    );

    // Asked, it does: now the replicas find another cluster.
    phase.up_args = vec!["--reinit-primary".to_owned()];
    let run = phase.try_bring("growth", &[]);
    let said = format!("{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "up must fail:\n{said}");
    assert!(said.contains("not starting"), "{said}");
    assert!(said.contains(&format!("holds cluster {old}")), "{said}");
    assert!(said.contains("Nothing was deleted"), "{said}");
    assert!(said.contains("--reseed postgres-replica-1"), "{said}");
    for node in ["postgres-replica-1", "postgres-replica-2"] {
        assert_eq!(
            cluster_of(&phase.state.join(node).join("data")),
            old,
            "{node} kept its data"
        );
    }

    // Told to, each named replica clones the new primary.
    phase.up_args = [
        "--reseed",
        "postgres-replica-1",
        "--reseed",
        "postgres-replica-2",
    ]
    .map(str::to_owned)
    .to_vec();
    phase.bring("growth", &[]);
    let new = superuser(phase.port("postgres-primary"), SYSTEM_ID);
    assert_ne!(new, old);
    for node in ["postgres-replica-1", "postgres-replica-2"] {
        assert_eq!(superuser(phase.port(node), SYSTEM_ID), new, "{node}");
    }
    phase.down();
}
