//! Object locks in a NATS KV bucket, compatible with Threeport's Go controllers (spec 1.7) and
//! safer than them (spec 4.1 #6, #11).
//!
//! - Bucket `<group>Lock`, created if missing with Go's config: history 1, max age 20 min.
//! - Key `<ReconcilerName>.<objectID>`, value = this process's instance UUID.
//! - Acquire: `create` (atomic create-if-absent; async-nats also creates over a delete or purge
//!   tombstone, like nats.go). No separate "check" round trip.
//! - Renew: `update(key, value, revision)`. With history 1 and a bucket max age, every write
//!   restarts the key's age, so an update *is* a lease renewal (nats-server behaviour; the takeover tests in tests/engine.rs rely on it). A revision
//!   mismatch means someone else wrote the key: the lease is lost.
//! - Release: delete with the expected revision, so we never delete another owner's lock
//!   (Go deletes unconditionally).
//!
//! - Take over: a lock whose owner is gone (a dead replica, this process's own leftover, or an
//!   owner without heartbeat past the takeover age; the decision is
//!   [`plan_lock_conflict`](super::decision::plan_lock_conflict), the liveness
//!   [`super::liveness`]) is replaced with `update(key, value, revision)` on the stale revision,
//!   so two contenders cannot both win, and an owner that released or renewed in between keeps
//!   its lock.
//! - Every task of this process that is about to take a key, or holds it, claims it in memory
//!   first ([`LockClient::claim`]), so a lock with this process's own value that no other task
//!   of it has claimed is recognised as a leftover of a release that failed, and a task that is
//!   still between its `create` and its reconcile is never mistaken for one.
//!
//! A Go controller and this manager exclude each other: both use `create` on the same key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

/// Threeport's lock bucket TTL (spec 1.3 step 6). Part of the wire contract: a bucket created
/// here must look like one the Go controllers create.
pub const LOCK_BUCKET_MAX_AGE: Duration = Duration::from_secs(20 * 60);

/// Why a lock operation failed. The key and bucket are named; the owner value never is.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another owner holds the lock (create found the key, or a takeover lost the race).
    #[error("lock {key} is held by another owner")]
    Held {
        /// The lock key, `<Reconciler>.<id>`.
        key: String,
    },
    /// Our lease is gone: the key's revision is no longer the one we last wrote.
    #[error("lock {key} was taken over by another owner (expected revision {revision})")]
    Lost {
        /// The lock key, `<Reconciler>.<id>`.
        key: String,
        /// The revision of our last write, which the key no longer has.
        revision: u64,
    },
    /// The lock bucket could neither be opened nor created.
    #[error("lock bucket {bucket}: {reason}")]
    Bucket {
        /// The KV bucket's name, e.g. `workloadLock`.
        bucket: String,
        /// The errors of both the open and the create.
        reason: String,
    },
    /// NATS KV did not answer a lock operation (timeout, disconnect, server error).
    #[error("lock {key}: NATS KV unavailable: {reason}")]
    Unavailable {
        /// The lock key, `<Reconciler>.<id>`.
        key: String,
        /// The NATS client's error.
        reason: String,
    },
}

/// A held lock: the key and the revision of our last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lock key, `<Reconciler>.<id>` (see
    /// [`ReconcilerSpec::lock_key`](crate::registry::ReconcilerSpec::lock_key)).
    pub key: String,
    /// KV revision of our last write (acquire, renew or takeover); renewals and the release
    /// are conditional on it.
    pub revision: u64,
}

/// Another owner's lock as read from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The value: the holder's instance (Threeport's `controllerID`) UUID.
    pub owner: String,
    /// KV revision of the holder's last write; a takeover is conditional on it.
    pub revision: u64,
    /// Time since the holder last wrote the key (took or renewed it), by the server's clock.
    pub age: Duration,
}

/// A task's claim on a lock key in this process (see [`LockClient::claim`]); released on drop.
pub struct Claim {
    claims: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = lock_claims(&self.claims);
        if let Some(n) = claims.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                claims.remove(&self.key);
            }
        }
    }
}

fn lock_claims(
    claims: &Mutex<HashMap<String, usize>>,
) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    claims.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lock operations on one controller's bucket, as one owner.
#[derive(Clone)]
pub struct LockClient {
    kv: kv::Store,
    bucket: String,
    owner: Bytes,
    /// How many tasks of this process have claimed each key (see [`LockClient::claim`]),
    /// shared by the clones.
    claims: Arc<Mutex<HashMap<String, usize>>>,
}

impl LockClient {
    /// Open the bucket, creating it with Threeport's config if it does not exist.
    pub async fn open_or_create(
        js: &jetstream::Context,
        bucket: &str,
        description: &str,
        owner: &str,
    ) -> Result<Self, LockError> {
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(get_err) => {
                // Not found (or not readable): create it the way Go does. If another process
                // created it in between, creation with an identical config succeeds.
                js.create_key_value(kv::Config {
                    bucket: bucket.to_string(),
                    description: description.to_string(),
                    history: 1,
                    max_age: LOCK_BUCKET_MAX_AGE,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: 1,
                    ..Default::default()
                })
                .await
                .map_err(|e| LockError::Bucket {
                    bucket: bucket.to_string(),
                    reason: format!("cannot open ({get_err}) or create ({e})"),
                })?
            }
        };
        Ok(Self {
            kv,
            bucket: bucket.to_string(),
            owner: Bytes::from(owner.to_string()),
            claims: Arc::default(),
        })
    }

    /// Claim `key` for the calling task until the returned guard is dropped: before taking
    /// the lock, for as long as the task may hold it.
    pub fn claim(&self, key: &str) -> Claim {
        *lock_claims(&self.claims)
            .entry(key.to_string())
            .or_default() += 1;
        Claim {
            claims: self.claims.clone(),
            key: key.to_string(),
        }
    }

    /// Whether `holder` (a lock's value) is this process while no task of it but the caller
    /// (which has claimed `key`) has claimed the key: a leftover of a release that failed,
    /// safe to take back.
    pub fn is_own_leftover(&self, key: &str, holder: &Holder) -> bool {
        holder.owner.as_bytes() == self.owner.as_ref()
            && lock_claims(&self.claims).get(key).copied().unwrap_or(0) <= 1
    }

    /// The KV bucket's name, e.g. `workloadLock`.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Take the lock, or fail with [`LockError::Held`].
    pub async fn acquire(&self, key: &str) -> Result<Lease, LockError> {
        self.acquire_with(key, self.owner.clone()).await
    }

    /// [`LockClient::acquire`] writing `value` instead of the owner's UUID (a lease that
    /// carries more than its owner, e.g. the resync's last run).
    pub async fn acquire_with(&self, key: &str, value: Bytes) -> Result<Lease, LockError> {
        match self.kv.create(key, value).await {
            Ok(revision) => Ok(Lease {
                key: key.to_string(),
                revision,
            }),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(LockError::Held {
                key: key.to_string(),
            }),
            Err(e) => Err(LockError::Unavailable {
                key: key.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Extend the lease; on success the lease carries the new revision.
    pub async fn renew(&self, lease: &mut Lease) -> Result<(), LockError> {
        self.renew_with(lease, self.owner.clone()).await
    }

    /// [`LockClient::renew`] writing `value` instead of the owner's UUID.
    pub async fn renew_with(&self, lease: &mut Lease, value: Bytes) -> Result<(), LockError> {
        match self.kv.update(&lease.key, value, lease.revision).await {
            Ok(revision) => {
                lease.revision = revision;
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(LockError::Lost {
                key: lease.key.clone(),
                revision: lease.revision,
            }),
            Err(e) => Err(LockError::Unavailable {
                key: lease.key.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Release the lock if it is still ours (revision-checked delete). A lock that is no longer
    /// ours is left alone and reported as [`LockError::Lost`]. If the delete failed, the key
    /// is a leftover that the next attempt on the object here takes back (once the caller's
    /// claim is dropped).
    pub async fn release(&self, lease: &Lease) -> Result<(), LockError> {
        match self
            .kv
            .delete_expect_revision(&lease.key, Some(lease.revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // The server answers a revision mismatch with a JetStream error; tell it apart
                // from an outage by reading the key.
                match self.kv.entry(&lease.key).await {
                    Ok(Some(entry))
                        if entry.revision == lease.revision
                            && entry.operation == kv::Operation::Put =>
                    {
                        Err(LockError::Unavailable {
                            key: lease.key.clone(),
                            reason: e.to_string(),
                        })
                    }
                    Ok(_) => Err(LockError::Lost {
                        key: lease.key.clone(),
                        revision: lease.revision,
                    }),
                    Err(read) => Err(LockError::Unavailable {
                        key: lease.key.clone(),
                        reason: format!("{e}; then reading it: {read}"),
                    }),
                }
            }
        }
    }

    /// Who holds `key` and since when, or `None` if it is free (absent, deleted or purged).
    pub async fn inspect(&self, key: &str) -> Result<Option<Holder>, LockError> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(|e| LockError::Unavailable {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| Holder {
                owner: String::from_utf8_lossy(&e.value).into_owned(),
                revision: e.revision,
                // The server stamps each write; a clock behind the server's reads as age 0.
                age: (time::OffsetDateTime::now_utc() - e.created)
                    .try_into()
                    .unwrap_or(Duration::ZERO),
            }))
    }

    /// Replace a stale lock at `revision` with ours. Fails with [`LockError::Held`] if the key
    /// changed since it was read (the holder renewed or released it, or another contender won).
    pub async fn take_over(&self, key: &str, revision: u64) -> Result<Lease, LockError> {
        self.take_over_with(key, revision, self.owner.clone()).await
    }

    /// [`LockClient::take_over`] writing `value` instead of the owner's UUID.
    pub async fn take_over_with(
        &self,
        key: &str,
        revision: u64,
        value: Bytes,
    ) -> Result<Lease, LockError> {
        let mut lease = Lease {
            key: key.to_string(),
            revision,
        };
        match self.renew_with(&mut lease, value).await {
            Ok(()) => Ok(lease),
            Err(LockError::Lost { key, .. }) => Err(LockError::Held { key }),
            Err(e) => Err(e),
        }
    }
}
