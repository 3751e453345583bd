//! The queue Redis's steps: BullMQ's queues moving onto a Redis of their
//! own (`queue_redis`), back onto the phase's Redis, or the queue Redis
//! taking new memory.

use super::*;
use crate::plan::names::QUEUE_REDIS;

/// What the app does before its queues move: a job left behind is one no
/// worker sees again, since every Queue and Worker connects to the new
/// place at once.
const DRAIN: &str = "drain the queues first (stop adding jobs, let the workers finish every waiting, delayed and active job; remove job schedulers, whose next run is always delayed, and add them again after): `scaleplan migrate` refuses while any BullMQ job is unfinished where the queues were, and counts again once the app has moved";

/// How to see on AWS that no BullMQ job is left on a Redis (from a task
/// that can reach it).
const COUNT_BY_HAND: &str = "`redis-cli --tls --scan --pattern '*:meta'`, then for each queue LLEN of its wait, paused and active and ZCARD of its delayed, prioritized and waiting-children";

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.compose.queue_redis, &to.compose.queue_redis);
    let aws = from.spec().targets.terraform.enabled && to.spec().targets.terraform.enabled;
    match (a, b) {
        (None, Some(q)) => {
            if aws {
                let policy = to.spec().redis.maxmemory_policy;
                let evicts = policy != crate::spec::types::EvictionPolicy::Noeviction;
                s.add.push(step(
                    format!("On AWS, apply 1 of {}: the queue group, and the services onto it", if evicts { 2 } else { 1 }),
                    Risk::ClientChangeRequired,
                    format!(
                        "AWS only. Apply {}'s Terraform{}: the queue ElastiCache group is created and the services are redeployed with BULLMQ_REDIS_URL{}. Old tasks add jobs to the phase's Redis until ECS has replaced them, and no new worker reads them there: stop adding jobs during the deploy, or let the last old workers finish, and check that none is left ({COUNT_BY_HAND})",
                        to.name(),
                        if evicts { " with -var redis_maxmemory_policy_override=noeviction" } else { "" },
                        if evicts { ", while the phase's Redis still never evicts" } else { "" }
                    ),
                    elsewhere("AWS only: a Terraform apply"),
                ));
                if evicts {
                    s.remove.push(step(
                        "On AWS, apply 2 of 2: the phase's Redis takes its own policy",
                        Risk::Online,
                        format!(
                            "AWS only, once no BullMQ job is left on the phase's Redis: apply {}'s Terraform again, without the override; its parameter group takes {}",
                            to.name(),
                            policy.as_str()
                        ),
                        elsewhere("AWS only: a Terraform apply"),
                    ));
                }
            }
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
        (Some(x), Some(y))
            if x.common.maxmemory_mb != y.common.maxmemory_mb
                || x.common.resources != y.common.resources =>
        {
            s.settings.push(step(
                format!(
                    "The queue Redis's maxmemory {} -> {} MB, memory {} -> {} MB, cpu {} -> {}",
                    x.common.maxmemory_mb,
                    y.common.maxmemory_mb,
                    x.common.resources.memory_mb,
                    y.common.resources.memory_mb,
                    x.common.resources.cpu,
                    y.common.resources.cpu
                ),
                Risk::Online,
                "CONFIG SET at run time, read back; a lower limit is refused while the queued jobs use 90% of it. Compose then recreates the container where its memory limit changed: the queues pause while it restarts from its append-only file",
                Action::QueueRedisSettings,
            ));
        }
        _ => {}
    }
}
