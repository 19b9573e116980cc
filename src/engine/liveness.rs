//! Replica heartbeats: telling a lock held by a dead manager replica from one held by a live
//! replica or by a Go controller.
//!
//! A lock's value is its holder's instance UUID, for Threeport's Go controllers and for this
//! manager alike, and a Go controller never renews its locks: from the lock alone, a dead
//! manager and a Go controller in a long reconcile look the same. So every manager replica also
//! writes its instance UUID into one KV bucket of its own, [`HEARTBEAT_BUCKET`], every
//! `engine.heartbeat_interval`. A lock whose owner
//!
//! - has a heartbeat silent for `engine.lock_reclaim_after` (or marked stopped) belonged to a
//!   manager that died: it is reclaimed (revision-checked, so the takeover never overwrites a
//!   write it has not seen);
//! - has a fresh heartbeat is a live replica's: never taken;
//! - has no heartbeat at all is a Go controller's (or a manager's from before heartbeats):
//!   Threeport's rule applies, it is taken at most after `engine.lock_takeover_after`, by
//!   default the bucket's own 20 minutes.
//!
//! Entries live for [`HEARTBEAT_MAX_AGE`], longer than any lock can (the lock bucket's max age
//! is 20 minutes), so a dead replica is still known as such for as long as a lock of its can
//! exist. Silence is measured on the NATS server's clock only: the owner's last heartbeat
//! against this process's own last heartbeat, both stamped by the server, so clock differences
//! between manager hosts do not matter. This replica's own entry is read first, so the
//! measurement errs (by up to one heartbeat interval) towards a younger owner. What it does
//! rely on: in a JetStream cluster, the servers' clocks agree (NTP) and a follower answering a
//! read is not behind by more than `lock_reclaim_after` minus one heartbeat interval (25 s).
//!
//! The holder's side of the contract is in `worker`: a replica whose own heartbeat has not been
//! written for `lock_reclaim_after` minus one renew interval takes no lock, and cancels the
//! reconciles it has, before anyone may reclaim their locks. (Like every lease without fencing
//! tokens, this assumes the process is not frozen, e.g. a stopped VM, for longer than that
//! margin in the middle of a reconcile.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::decision::LockHolder;

/// The bucket of replica heartbeats, shared by every manager replica on the NATS account.
pub const HEARTBEAT_BUCKET: &str = "threeportManagerHeartbeats";

/// How long a heartbeat entry outlives its last write: longer than a lock can live (20 min), so
/// the owner of any lock still in a lock bucket is known if it was a manager.
pub const HEARTBEAT_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// How long the final "stopped" write may take at shutdown before the process exits anyway.
const STOP_WRITE_LIMIT: Duration = Duration::from_millis(500);

/// Why the heartbeat bucket could not be used. The replica's own ID is not secret, but the
/// NATS error text is all that is needed.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// The bucket could neither be opened nor created.
    #[error("heartbeat bucket {HEARTBEAT_BUCKET}: cannot open ({open}) or create ({create})")]
    Bucket {
        /// Why opening failed.
        open: String,
        /// Why creating failed.
        create: String,
    },
    /// A read or write of the bucket failed.
    #[error("heartbeat bucket {HEARTBEAT_BUCKET}: {0}")]
    Unavailable(String),
}

/// What a replica writes: enough for an operator reading the bucket (`nats kv ls/get`) to see
/// who is running where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Beat {
    /// `running`, or `stopped` after a clean shutdown (its leftover locks, if any, are
    /// reclaimable at once).
    state: String,
    /// The manager's version.
    #[serde(default)]
    version: String,
    /// Host (pod) name.
    #[serde(default)]
    host: String,
    /// Process ID on that host.
    #[serde(default)]
    pid: u32,
}

const RUNNING: &str = "running";
const STOPPED: &str = "stopped";

/// This replica's heartbeat: writes it, and classifies other lock owners by theirs.
#[derive(Clone)]
pub struct Heartbeats {
    kv: kv::Store,
    /// To re-create the bucket if someone deletes it, and to see whether the connection is up.
    js: jetstream::Context,
    own_key: String,
    /// When the last heartbeat that succeeded was sent (the write landed no earlier).
    last_written: Arc<Mutex<Option<Instant>>>,
}

impl Heartbeats {
    /// Open the heartbeat bucket, creating it if missing.
    pub async fn open_or_create(
        js: &jetstream::Context,
        instance_id: uuid::Uuid,
    ) -> Result<Self, HeartbeatError> {
        let kv = match js.get_key_value(HEARTBEAT_BUCKET).await {
            Ok(kv) => kv,
            Err(open) => js
                .create_key_value(bucket_config())
                .await
                .map_err(|create| HeartbeatError::Bucket {
                    open: open.to_string(),
                    create: create.to_string(),
                })?,
        };
        Ok(Self {
            kv,
            js: js.clone(),
            own_key: instance_id.to_string(),
            last_written: Arc::new(Mutex::new(None)),
        })
    }

    fn beat_value(state: &str) -> bytes::Bytes {
        let beat = Beat {
            state: state.to_string(),
            version: crate::VERSION.to_string(),
            host: host_name(),
            pid: std::process::id(),
        };
        serde_json::to_vec(&beat).unwrap_or_default().into()
    }

    /// Write this replica's heartbeat once.
    pub async fn beat(&self) -> Result<(), HeartbeatError> {
        let sent = Instant::now();
        self.kv
            .put(&self.own_key, Self::beat_value(RUNNING))
            .await
            .map_err(|e| HeartbeatError::Unavailable(e.to_string()))?;
        *self.last_written.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent);
        Ok(())
    }

    /// Whether a heartbeat was written within `limit`: while it is not, this replica may
    /// already look dead to the others and must not keep reconciling under its locks.
    pub fn written_within(&self, limit: Duration) -> bool {
        self.last_written().is_some_and(|t| t.elapsed() <= limit)
    }

    /// When the last heartbeat written turns older than `limit` (now, if none was written).
    pub fn deadline(&self, limit: Duration) -> Instant {
        self.last_written().map_or_else(Instant::now, |t| t + limit)
    }

    fn last_written(&self) -> Option<Instant> {
        *self.last_written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Heartbeat every `interval` until `stop`, then mark this replica stopped (bounded: with
    /// NATS gone the process does not wait for it).
    /// Failed writes are counted in `failures`.
    pub async fn run(
        self,
        interval: Duration,
        failures: prometheus::IntCounter,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let written = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.beat() => r,
            };
            if written.is_err() {
                failures.inc();
                // A bucket deleted under us (or lost with its only server) would otherwise stop
                // every replica's reconciles for good; creating it again is idempotent. Only
                // while connected (else it is the connection that failed), and like every wait
                // here it ends on `stop` and within one interval.
                if self.js.client().connection_state() == async_nats::connection::State::Connected {
                    let recreate = self.js.create_key_value(bucket_config());
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::timeout(interval, recreate) => {}
                    }
                }
            }
            match written {
                Ok(()) if failing => {
                    info!("heartbeat written again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    warn!(error = %e, "cannot write the heartbeat; retrying (reconciles stop if it stays unwritten)");
                    failing = true;
                }
                Err(e) => debug!(error = %e, "heartbeat still failing"),
            }
        }
        if self.js.client().connection_state() != async_nats::connection::State::Connected {
            debug!("NATS is not connected; the heartbeat is left to go stale");
            return;
        }
        let stopped = self.kv.put(&self.own_key, Self::beat_value(STOPPED));
        match tokio::time::timeout(STOP_WRITE_LIMIT, stopped).await {
            Ok(Ok(_)) => debug!("heartbeat marked stopped"),
            Ok(Err(e)) => debug!(error = %e, "could not mark the heartbeat stopped"),
            Err(_) => debug!("marking the heartbeat stopped timed out"),
        }
    }

    /// Classify a lock owner other than this process by its heartbeat.
    pub async fn holder(&self, owner: &str) -> Result<LockHolder, HeartbeatError> {
        let read = |key: String| async move {
            self.kv
                .entry(key)
                .await
                .map_err(|e| HeartbeatError::Unavailable(e.to_string()))
        };
        // Ours first: theirs, read after it, can only look newer for that, never older.
        let ours = read(self.own_key.clone()).await?;
        let Some(theirs) = read(owner.to_string())
            .await?
            .filter(|e| e.operation == kv::Operation::Put)
        else {
            return Ok(LockHolder::Unknown);
        };
        let beat: Option<Beat> = serde_json::from_slice(&theirs.value).ok();
        if beat.as_ref().is_some_and(|b| b.state == STOPPED) {
            return Ok(LockHolder::Replica {
                silent_for: Duration::MAX,
            });
        }
        // Our own last heartbeat is the server's "now", give or take one interval (earlier,
        // never later). Without it we cannot judge: the owner counts as live.
        let silent_for = match ours {
            Some(ours) => (ours.created - theirs.created)
                .try_into()
                .unwrap_or(Duration::ZERO),
            None => Duration::ZERO,
        };
        Ok(LockHolder::Replica { silent_for })
    }
}

/// The bucket as this manager creates it when missing (an operator may create it with more
/// replicas; an existing bucket is used as it is).
fn bucket_config() -> kv::Config {
    kv::Config {
        bucket: HEARTBEAT_BUCKET.to_string(),
        description: "threeport-manager replica heartbeats (lock owner liveness)".to_string(),
        history: 1,
        max_age: HEARTBEAT_MAX_AGE,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

/// The host (pod) name, for the heartbeat value; empty if unknown.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_is_json_an_operator_can_read_and_stopped_is_recognised() {
        let running: Beat = serde_json::from_slice(&Heartbeats::beat_value(RUNNING)).unwrap();
        assert_eq!(running.state, RUNNING);
        assert_eq!(running.version, crate::VERSION);
        assert_eq!(running.pid, std::process::id());
        let stopped: Beat = serde_json::from_slice(&Heartbeats::beat_value(STOPPED)).unwrap();
        assert_eq!(stopped.state, STOPPED);
        // A value from another (future) version with extra fields still reads.
        let other: Beat =
            serde_json::from_str(r#"{"state":"stopped","zone":"a"}"#).expect("lenient");
        assert_eq!(other.state, STOPPED);
    }
}
