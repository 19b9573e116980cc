//! The contract between the engine and a Threeport reconciler.
//!
//! A reconciler knows nothing about NATS, locks or acks: it gets the latest object (re-read from
//! the API, spec 1.9 step 10) and a context, and says whether it is done, wants to be called
//! again later, or failed. The engine turns that into Threeport's completion protocol, lock
//! release, ack / NAK / term and events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::registry::{ControllerSpec, ReconcilerSpec};
use crate::retry::{Classify, RetryClass};
use crate::threeport::events::EventOperation;
#[cfg(doc)]
use crate::threeport::ApiError;
use crate::threeport::ThreeportApi;

/// The operation of a notification (spec 1.5 `Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The object was created (`<subject>.create`).
    Created,
    /// The object was changed (`<subject>.update`).
    Updated,
    /// The object was scheduled for deletion (`<subject>.delete`); the engine confirms and
    /// completes the deletion after a successful reconcile.
    Deleted,
}

impl Operation {
    /// The `Operation` value of the notification: `Created`, `Updated` or `Deleted`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Created => "Created",
            Operation::Updated => "Updated",
            Operation::Deleted => "Deleted",
        }
    }
}

/// The event vocabulary (reasons and notes) lives with the event recorder.
impl From<Operation> for EventOperation {
    fn from(op: Operation) -> Self {
        match op {
            Operation::Created => EventOperation::Created,
            Operation::Updated => EventOperation::Updated,
            Operation::Deleted => EventOperation::Deleted,
        }
    }
}

/// What a successful reconcile asks the engine to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: run the completion protocol, release the lock, ack, record the success event.
    Done,
    /// Not finished yet (e.g. waiting for another object): release the lock and NAK the message
    /// with this delay, without PATCHing `Reconciled` and without an event (spec 1.8, "custom delay").
    RequeueAfter(Duration),
}

/// A reconcile failure, classified so the engine can pick a retry strategy.
///
/// Built from any classified error of a lower layer with `?` (an [`ApiError`], a
/// [`KubeError`](crate::kube::KubeError), a manifest error): the class comes from the error
/// and the error itself is kept as the cause, so its type survives up to the engine (tests
/// match on it, [`std::error::Error::source`] walks it). Or built from a message, for
/// failures the reconciler itself detects.
#[derive(Debug)]
pub struct ReconcileError {
    /// How the engine retries: transient with backoff, permanent at the backoff cap.
    pub class: RetryClass,
    cause: Cause,
    /// Replaces the default failure event (Threeport's `ErrWithEvent`, spec 1.9 step 11).
    pub event: Option<EventOverride>,
}

#[derive(Debug)]
enum Cause {
    Message(String),
    Error(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// A custom failure event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOverride {
    /// The event's `Reason`, e.g. `FailedCreate`.
    pub reason: String,
    /// The event's `Note`: the human-readable explanation.
    pub note: String,
    /// `Warning` rather than `Normal` as the event's `Type`.
    pub warning: bool,
}

impl ReconcileError {
    /// A failure that is expected to go away by itself.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::message(RetryClass::Transient, message)
    }

    /// A failure that needs someone to change something before a retry can succeed.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::message(RetryClass::Permanent, message)
    }

    fn message(class: RetryClass, message: impl Into<String>) -> Self {
        Self {
            class,
            cause: Cause::Message(message.into()),
            event: None,
        }
    }

    /// The same failure, recorded with `event` instead of the default failure event.
    pub fn with_event(mut self, event: EventOverride) -> Self {
        self.event = Some(event);
        self
    }

    /// The typed error this failure was built from, if it is an `E`.
    pub fn cause<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match &self.cause {
            Cause::Error(e) => e.downcast_ref::<E>(),
            Cause::Message(_) => None,
        }
    }
}

/// Transparent over the cause: the message of a wrapped error is the error's own, and
/// `source()` continues with the cause's source, so a chain printer shows each layer once.
impl std::fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.cause {
            Cause::Message(m) => f.write_str(m),
            Cause::Error(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for ReconcileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Message(_) => None,
            Cause::Error(e) => e.source(),
        }
    }
}

impl<E: Classify> From<E> for ReconcileError {
    fn from(e: E) -> Self {
        Self {
            class: e.retry_class(),
            cause: Cause::Error(Box::new(e)),
            event: None,
        }
    }
}

/// What a reconciler gets besides the object.
#[derive(Clone)]
pub struct ReconcileContext {
    /// The Threeport API, for reading and writing related objects.
    pub api: Arc<dyn ThreeportApi>,
    /// The controller this reconcile runs for.
    pub controller: &'static ControllerSpec,
    /// The reconciler's registry entry (name, object type, event words).
    pub reconciler: &'static ReconcilerSpec,
    /// ID of the object being reconciled (the notification's `Object.ID`).
    pub object_id: u64,
    /// The notification's operation, which picked the method called.
    pub operation: Operation,
    /// JetStream delivery count of this notification (1 on first delivery).
    pub attempt: u64,
    /// This process's instance UUID (the lock value; Threeport's `controllerID`).
    pub instance_id: uuid::Uuid,
    /// Cancelled when the lock is lost or shutdown gives up waiting. Long reconciles should
    /// check it between steps; the engine also drops the reconcile future when it fires.
    pub cancel: CancellationToken,
    /// The notification's copy of the object (`Object`). Reconcilers work on the latest
    /// object re-read from the API; this is for what only the notification carries (a
    /// SecretDefinition's encrypted `Data`, spec 1.9.3).
    pub notified: Arc<Value>,
}

/// A Threeport reconciler for one object type.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// The typed object (from `threeport::models`), or `serde_json::Value`.
    type Object: DeserializeOwned + Send + Sync + 'static;

    /// Handle a Created notification for the latest `object`.
    async fn created(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError>;
    /// Handle an Updated notification for the latest `object`.
    async fn updated(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError>;
    /// Handle a Deleted notification: undo what `created` did. The engine then confirms the
    /// deletion and deletes the object.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError>;
}

/// Object-safe form of [`Reconciler`] that the engine stores: decodes the latest JSON object
/// into the reconciler's type and dispatches on the operation.
#[async_trait]
pub trait DynReconciler: Send + Sync + 'static {
    /// Decode `latest` into the reconciler's object type (a permanent failure if it does not
    /// decode) and call the method for `ctx.operation`.
    async fn dispatch(
        &self,
        ctx: &ReconcileContext,
        latest: Value,
    ) -> Result<Outcome, ReconcileError>;
}

#[async_trait]
impl<R: Reconciler> DynReconciler for R {
    async fn dispatch(
        &self,
        ctx: &ReconcileContext,
        latest: Value,
    ) -> Result<Outcome, ReconcileError> {
        let object: R::Object = serde_json::from_value(latest).map_err(|e| {
            ReconcileError::permanent(format!(
                "latest {} {} from the API does not decode: {e}",
                ctx.reconciler.object.name, ctx.object_id
            ))
        })?;
        match ctx.operation {
            Operation::Created => self.created(ctx, object).await,
            Operation::Updated => self.updated(ctx, object).await,
            Operation::Deleted => self.deleted(ctx, object).await,
        }
    }
}
