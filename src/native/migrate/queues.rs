//! BullMQ's queues in a migration: the queue Redis started or given new
//! memory, and the queues moved onto it or back, only once none of their
//! jobs is unfinished where they were, and checked again once the app has
//! moved (a replica not yet restarted may still have added one).

use super::Migrator;
use crate::native::resp::{Conn, scan};
use crate::plan::bullmq::{JobSet, META_SUFFIX, UNFINISHED};
use crate::plan::layout::{APP_ENV, Part};
use crate::plan::topology::{RedisLayout, RedisNode, RedisStart};
use anyhow::{Context, bail};
use std::path::Path;

/// One queue's unfinished jobs, by state.
struct Unfinished {
    queue: String,
    by_state: Vec<(&'static str, u64)>,
}

impl Unfinished {
    fn total(&self) -> u64 {
        self.by_state.iter().map(|(_, n)| n).sum()
    }

    fn describe(&self) -> String {
        let states: Vec<String> = self
            .by_state
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        format!("{}: {}", self.queue, states.join(", "))
    }
}

impl Migrator<'_> {
    pub fn start_queue_redis(&mut self) -> anyhow::Result<String> {
        let q = self
            .b
            .topo
            .queue_redis
            .clone()
            .context("the new phase names no queue_redis")?;
        // Only its own files (and the start script): the phase's Redis
        // keeps its file until its own step, so a restart of it before
        // the queues have moved never makes it evict under them.
        let redis = Path::new(Part::Redis.rel());
        self.install_paths(&[redis.join(&q.node.name), redis.join("start.sh")])?;
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
        self.install_paths(&[Path::new(Part::Redis.rel()).join(&q.node.name)])?;
        let set = self.runtime_settings_in(&q.layout(), &q.node, &[])?;
        Ok(format!(
            "{}: {set} settings at run time, read back",
            q.node.name
        ))
    }

    /// The queues move only from a Redis where no job is unfinished: every
    /// job left there would be one no worker sees again. Moving back onto
    /// the phase's Redis needs it free of BullMQ's keys from before.
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
        let left = self.unfinished_jobs(&source)?;
        if !left.is_empty() {
            bail!(
                "{} BullMQ job(s) are not finished where the queues are now ({}): stop adding jobs and let the workers finish them; a job scheduler (repeatable job) always has its next run delayed: remove it (Queue.removeJobScheduler) and add it again once the queues have moved. Then run migrate again: it resumes at this step",
                left.iter().map(Unfinished::total).sum::<u64>(),
                describe(&left)
            );
        }
        if !own_redis {
            let stale = self.queues_on(&self.b.topo.redis.clone())?;
            if !stale.is_empty() {
                bail!(
                    "the phase's Redis still holds BullMQ's keys of {} from before the queues had their own Redis: a queue found there may start paused or skip jobs as duplicates; delete those keys (their prefix, e.g. `redis-cli --scan --pattern 'bull:*'`) and run migrate again",
                    stale.join(", ")
                );
            }
        }
        self.install(&[Part::AppEnv])?;
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
            "no BullMQ job was unfinished on the old Redis; {APP_ENV} {} BULLMQ_REDIS_URL",
            if own_redis {
                "names"
            } else {
                "no longer names"
            }
        );
        let done = self.with_app(done)?;
        // A replica not restarted yet when the count ran may have added a
        // job there since: said, not lost silently.
        let late = self.unfinished_jobs(&source)?;
        if !late.is_empty() {
            bail!(
                "the app has moved, but {} BullMQ job(s) were added to the old Redis while it did ({}): no worker sees them there; move them by hand (or run their work again), then run migrate again",
                late.iter().map(Unfinished::total).sum::<u64>(),
                describe(&late)
            );
        }
        Ok(done)
    }

    /// Each BullMQ queue on `layout` with jobs not finished. In a cluster
    /// all of a queue's keys share its slot, so they are on the master that
    /// holds its meta.
    fn unfinished_jobs(&self, layout: &RedisLayout) -> anyhow::Result<Vec<Unfinished>> {
        let mut out = Vec::new();
        self.each_queue(layout, |node, conn, base| {
            let mut by_state = Vec::new();
            for (suffix, set) in UNFINISHED {
                let key = [base, b":", suffix.as_bytes()].concat();
                let n = count(conn, &key, set)
                    .with_context(|| format!("{}: counting jobs", node.name))?;
                if n > 0 {
                    by_state.push((suffix, n));
                }
            }
            if !by_state.is_empty() {
                out.push(Unfinished {
                    queue: String::from_utf8_lossy(base).into_owned(),
                    by_state,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The BullMQ queues `layout` holds keys of.
    fn queues_on(&self, layout: &RedisLayout) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        self.each_queue(layout, |_, _, base| {
            out.push(String::from_utf8_lossy(base).into_owned());
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` with each BullMQ queue's key base (`<prefix>:<queue>`) on
    /// `layout`, found by the meta hash BullMQ keeps for every queue, with
    /// a connection to the master that holds it. Every master must answer:
    /// a shard left out would be a queue left uncounted.
    fn each_queue(
        &self,
        layout: &RedisLayout,
        mut f: impl FnMut(&RedisNode, &mut Conn, &[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        for node in self.masters_of(layout)? {
            let mut conn = self.conn(node.endpoint.port)?;
            let pattern = format!("*{META_SUFFIX}");
            scan(&mut conn, Some(pattern.as_bytes()), |conn, keys| {
                for meta in keys {
                    f(
                        &node,
                        conn,
                        &meta[..meta.len().saturating_sub(META_SUFFIX.len())],
                    )?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The nodes of `layout` that are masters now (ROLE asked of each),
    /// as many as the layout has shards.
    fn masters_of(&self, layout: &RedisLayout) -> anyhow::Result<Vec<RedisNode>> {
        let masters: Vec<RedisNode> = layout
            .data_nodes()
            .into_iter()
            .filter(|n| {
                self.conn(n.endpoint.port)
                    .and_then(|mut c| c.is_master())
                    .unwrap_or(false)
            })
            .cloned()
            .collect();
        let want = layout.masters() as usize;
        if masters.len() < want {
            bail!(
                "{} of the earlier Redis's {want} master(s) answer: the jobs on the others cannot be counted",
                masters.len()
            );
        }
        Ok(masters)
    }
}

fn describe(queues: &[Unfinished]) -> String {
    queues
        .iter()
        .map(Unfinished::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The jobs in one of BullMQ's lists or sorted sets. A key of another
/// type is not BullMQ's and counts nothing; any other error stops the
/// count, which must not pass for a Redis it could not read.
fn count(conn: &mut Conn, key: &[u8], set: JobSet) -> anyhow::Result<u64> {
    match conn.call(&[set.count_command().as_bytes(), key]) {
        Ok(r) => Ok(u64::try_from(r.int().unwrap_or(0)).unwrap_or(0)),
        Err(e) if e.to_string().contains("WRONGTYPE") => Ok(0),
        Err(e) => Err(e),
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
