//! One step of a plan carried out on the running deployment: its files
//! installed, the servers acted on, and the outcome checked.

use super::{Migrator, Outcome};
use crate::plan::layout::Part::{AppEnv, Pgbouncer, Postgres, Proxy, Redis};
use crate::transition::Action;
use anyhow::bail;
use std::path::Path;

impl Migrator<'_> {
    pub fn apply(&mut self, action: &Action) -> anyhow::Result<Outcome> {
        let done = Outcome::Done;
        Ok(match action {
            Action::Nothing => done("nothing differs".to_owned()),
            Action::ClientCode => Outcome::NotHere(
                "a change of the app's code, which runs outside the local target".to_owned(),
            ),
            Action::Elsewhere { reason } => Outcome::NotHere(reason.clone()),
            Action::ResizePostgres => Outcome::NotHere(crate::transition::action::SIZES.to_owned()),
            // The new contract with them: the data tier it names is ready
            // by the clients' stage.
            Action::Workloads { .. } if self.b.app.is_some() => {
                self.install(&[AppEnv])?;
                done(self.roll_app(true)?)
            }
            Action::Workloads { .. } => {
                Outcome::NotHere(crate::transition::action::NOT_LOCAL.to_owned())
            }
            Action::Monitoring { .. } => done(if self.b.state.monitoring {
                "the local target's monitoring restarts after the last step, watching the new nodes"
                    .to_owned()
            } else {
                "no monitoring runs here (up --native --monitoring starts it)".to_owned()
            }),
            Action::Manual { reason } => bail!("not carried out by migrate: {reason}"),
            Action::AddPostgresReplicas { nodes } => {
                self.install(&[Postgres])?;
                done(self.add_replicas(nodes)?)
            }
            Action::ReloadPostgres => {
                self.install(&[Postgres])?;
                done(self.reload_postgres()?)
            }
            Action::RestartPostgres { replicas_first } => {
                self.install(&[Postgres])?;
                self.reload_postgres()?;
                done(self.restart_postgres(*replicas_first)?)
            }
            Action::StartPgbouncers { nodes } => {
                self.install(&[Pgbouncer, Proxy])?;
                done(self.start_pgbouncers(nodes)?)
            }
            Action::RollPgbouncers { restart } => {
                self.install(&[Pgbouncer, Proxy])?;
                done(self.roll_pgbouncers(*restart)?)
            }
            Action::RouteReads => {
                self.install(&[Pgbouncer, Proxy])?;
                done(self.route_reads()?)
            }
            Action::RemovePostgresReplicas { nodes } => {
                self.install(&[Proxy])?;
                done(self.remove_replicas(nodes)?)
            }
            Action::StopPgbouncers { nodes } => {
                self.install(&[Proxy])?;
                done(self.stop_pgbouncers(nodes)?)
            }
            Action::StartRedisReplicas { nodes } => {
                self.install(&[Redis])?;
                done(self.start_redis_replicas(nodes)?)
            }
            Action::StopRedisReplicas { nodes } | Action::StopSentinels { nodes } => {
                self.install(&[Redis])?;
                done(self.stop_redis_nodes(nodes)?)
            }
            Action::StartSentinels { nodes } => {
                self.install(&[Redis])?;
                done(self.start_sentinels(nodes)?)
            }
            Action::SentinelSettings => {
                self.install(&[Redis])?;
                done(self.sentinel_settings()?)
            }
            Action::RedisSettings => {
                self.install(&[Redis])?;
                done(self.redis_settings()?)
            }
            Action::BuildCluster { nodes } | Action::GrowCluster { nodes } => {
                self.install(&[Redis])?;
                done(self.build_cluster(nodes)?)
            }
            Action::CopyIntoCluster => done(self.copy_into_cluster()?),
            // app.env is installed inside, only once the check has passed.
            // The app's replicas, where they run here, restart in turn
            // onto the new contract.
            Action::CutOverToCluster => done(self.cut_over().and_then(|d| self.with_app(d))?),
            Action::SwitchRedisClients { mode } => {
                self.install(&[AppEnv])?;
                done(
                    self.switch_clients(mode.as_str())
                        .and_then(|d| self.with_app(d))?,
                )
            }
            Action::RetireRedis { nodes } => done(self.retire_redis(nodes)?),
            // Each installs the queue Redis's own files only.
            Action::StartQueueRedis => done(self.start_queue_redis()?),
            Action::QueueRedisSettings => done(self.queue_redis_settings()?),
            Action::MoveQueues { own_redis } => done(self.move_queues(*own_redis)?),
        })
    }
}

impl Migrator<'_> {
    /// The app's replicas restarted one at a time onto what the new phase
    /// installs (its contract, its scaling.json), the edge following.
    fn roll_app(&mut self, resize: bool) -> anyhow::Result<String> {
        let root = self
            .next
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.app_rolled = true;
        self.b.roll_app(&root, &mut self.app_fresh, resize)
    }

    /// `done`, followed by a roll of the app where it runs here: the
    /// contract changed, so every replica restarts onto it.
    pub(super) fn with_app(&mut self, done: String) -> anyhow::Result<String> {
        if self.b.app.is_none() {
            return Ok(done);
        }
        self.app_fresh.clear();
        Ok(format!("{done}; the app: {}", self.roll_app(false)?))
    }
}
