//! Where a phase's nodes run, which decides their addresses, the paths of
//! their files and what they listen on. Every target plans the same nodes
//! with the same names; only these facts differ.

use serde::Serialize;

/// Where a Compose container's start script writes the files it makes from
/// secrets (auth files, a password file): in memory, never on a volume,
/// and writable by the service's own user on every start. Not a `tmpfs:`
/// mount: Docker mounts one again as root 0755 when a container restarts
/// (moby/moby#20437), and the non-root service could then not write its
/// auth file and would restart forever. Each container's /dev/shm is a
/// fresh 1777 tmpfs on every start.
pub const COMPOSE_SECRETS_DIR: &str = "/dev/shm/scaleplan";
/// Redis's auth include in Compose and the cloud, in that directory.
pub const COMPOSE_REDIS_AUTH: &str = "/dev/shm/scaleplan/redis-auth.conf";
/// The file PgBouncer runs from in Compose, in that directory: its mounted
/// file with the servers' current addresses (plan::topology::FollowNames).
pub const COMPOSE_PGBOUNCER_RUNNING: &str = "/dev/shm/scaleplan/pgbouncer.ini";

/// A target a phase is rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// Docker Compose: each node is a service, addressed by its name on the
    /// Compose network, on the component's standard port; paths are inside
    /// containers.
    Compose,
    /// Processes on one machine: every node on 127.0.0.1, each on its own
    /// port counted from `base_port` (see `ports`); paths are
    /// relative to the state directory, which `scaleplan up` runs every
    /// process from, so the same files work wherever that directory is.
    Local { base_port: u16 },
    /// AWS: managed PostgreSQL and Redis whose addresses Terraform knows
    /// only at apply time, and PgBouncer as an ECS service.
    Cloud,
}

impl Target {
    /// The directory under out/<phase>/.
    pub fn dir(self) -> &'static str {
        match self {
            Target::Compose => "compose",
            Target::Local { .. } => "local",
            Target::Cloud => "terraform",
        }
    }

    /// PostgreSQL's listen_addresses: every interface inside a container
    /// or task, loopback only on a shared machine.
    pub fn listen(self) -> &'static str {
        match self {
            Target::Compose | Target::Cloud => "*",
            Target::Local { .. } => "127.0.0.1",
        }
    }

    pub fn listen_ipv4(self) -> &'static str {
        match self {
            Target::Compose | Target::Cloud => "0.0.0.0",
            Target::Local { .. } => "127.0.0.1",
        }
    }

    /// Local processes get hba_file on their command line, since its path
    /// depends on the state directory.
    pub fn hba_path(self) -> Option<&'static str> {
        match self {
            Target::Compose => Some("/etc/postgresql/pg_hba.conf"),
            Target::Local { .. } | Target::Cloud => None,
        }
    }

    /// Unix sockets: the images' defaults in Compose; none locally, where
    /// several servers share one machine and talk over TCP.
    pub fn socket_dir(self) -> Option<&'static str> {
        match self {
            Target::Compose | Target::Cloud => None,
            Target::Local { .. } => Some(""),
        }
    }

    /// Where the postgres_exporters connect from, when not from 127.0.0.1:
    /// in Compose each is a container of its own on the project's network.
    pub fn exporter_network(self) -> Option<&'static str> {
        match self {
            Target::Compose => Some("samenet"),
            Target::Local { .. } | Target::Cloud => None,
        }
    }

    pub fn client_network(self) -> &'static str {
        match self {
            Target::Compose => "samenet",
            Target::Local { .. } => "127.0.0.1/32",
            Target::Cloud => "0.0.0.0/0",
        }
    }

    /// Where PgBouncer reads its auth file, which is written at start from
    /// the environment and never generated.
    pub fn pgbouncer_auth_file(self, node: &str) -> String {
        match self {
            Target::Compose => format!("{COMPOSE_SECRETS_DIR}/userlist.txt"),
            Target::Local { .. } => format!("{node}/userlist.txt"),
            Target::Cloud => "/tmp/userlist.txt".to_owned(),
        }
    }

    pub fn redis_dir(self, node: &str) -> String {
        match self {
            Target::Compose | Target::Cloud => "/data".to_owned(),
            Target::Local { .. } => node.to_owned(),
        }
    }

    /// Redis resolves a relative include after `dir` has moved it into the
    /// node's directory, so locally the auth file sits beside the data.
    pub fn redis_auth(self) -> &'static str {
        match self {
            Target::Compose | Target::Cloud => COMPOSE_REDIS_AUTH,
            Target::Local { .. } => "auth.conf",
        }
    }

    /// Redis 7 waits 5 s before a full sync to batch replicas; locally
    /// replicas start together and waiting only slows bring-up.
    pub fn diskless_sync_delay(self) -> u32 {
        match self {
            Target::Compose | Target::Cloud => 5,
            Target::Local { .. } => 0,
        }
    }
}
