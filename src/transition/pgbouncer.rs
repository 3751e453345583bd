//! PgBouncer's steps: instances, pool settings, versions and routing.

use super::*;

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.spec().pgbouncer, &to.spec().pgbouncer);
    let (ta, tb) = (&from.compose, &to.compose);
    let added = only_in(&pgbouncers(tb), &pgbouncers(ta));
    if !added.is_empty() {
        // After PostgreSQL's settings: the new pools fit the new
        // max_connections, not always the old one.
        s.settings.push(step(
            format!("Start PgBouncer instances {}", added.join(", ")),
            Risk::Online,
            "new instances join beside the running ones; the proxy balances over them once they accept logins",
            Action::StartPgbouncers { nodes: added },
        ));
    }
    let mut pools = Vec::new();
    changed(
        &mut pools,
        "default_pool_size",
        a.default_pool_size,
        b.default_pool_size,
    );
    changed(
        &mut pools,
        "reserve_pool_size",
        a.reserve_pool_size,
        b.reserve_pool_size,
    );
    changed(
        &mut pools,
        "max_client_conn",
        a.max_client_conn,
        b.max_client_conn,
    );
    changed(
        &mut pools,
        "pool_mode",
        a.pool_mode.as_str(),
        b.pool_mode.as_str(),
    );
    changed(
        &mut pools,
        "version",
        a.version.as_str(),
        b.version.as_str(),
    );
    if !pools.is_empty() {
        // RELOAD takes pool sizes, the client limit and the pool mode; a
        // new version needs a new process.
        let restart = a.version != b.version;
        s.settings.push(step(
            format!(
                "{} PgBouncer: {}",
                if restart { "Roll" } else { "Reload" },
                pools.join(", ")
            ),
            if restart {
                Risk::RollingRestart
            } else {
                Risk::Online
            },
            if restart {
                "restart the instances one at a time while the others serve; the proxy sends clients to the others meanwhile"
            } else {
                "RELOAD each instance (its admin console, or SIGHUP): the new pools apply without dropping a client"
            },
            Action::RollPgbouncers { restart },
        ));
    }
    if a.pool_mode == PoolMode::Session && b.pool_mode != PoolMode::Session {
        s.clients.push(step(
            format!("Make clients safe for {} pooling", b.pool_mode.as_str()),
            Risk::ClientChangeRequired,
            "a server connection no longer belongs to one client: session state breaks (SET/RESET, LISTEN/NOTIFY, WITH HOLD cursors, SQL-level PREPARE, session advisory locks, temporary tables kept across transactions); move it into transactions first",
            Action::ClientCode,
        ));
    }
    if b.pool_mode == PoolMode::Statement && a.pool_mode == PoolMode::Transaction {
        s.clients.push(step(
            "Make clients safe for statement pooling",
            Risk::ClientChangeRequired,
            "multi-statement transactions are refused in statement mode",
            Action::ClientCode,
        ));
    }
    let removed = only_in(&pgbouncers(ta), &pgbouncers(tb));
    if !removed.is_empty() {
        s.remove.push(loss(
            format!("Stop PgBouncer instances {}", removed.join(", ")),
            Risk::RollingRestart,
            "take them out of the proxy's rotation first, let their clients finish, then stop them: fewer instances carry fewer clients",
            Action::StopPgbouncers { nodes: removed },
        ));
    }
}
