//! The queue Redis's steps: BullMQ's queues moving onto a Redis of their
//! own (`queue_redis`), back onto the phase's Redis, or the queue Redis
//! taking new memory.

use super::*;
use crate::plan::names::QUEUE_REDIS;

/// What the app does before its queues move: a job left behind is one no
/// worker sees again, since every Queue and Worker connects to the new
/// place at once.
const DRAIN: &str = "drain the queues first (stop adding jobs, let the workers finish every waiting, delayed and active job): `scaleplan migrate` refuses while any BullMQ job still waits where the queues were";

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.compose.queue_redis, &to.compose.queue_redis);
    match (a, b) {
        (None, Some(q)) => {
            s.add.push(step(
                format!("Start the queue Redis {QUEUE_REDIS}"),
                Risk::Online,
                format!(
                    "a standalone node for BullMQ alone, maxmemory {} MB, noeviction, every write appended to its file",
                    q.common.maxmemory_mb
                ),
                Action::StartQueueRedis,
            ));
            s.clients.push(step(
                format!("Move BullMQ's queues onto {QUEUE_REDIS}"),
                Risk::ClientChangeRequired,
                format!(
                    "{DRAIN}; then the app's contract names BULLMQ_REDIS_URL and every Queue, Worker and QueueEvents connects there, and the phase's Redis holds no queue"
                ),
                Action::MoveQueues { own_redis: true },
            ));
        }
        (Some(_), None) => {
            s.clients.push(step(
                "Move BullMQ's queues back onto the phase's Redis",
                Risk::ClientChangeRequired,
                format!(
                    "{DRAIN}; then the contract no longer names BULLMQ_REDIS_URL and BullMQ connects to the phase's Redis (which RED012 keeps at noeviction)"
                ),
                Action::MoveQueues { own_redis: false },
            ));
            s.remove.push(step(
                format!("Retire the queue Redis {QUEUE_REDIS}"),
                Risk::Online,
                "it holds no queue any more; its data stays",
                Action::RetireRedis {
                    nodes: vec![QUEUE_REDIS.to_owned()],
                },
            ));
        }
        (Some(x), Some(y)) if x.common.maxmemory_mb != y.common.maxmemory_mb => {
            s.settings.push(step(
                format!(
                    "The queue Redis's maxmemory {} -> {} MB",
                    x.common.maxmemory_mb, y.common.maxmemory_mb
                ),
                Risk::Online,
                "CONFIG SET at run time, read back; a lower limit is refused while the queued jobs use 90% of it. Compose then recreates the container where its memory limit changed: the queues pause while it restarts from its append-only file",
                Action::QueueRedisSettings,
            ));
        }
        _ => {}
    }
}
