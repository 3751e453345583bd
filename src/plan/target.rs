//! Where a phase's nodes run, which decides their addresses, the paths of
//! their files and what they listen on. Every target plans the same nodes
//! with the same names; only these facts differ.

use serde::Serialize;

/// A target a phase is rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// Docker Compose: each node is a service, addressed by its name on the
    /// Compose network, on the component's standard port; paths are inside
    /// containers.
    Compose,
    /// Processes on one machine: every node on 127.0.0.1, each on its own
    /// port counted from `base_port` (see `Role::offset`); paths are
    /// relative to the state directory, which `scaleplan up` runs every
    /// process from, so the same files work wherever that directory is.
    Local { base_port: u16 },
    /// AWS: managed PostgreSQL and Redis whose addresses Terraform knows
    /// only at apply time, and PgBouncer as an ECS service.
    Cloud,
}

/// The kinds of node that get an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Postgres,
    Pgbouncer,
    Sentinel,
    /// A standalone or Sentinel-mode Redis node.
    Redis,
    /// A Redis Cluster node: a port range of its own, so a cluster can run
    /// beside the Sentinel group it replaces while the data moves.
    ClusterNode,
    /// The TCP proxy in front of PostgreSQL: its write, read, replicas and
    /// stats listeners, in that order.
    Proxy,
}

pub const POSTGRES_PORT: u16 = 5432;
pub const PGBOUNCER_PORT: u16 = 6432;
pub const REDIS_PORT: u16 = 6379;
pub const SENTINEL_PORT: u16 = 26379;

impl Role {
    fn standard_port(self) -> u16 {
        match self {
            Role::Postgres => POSTGRES_PORT,
            Role::Pgbouncer => PGBOUNCER_PORT,
            Role::Sentinel => SENTINEL_PORT,
            Role::Redis | Role::ClusterNode => REDIS_PORT,
            Role::Proxy => POSTGRES_PORT,
        }
    }

    /// The local target's port scheme: base + offset + index (from 0).
    /// PostgreSQL base+0 (primary) and base+1.. (replicas, at most 15),
    /// PgBouncer base+100.. (at most 64), the PostgreSQL proxy base+170..173
    /// (write, read, replicas, stats), sentinels base+180.. (at most 15),
    /// standalone and Sentinel-mode Redis base+200.. (at most 16),
    /// cluster nodes base+300.. (six per shard, at most 100 shards). A
    /// cluster node's bus port is its port + 10000. The scheme is the
    /// project's, not a phase's: a node keeps its port in every phase.
    pub fn offset(self) -> u16 {
        match self {
            Role::Postgres => 0,
            Role::Pgbouncer => 100,
            Role::Proxy => 170,
            Role::Sentinel => 180,
            Role::Redis => 200,
            Role::ClusterNode => 300,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Target {
    /// The address of a node of `role`, the `index`th of its kind (from 0),
    /// named `name`.
    pub fn endpoint(self, role: Role, index: u32, name: &str) -> Endpoint {
        match self {
            // In the cloud, nodes are managed services and ECS tasks whose
            // addresses Terraform knows only at apply time; names stand in.
            // The proxy's listeners share its host, one port each.
            Target::Compose | Target::Cloud if role == Role::Proxy => Endpoint {
                host: name.to_owned(),
                port: role.standard_port() + index as u16,
            },
            Target::Compose | Target::Cloud => Endpoint {
                host: name.to_owned(),
                port: role.standard_port(),
            },
            Target::Local { base_port } => Endpoint {
                host: "127.0.0.1".to_owned(),
                // Schema bounds keep every index inside its block, and the
                // base port below 40000, so this cannot overflow.
                port: base_port + role.offset() + index as u16,
            },
        }
    }

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
            Target::Compose => "/run/scaleplan/userlist.txt".to_owned(),
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
            Target::Compose | Target::Cloud => "/run/scaleplan/redis-auth.conf",
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
