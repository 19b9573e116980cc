//! Which replica resyncs a reconciler: the holder of its lease, key `<ReconcilerName>` in the KV
//! bucket `threeportManagerResync`, taken, renewed, released and taken over with the same
//! revision-checked operations as the object locks ([`LockClient`]).
//!
//! The value says who holds it and when the last run started:
//! `{"owner":"<instance UUID>","last_run_ms":1764583200000}`. The last run survives a change
//! of leader, so the next leader keeps the schedule (one run per interval, whoever runs it).
//! Releasing writes `"owner":null` rather than deleting the key, for the same reason.
//!
//! A holder that dies stops renewing. The others judge staleness by what they saw, not by
//! clocks: a revision that has not changed for the lease TTL by their own monotonic clock
//! belongs to a leader that is gone, and is replaced with a write conditional on that
//! revision, so two contenders cannot both win. A leader renews three times per TTL, each
//! write bounded by a third of it, and steps down as soon as one fails, so it has stopped
//! before anyone can take over.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::engine::lock::{Lease, LockClient, LockError};

/// The KV bucket of the resync leases, one key per reconciler.
pub const RESYNC_BUCKET: &str = "threeportManagerResync";
const RESYNC_BUCKET_DESCRIPTION: &str =
    "resync leases of threeport-manager: which replica lists each reconciler's objects";

/// The lease's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseValue {
    /// The holder's instance UUID; `None` once released.
    owner: Option<String>,
    /// Start of the last run, Unix milliseconds.
    last_run_ms: Option<i64>,
}

impl LeaseValue {
    fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a lease value serialises"))
    }

    fn last_run(&self) -> Option<OffsetDateTime> {
        let ms = self.last_run_ms?;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Open the bucket of the resync leases, creating it if missing.
pub async fn open_bucket(js: &jetstream::Context, owner: &str) -> Result<LockClient, LockError> {
    LockClient::open_or_create(js, RESYNC_BUCKET, RESYNC_BUCKET_DESCRIPTION, owner).await
}

/// A replica that wants to resync a reconciler.
pub struct Contender {
    locks: LockClient,
    key: String,
    owner: String,
    /// The holder's revision last seen, and since when (this process's clock).
    observed: Option<(u64, Instant)>,
}

/// The outcome of one [`Contender::try_lead`].
pub enum Attempt {
    /// This replica now holds the lease.
    Leading(Box<Leadership>),
    /// Another live replica holds it.
    Following {
        /// The holder's instance UUID, when its value says.
        holder: Option<String>,
    },
}

impl Contender {
    /// A contender for `reconciler`'s lease, as `owner` (this process's instance UUID).
    pub fn new(locks: LockClient, reconciler: &str, owner: &str) -> Self {
        Self {
            locks,
            key: reconciler.to_string(),
            owner: owner.to_string(),
            observed: None,
        }
    }

    /// Take the lease if it is free, released, ours, or unchanged for `ttl` since this
    /// contender first saw its current revision.
    pub async fn try_lead(&mut self, ttl: Duration) -> Result<Attempt, LockError> {
        let Some(holder) = self.locks.inspect(&self.key).await? else {
            let value = LeaseValue {
                owner: Some(self.owner.clone()),
                last_run_ms: None,
            };
            return match self.locks.acquire_with(&self.key, value.encode()).await {
                Ok(lease) => Ok(Attempt::Leading(self.leadership(lease, value))),
                Err(LockError::Held { .. }) => Ok(Attempt::Following { holder: None }),
                Err(e) => Err(e),
            };
        };
        // A value that does not decode (written by something else) has no owner to respect
        // beyond its revision, and no last run.
        let current: LeaseValue = serde_json::from_str(&holder.owner).unwrap_or(LeaseValue {
            owner: Some(holder.owner.clone()),
            last_run_ms: None,
        });
        let released_or_ours = match current.owner.as_deref() {
            None => true,
            Some(owner) => owner == self.owner,
        };
        let stale = match self.observed {
            Some((revision, since)) if revision == holder.revision => since.elapsed() >= ttl,
            _ => {
                self.observed = Some((holder.revision, Instant::now()));
                false
            }
        };
        if !released_or_ours && !stale {
            return Ok(Attempt::Following {
                holder: current.owner,
            });
        }
        let value = LeaseValue {
            owner: Some(self.owner.clone()),
            last_run_ms: current.last_run_ms,
        };
        match self
            .locks
            .take_over_with(&self.key, holder.revision, value.encode())
            .await
        {
            Ok(lease) => {
                if stale && !released_or_ours {
                    tracing::warn!(reconciler = %self.key, previous_owner = ?current.owner,
                        ttl_s = ttl.as_secs_f64(), "took over the resync lease: not renewed for its TTL");
                }
                Ok(Attempt::Leading(self.leadership(lease, value)))
            }
            Err(LockError::Held { .. }) => Ok(Attempt::Following {
                holder: current.owner,
            }),
            Err(e) => Err(e),
        }
    }

    fn leadership(&mut self, lease: Lease, value: LeaseValue) -> Box<Leadership> {
        self.observed = None;
        Box::new(Leadership {
            locks: self.locks.clone(),
            lease,
            value,
        })
    }
}

/// The held lease of a reconciler's resync.
pub struct Leadership {
    locks: LockClient,
    lease: Lease,
    value: LeaseValue,
}

impl Leadership {
    /// Start of the last run, by whichever replica made it.
    pub fn last_run(&self) -> Option<OffsetDateTime> {
        self.value.last_run()
    }

    /// Renew the lease. [`LockError::Lost`] if someone else wrote it.
    pub async fn renew(&mut self) -> Result<(), LockError> {
        self.locks
            .renew_with(&mut self.lease, self.value.encode())
            .await
    }

    /// Record that a run started at `at` (a renewal that carries it).
    pub async fn record_run(&mut self, at: OffsetDateTime) -> Result<(), LockError> {
        self.value.last_run_ms = Some(unix_ms(at));
        self.renew().await
    }

    /// Give the lease up, keeping the last run for the next leader. A lease that is no longer
    /// ours is left alone.
    pub async fn release(mut self) -> Result<(), LockError> {
        self.value.owner = None;
        self.locks
            .renew_with(&mut self.lease, self.value.encode())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trips_with_millisecond_last_run() {
        let at = OffsetDateTime::from_unix_timestamp(1_764_583_200).unwrap()
            + Duration::from_millis(250);
        let v = LeaseValue {
            owner: Some("6f1c".into()),
            last_run_ms: Some(unix_ms(at)),
        };
        let bytes = v.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"owner":"6f1c","last_run_ms":1764583200250}"#
        );
        let back: LeaseValue = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.last_run(), Some(at));
        let released: LeaseValue =
            serde_json::from_str(r#"{"owner":null,"last_run_ms":null}"#).unwrap();
        assert_eq!(released, LeaseValue::default());
    }
}
