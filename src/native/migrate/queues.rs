//! BullMQ's queues in a migration: the queue Redis started or given new
//! memory, and the queues moved onto it or back, only once none of their
//! jobs waits where they were.

use super::Migrator;
use crate::native::resp::{Conn, Reply, scan};
use crate::plan::layout::APP_ENV;
use crate::plan::topology::{RedisLayout, RedisNode, RedisStart};
use anyhow::{Context, bail};

/// BullMQ's lists and sorted sets of jobs not yet finished, by key suffix
/// (`<prefix>:<queue>:<suffix>`), and whether each is a list.
const UNFINISHED: [(&str, bool); 5] = [
    ("wait", true),
    ("paused", true),
    ("active", true),
    ("delayed", false),
    ("prioritized", false),
];

impl Migrator<'_> {
    pub fn start_queue_redis(&mut self) -> anyhow::Result<String> {
        let q = self
            .b
            .topo
            .queue_redis
            .clone()
            .context("the new phase names no queue_redis")?;
        self.b.redis_node(&q.node, RedisStart::Server)?;
        let set = self.runtime_settings_in(&q.layout(), &q.node, &[])?;
        Ok(format!(
            "{} answers on 127.0.0.1:{}; {set} settings read back (noeviction, appendonly)",
            q.node.name, q.node.endpoint.port
        ))
    }

    pub fn queue_redis_settings(&mut self) -> anyhow::Result<String> {
        let q = self
            .b
            .topo
            .queue_redis
            .clone()
            .context("the new phase names no queue_redis")?;
        let used = used_memory(&mut self.conn(q.node.endpoint.port)?, &q.node.name)?;
        let limit = u64::from(q.common.maxmemory_mb) * 1024 * 1024;
        if used * 10 >= limit * 9 {
            bail!(
                "{}: its jobs use {} MB, {}% of the new maxmemory {} MB: it would refuse new jobs at once; let the workers drain it, or keep queue_redis.maxmemory_mb higher",
                q.node.name,
                used / (1024 * 1024),
                used * 100 / limit.max(1),
                q.common.maxmemory_mb
            );
        }
        let set = self.runtime_settings_in(&q.layout(), &q.node, &[])?;
        Ok(format!(
            "{}: {set} settings at run time, read back",
            q.node.name
        ))
    }

    /// The queues move only from a Redis where no job waits: every job
    /// left there would be one no worker sees again.
    pub fn move_queues(&mut self, own_redis: bool) -> anyhow::Result<String> {
        let source = if own_redis {
            self.before.redis.clone()
        } else {
            self.before
                .queue_redis
                .as_ref()
                .context("the earlier phase names no queue_redis")?
                .layout()
        };
        let waiting = self.unfinished_jobs(&source)?;
        if !waiting.is_empty() {
            let total: u64 = waiting.iter().map(|(_, n)| n).sum();
            let list: Vec<String> = waiting.iter().map(|(q, n)| format!("{q}: {n}")).collect();
            bail!(
                "{total} BullMQ job(s) are not finished where the queues are now ({}): stop adding jobs and let the workers finish them, then run migrate again (it resumes at this step)",
                list.join(", ")
            );
        }
        self.install(&[crate::plan::layout::Part::AppEnv])?;
        let path = self.b.app_env()?;
        let text = std::fs::read_to_string(&path)?;
        let names_it = text.lines().any(|l| l.starts_with("BULLMQ_REDIS_URL="));
        if names_it != own_redis {
            bail!(
                "{} {} BULLMQ_REDIS_URL",
                path.display(),
                if own_redis {
                    "does not name"
                } else {
                    "still names"
                }
            );
        }
        let done = format!(
            "no BullMQ job waited on the old Redis; {APP_ENV} {} BULLMQ_REDIS_URL",
            if own_redis {
                "names"
            } else {
                "no longer names"
            }
        );
        self.with_app(done)
    }

    /// Each BullMQ queue on `layout`'s masters with jobs not finished, and
    /// how many. A queue is found by its `<prefix>:<queue>:meta` hash, which
    /// BullMQ keeps for every queue; in a cluster all of a queue's keys
    /// share its slot, so they are on the master that holds its meta.
    fn unfinished_jobs(&self, layout: &RedisLayout) -> anyhow::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for node in self.masters_of(layout)? {
            self.scan_queues(&node, &mut out)?;
        }
        Ok(out)
    }

    fn scan_queues(&self, node: &RedisNode, out: &mut Vec<(String, u64)>) -> anyhow::Result<()> {
        let mut conn = self.conn(node.endpoint.port)?;
        scan(&mut conn, Some(b"*:meta"), |conn, keys| {
            for meta in keys {
                let base = &meta[..meta.len().saturating_sub(":meta".len())];
                let mut count = 0u64;
                for (suffix, list) in UNFINISHED {
                    let key = [base, b":", suffix.as_bytes()].concat();
                    // A key of another type (not BullMQ's) counts nothing.
                    let n = conn
                        .call(&[if list { b"LLEN" } else { b"ZCARD" }, &key])
                        .ok()
                        .and_then(|r| r.int());
                    count += u64::try_from(n.unwrap_or(0)).unwrap_or(0);
                }
                if count > 0 {
                    out.push((String::from_utf8_lossy(base).into_owned(), count));
                }
            }
            Ok(())
        })
    }

    /// The nodes of `layout` that are masters now (ROLE asked of each).
    fn masters_of(&self, layout: &RedisLayout) -> anyhow::Result<Vec<RedisNode>> {
        let masters: Vec<RedisNode> = layout
            .data_nodes()
            .into_iter()
            .filter(|n| {
                self.conn(n.endpoint.port)
                    .and_then(|mut c| c.call(&[b"ROLE"]))
                    .is_ok_and(|r| {
                        r.items().first().and_then(Reply::text).as_deref() == Some("master")
                    })
            })
            .cloned()
            .collect();
        if masters.is_empty() {
            bail!("no master of the earlier Redis answers: the queued jobs cannot be counted");
        }
        Ok(masters)
    }
}

fn used_memory(conn: &mut Conn, name: &str) -> anyhow::Result<u64> {
    conn.call(&[b"INFO", b"memory"])?
        .text()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .with_context(|| format!("{name}: INFO memory has no used_memory"))
}
