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
use crate::threeport::events::EventOperation;
use crate::threeport::{ApiError, RetryClass, ThreeportApi};

/// The operation of a notification (spec 1.5 `Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Created,
    Updated,
    Deleted,
}

impl Operation {
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
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ReconcileError {
    pub class: RetryClass,
    pub message: String,
    /// Replaces the default failure event (Threeport's `ErrWithEvent`, spec 1.9 step 11).
    pub event: Option<EventOverride>,
}

/// A custom failure event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOverride {
    pub reason: String,
    pub note: String,
    pub warning: bool,
}

impl ReconcileError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: RetryClass::Transient,
            message: message.into(),
            event: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: RetryClass::Permanent,
            message: message.into(),
            event: None,
        }
    }

    pub fn with_event(mut self, event: EventOverride) -> Self {
        self.event = Some(event);
        self
    }
}

impl From<ApiError> for ReconcileError {
    fn from(e: ApiError) -> Self {
        Self {
            class: e.retry_class(),
            message: e.to_string(),
            event: None,
        }
    }
}

/// What a reconciler gets besides the object.
#[derive(Clone)]
pub struct ReconcileContext {
    pub api: Arc<dyn ThreeportApi>,
    pub controller: &'static ControllerSpec,
    pub reconciler: &'static ReconcilerSpec,
    pub object_id: u64,
    pub operation: Operation,
    /// JetStream delivery count of this notification (1 on first delivery).
    pub attempt: u64,
    /// This process's instance UUID (the lock value; Threeport's `controllerID`).
    pub instance_id: uuid::Uuid,
    /// Cancelled when the lock is lost or shutdown gives up waiting. Long reconciles should
    /// check it between steps; the engine also drops the reconcile future when it fires.
    pub cancel: CancellationToken,
}

/// A Threeport reconciler for one object type.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// The typed object (from `threeport::models`), or `serde_json::Value`.
    type Object: DeserializeOwned + Send + Sync + 'static;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError>;
    async fn updated(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError>;
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
