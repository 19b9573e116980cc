//! Which objects have a notification pending or in flight on a reconciler's durable consumer,
//! read from JetStream itself, so a Go controller's backlog counts as much as ours.
//!
//! Every message at or below the consumer's ack floor has been acknowledged (or terminated).
//! Above it are the ones not yet delivered, delivered and not yet acknowledged (a reconcile in
//! progress, a NAK waiting out its delay) and a few acknowledged out of order. All of them
//! count as pending, so an object is never re-notified while a notification of its own may
//! still come. When the consumer has nothing pending or unacknowledged (the usual case) nothing
//! is read; otherwise the cost is the backlog, read once through a short-lived consumer with
//! no acks, never the number of objects.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

use super::ResyncError;
use crate::engine::notification;

/// The most messages read in one fetch.
const FETCH_BATCH: usize = 1_000;

/// What the scan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingObjects {
    /// IDs of the objects with a notification above the ack floor.
    pub ids: HashSet<u64>,
    /// Messages read to find them (0 when the consumer had nothing pending).
    pub messages_read: u64,
}

/// The objects with a notification pending or in flight on `durable` (stream `stream`,
/// subjects `filter_subject`). Reads at most until the stream's last message when the scan
/// began, and gives up after `limit`: a scan that did not finish must not let a pending
/// notification be doubled, so it is an error.
pub async fn pending_objects(
    js: &jetstream::Context,
    stream: &str,
    durable: &str,
    filter_subject: &str,
    limit: Duration,
) -> Result<PendingObjects, ResyncError> {
    let nats = |what: &str, e: &dyn std::fmt::Display| ResyncError::Nats(format!("{what}: {e}"));
    let scan = async {
        let stream_handle = js
            .get_stream(stream)
            .await
            .map_err(|e| nats(&format!("stream {stream}"), &e))?;
        let info = stream_handle
            .consumer_info(durable)
            .await
            .map_err(|e| nats(&format!("consumer {durable}"), &e))?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(PendingObjects::default());
        }
        let last = stream_handle
            .get_info()
            .await
            .map_err(|e| nats(&format!("stream {stream}"), &e))?
            .state
            .last_sequence;
        let start = info.ack_floor.stream_sequence + 1;
        if start > last {
            return Ok(PendingObjects::default());
        }
        // Ephemeral, in memory, no acks: reading it changes nothing for the durable.
        let reader = stream_handle
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ack_policy: consumer::AckPolicy::None,
                filter_subject: filter_subject.to_string(),
                memory_storage: true,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| nats("pending scan consumer", &e))?;
        let mut reader = reader;
        let read = read_ids(&mut reader, last).await;
        // Removed now rather than at its inactivity threshold; a failure costs nothing.
        let name = reader.cached_info().name.clone();
        let _ = stream_handle.delete_consumer(&name).await;
        read
    };
    tokio::time::timeout(limit, scan).await.map_err(|_| {
        ResyncError::Nats(format!(
            "reading the pending notifications of {durable} took longer than {}s",
            limit.as_secs_f64()
        ))
    })?
}

/// Read until the reader has nothing left or passed `last`. An empty fetch alone does not end
/// it (on a large stream with a sparse filter the server may take longer than one fetch to
/// find the next match): the reader's own count of what is left does. The caller's time limit
/// bounds the whole.
async fn read_ids(
    reader: &mut consumer::Consumer<consumer::pull::Config>,
    last: u64,
) -> Result<PendingObjects, ResyncError> {
    let mut found = PendingObjects::default();
    loop {
        let mut batch = reader
            .fetch()
            .max_messages(FETCH_BATCH)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| ResyncError::Nats(format!("pending scan fetch: {e}")))?;
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message =
                message.map_err(|e| ResyncError::Nats(format!("pending scan read: {e}")))?;
            got += 1;
            found.messages_read += 1;
            // An undecodable message is nobody's notification: the engine terminates it.
            if let Ok(n) = notification::decode(&message.payload) {
                found.ids.insert(n.object_id);
            }
            let info = message
                .info()
                .map_err(|e| ResyncError::Nats(format!("pending scan metadata: {e}")))?;
            if info.pending == 0 || info.stream_sequence >= last {
                return Ok(found);
            }
        }
        if got == 0 {
            let left = reader
                .info()
                .await
                .map_err(|e| ResyncError::Nats(format!("pending scan consumer info: {e}")))?
                .num_pending;
            if left == 0 {
                return Ok(found);
            }
        }
    }
}
