//! The live stream (server-sent events): the streams this replica holds, the listener
//! that hears of every change on any replica, and the response body.
//!
//! Every change to a recipient's notifications commits a `pg_notify` naming them (see
//! `db`). Each replica keeps one connection listening, and on a notification reads, for
//! each of its own streams of that recipient, the stream events after the last one that
//! stream got, then the unread count. A stream's position is behind its own lock, which
//! the replay on opening holds too, so nothing is sent twice or out of order.
//!
//! Memory is bounded per stream: a stream whose client does not read gets at most
//! [`BUFFER`] events queued; one more and it gets a `reset` event and is closed (the
//! client reconnects and reloads). A stream whose client goes away is dropped by the
//! server, which drops its registration with it.

use crate::db;
use crate::model::UnreadCount;
use agora_common::db::DbPool;
use bytes::Bytes;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{Stream, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Live events queued for one stream before its client is taken as too slow (beyond
/// the room a replay takes).
pub const BUFFER: usize = 32;
/// The most events a `Last-Event-ID` replays; more missed is a `reset`.
pub const MAX_REPLAY: i64 = 100;

/// One open stream.
struct Slot {
    id: Uuid,
    /// The last stream event it was sent (locked while sending to it).
    last: tokio::sync::Mutex<i64>,
    tx: mpsc::Sender<Bytes>,
    /// Its client fell [`BUFFER`] events behind.
    overflowed: Arc<AtomicBool>,
}

/// The streams this replica holds, by recipient.
#[derive(Clone)]
pub struct Streams {
    pool: DbPool,
    slots: Arc<Mutex<HashMap<Uuid, Vec<Arc<Slot>>>>>,
    heartbeat: Duration,
    /// `agora_notifications_open_streams`: kept as streams open and close.
    gauge: Gauge<i64>,
}

/// Why a stream was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database.
    #[error("notification stream query failed")]
    Db(#[from] diesel::result::Error),
    /// No database connection.
    #[error("no database connection for the stream")]
    Pool(#[from] agora_common::db::PoolError),
}

impl Streams {
    /// No streams yet; comments every `heartbeat` keep idle ones open.
    pub fn new(pool: DbPool, heartbeat: Duration) -> Self {
        Self {
            pool,
            slots: Arc::new(Mutex::new(HashMap::new())),
            heartbeat,
            gauge: Gauge::default(),
        }
    }

    /// The gauge of the streams this replica holds (to register with the metrics).
    pub fn gauge(&self) -> Gauge<i64> {
        self.gauge.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Arc<Slot>>>> {
        // A panic while holding it cannot leave the map half-changed: take it anyway.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many streams are registered for changes.
    #[cfg(test)]
    fn registered(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// The ids of the streams this replica holds.
    pub fn ids(&self) -> Vec<Uuid> {
        self.lock().values().flatten().map(|s| s.id).collect()
    }

    fn remove(&self, recipient: Uuid, id: Uuid) {
        let mut slots = self.lock();
        if let Some(list) = slots.get_mut(&recipient) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                slots.remove(&recipient);
            }
        }
    }

    /// Opens stream `id` (already counted in `open_streams`) of `recipient`: replays
    /// what came after `last_event_id` (or a `reset` when that is not one of theirs or
    /// too much was missed), then the unread count, then lives.
    pub async fn attach(
        &self,
        id: Uuid,
        recipient: Uuid,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, OpenError> {
        // Room for a whole replay, a reset and a count, then the live buffer.
        let (tx, rx) = mpsc::channel(MAX_REPLAY as usize + 2 + BUFFER);
        let overflowed = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Slot {
            id,
            last: tokio::sync::Mutex::new(0),
            tx,
            overflowed: overflowed.clone(),
        });
        // Held until the replay is sent, so the listener waits its turn.
        let mut last = slot.last.lock().await;
        self.lock().entry(recipient).or_default().push(slot.clone());
        self.gauge.inc();
        let stream = EventStream {
            rx,
            overflowed,
            heartbeat: tokio::time::interval_at(
                tokio::time::Instant::now() + self.heartbeat,
                self.heartbeat,
            ),
            reset_sent: false,
            _guard: Guard {
                streams: self.clone(),
                recipient,
                id,
            },
        };
        let mut conn = agora_common::db::checkout(&self.pool).await?;
        let newest = db::last_stream_event(&mut conn, recipient).await?;
        let mut replay = Vec::new();
        *last = newest;
        if let Some(given) = last_event_id {
            let known = match given.trim().parse::<i64>() {
                Ok(seq) if db::is_stream_event(&mut conn, recipient, seq).await? => Some(seq),
                _ => None,
            };
            match known {
                Some(seq) => {
                    replay =
                        db::stream_events_after(&mut conn, recipient, seq, MAX_REPLAY + 1).await?;
                    if replay.len() as i64 > MAX_REPLAY {
                        replay.clear();
                        let _ = send(&slot, reset_event());
                    } else {
                        *last = seq;
                    }
                }
                None => {
                    let _ = send(&slot, reset_event());
                }
            }
        }
        // The channel has room for all of it (see its capacity).
        for event in replay {
            *last = event.seq;
            let _ = send(&slot, notification_event(&event));
        }
        let unread = db::unread_count(&mut conn, recipient).await?;
        let _ = send(&slot, unread_event(unread));
        drop(last);
        Ok(stream)
    }

    /// Sends each of `recipient`'s streams here what it has not seen yet: one read for
    /// all of them, under their locks (taken in registration order, so concurrent
    /// dispatches for one recipient take turns and never send twice or out of order).
    async fn dispatch(&self, recipient: Uuid) -> Result<(), OpenError> {
        let slots: Vec<Arc<Slot>> = self.lock().get(&recipient).cloned().unwrap_or_default();
        if slots.is_empty() {
            return Ok(());
        }
        let mut lasts = Vec::with_capacity(slots.len());
        for slot in &slots {
            lasts.push(slot.last.lock().await);
        }
        let from = lasts.iter().map(|last| **last).min().unwrap_or(0);
        let (events, unread) = {
            let mut conn = agora_common::db::checkout(&self.pool).await?;
            let events =
                db::stream_events_after(&mut conn, recipient, from, MAX_REPLAY + BUFFER as i64)
                    .await?;
            (events, db::unread_count(&mut conn, recipient).await?)
        };
        for (slot, last) in slots.iter().zip(lasts.iter_mut()) {
            let mut delivered = true;
            let seen = **last;
            for event in events.iter().filter(|e| e.seq > seen) {
                **last = event.seq;
                delivered = send(slot, notification_event(event));
                if !delivered {
                    break;
                }
            }
            if !delivered || !send(slot, unread_event(unread)) {
                // Too slow or gone: it gets its reset (or nothing) and no more work.
                self.remove(recipient, slot.id);
            }
        }
        Ok(())
    }

    /// Listens for changes on `database_url` forever, reconnecting with backoff (at most
    /// 2 s: it is one connection per replica, and every open stream waits on it); after a
    /// reconnection every stream here catches up (what was announced meanwhile).
    pub async fn listen(self, database_url: String) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.listen_once(&database_url).await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "notification listener lost its connection");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn listen_once(&self, database_url: &str) -> Result<(), ListenError> {
        // Bounded: connecting to a database whose pod is gone can hang for a minute,
        // with every stream of this replica deaf meanwhile.
        let mut conn =
            tokio::time::timeout(CHECK_TIMEOUT, AsyncPgConnection::establish(database_url))
                .await
                .map_err(|_| ListenError::Timeout)??;
        tokio::time::timeout(
            CHECK_TIMEOUT,
            diesel::sql_query(format!("LISTEN {}", db::CHANNEL)).execute(&mut conn),
        )
        .await
        .map_err(|_| ListenError::Timeout)??;
        tracing::info!("listening for notification changes");
        let dispatching = Arc::new(tokio::sync::Semaphore::new(DISPATCHES));
        // Whatever was announced while not listening.
        let recipients: Vec<Uuid> = self.lock().keys().copied().collect();
        for recipient in recipients {
            self.dispatch(recipient).await?;
        }
        loop {
            let next = {
                let mut notifications = std::pin::pin!(conn.notifications_stream());
                tokio::time::timeout(LISTEN_CHECK, notifications.next()).await
            };
            let notification = match next {
                Ok(Some(notification)) => notification?,
                Ok(None) => return Ok(()),
                // Quiet for a while: make sure the connection still answers (a
                // connection whose peer vanished without a reset would never say).
                Err(_) => {
                    tokio::time::timeout(
                        CHECK_TIMEOUT,
                        diesel::sql_query("SELECT 1").execute(&mut conn),
                    )
                    .await
                    .map_err(|_| ListenError::Timeout)??;
                    continue;
                }
            };
            let Ok(recipient) = notification.payload.parse::<Uuid>() else {
                continue;
            };
            // Concurrently (bounded): one recipient's slow read must not hold up the
            // others' changes behind it.
            let Ok(permit) = dispatching.clone().acquire_owned().await else {
                return Ok(());
            };
            let streams = self.clone();
            tokio::spawn(async move {
                if let Err(error) = streams.dispatch(recipient).await {
                    tracing::warn!(%error, "cannot send a change to its streams");
                }
                drop(permit);
            });
        }
    }
}

/// Dispatches a replica runs at once (each holds a pooled connection for two reads).
const DISPATCHES: usize = 8;

/// How long the listener waits for the database to connect or to answer a check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the listener's connection may be quiet before it is checked.
const LISTEN_CHECK: Duration = Duration::from_secs(15);

/// Why the listener stopped.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("the database did not answer within 5 s")]
    Timeout,
    #[error("cannot connect")]
    Connect(#[from] diesel::ConnectionError),
    #[error("query failed")]
    Query(#[from] diesel::result::Error),
    #[error("dispatch failed")]
    Dispatch(#[from] OpenError),
}

/// Queues an event for a stream; `false` (and the stream marked for a `reset`) when
/// its client is too far behind or gone.
fn send(slot: &Slot, event: Bytes) -> bool {
    match slot.tx.try_send(event) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            slot.overflowed.store(true, Ordering::Relaxed);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn notification_event(event: &db::StreamEvent) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: notification\ndata: {}\n\n",
        event.seq, event.item
    ))
}

fn unread_event(unread: i64) -> Bytes {
    let data = serde_json::to_string(&UnreadCount { unread }).unwrap_or_default();
    Bytes::from(format!("event: unread\ndata: {data}\n\n"))
}

fn reset_event() -> Bytes {
    Bytes::from_static(b"event: reset\ndata: {}\n\n")
}

/// Removes a stream's registration (here and in `open_streams`) when its body is
/// dropped: the client went away or the stream ended.
struct Guard {
    streams: Streams,
    recipient: Uuid,
    id: Uuid,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.streams.remove(self.recipient, self.id);
        self.streams.gauge.dec();
        let pool = self.streams.pool.clone();
        let id = self.id;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(mut conn) = pool.get().await
                    && let Err(error) = db::close_streams(&mut conn, &[id]).await
                {
                    tracing::warn!(%error, "cannot forget a closed stream; it expires");
                }
            });
        }
    }
}

/// A stream's body: its queued events, a comment line every heartbeat, and a `reset`
/// before the end when its client fell behind.
pub struct EventStream {
    rx: mpsc::Receiver<Bytes>,
    overflowed: Arc<AtomicBool>,
    heartbeat: tokio::time::Interval,
    reset_sent: bool,
    _guard: Guard,
}

impl Stream for EventStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.reset_sent {
            return Poll::Ready(None);
        }
        if AtomicBool::load(&self.overflowed, Ordering::Relaxed) {
            // What is queued is stale once one event was lost: reset and close.
            self.reset_sent = true;
            return Poll::Ready(Some(Ok(reset_event())));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(event))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        match self.heartbeat.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
    use super::*;
    use diesel::sql_types::{Jsonb, Uuid as SqlUuid};

    async fn streams() -> Streams {
        let url = agora_common::testing::fresh_database("notif_streams").await;
        let pool = agora_common::db::prepare(&url, crate::MIGRATIONS, "notifications", 4)
            .await
            .unwrap();
        Streams::new(pool, Duration::from_secs(3600))
    }

    async fn add_events(streams: &Streams, recipient: Uuid, count: usize) {
        let mut conn = streams.pool.get().await.unwrap();
        for i in 0..count {
            diesel::sql_query("INSERT INTO stream_events (recipient, item) VALUES ($1, $2)")
                .bind::<SqlUuid, _>(recipient)
                .bind::<Jsonb, _>(serde_json::json!({ "n": i }))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    async fn drain(stream: &mut EventStream) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(Some(Ok(event))) =
            tokio::time::timeout(Duration::from_millis(200), stream.next()).await
        {
            seen.push(String::from_utf8(event.to_vec()).unwrap());
        }
        seen
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_everything_once_in_order() {
        let streams = streams().await;
        let ada = Uuid::now_v7();
        let mut stream = streams.attach(Uuid::now_v7(), ada, None).await.unwrap();
        assert_eq!(
            drain(&mut stream).await,
            ["event: unread\ndata: {\"unread\":0}\n\n"]
        );
        add_events(&streams, ada, 3).await;
        streams.dispatch(ada).await.unwrap();
        streams.dispatch(ada).await.unwrap(); // nothing new: nothing sent twice
        let seen = drain(&mut stream).await;
        let notifications: Vec<&String> = seen
            .iter()
            .filter(|e| e.contains("event: notification"))
            .collect();
        assert_eq!(notifications.len(), 3, "{seen:?}");
        assert!(notifications[0].contains(r#"{"n":0}"#) && notifications[2].contains(r#"{"n":2}"#));
        assert_eq!((streams.registered(), streams.gauge.get()), (1, 1));
        drop(stream);
        assert_eq!(
            (streams.registered(), streams.gauge.get()),
            (0, 0),
            "a dropped stream is let go at once"
        );
    }

    #[tokio::test]
    async fn a_slow_reader_gets_a_reset_and_the_end_instead_of_growing_memory() {
        let streams = streams().await;
        let ada = Uuid::now_v7();
        let mut stream = streams.attach(Uuid::now_v7(), ada, None).await.unwrap();
        // Far more than its buffer arrives while it does not read.
        for _ in 0..(MAX_REPLAY as usize + BUFFER) / BUFFER + 2 {
            add_events(&streams, ada, BUFFER).await;
            streams.dispatch(ada).await.unwrap();
        }
        assert_eq!(
            streams.registered(),
            0,
            "an overflowing stream gets no more work"
        );
        assert_eq!(streams.gauge.get(), 1, "still open until its reset is read");
        let seen = drain(&mut stream).await;
        assert_eq!(seen, ["event: reset\ndata: {}\n\n"]);
        assert!(stream.next().await.is_none(), "then the stream ends");
        drop(stream);
        assert_eq!(streams.gauge.get(), 0);
    }

    #[tokio::test]
    async fn the_listener_comes_back_after_losing_its_connection_and_catches_up() {
        let url = agora_common::testing::fresh_database("notif_listen").await;
        let pool = agora_common::db::prepare(&url, crate::MIGRATIONS, "notifications", 4)
            .await
            .unwrap();
        let streams = Streams::new(pool, Duration::from_secs(3600));
        tokio::spawn(streams.clone().listen(url));
        let ada = Uuid::now_v7();
        let mut stream = streams.attach(Uuid::now_v7(), ada, None).await.unwrap();
        drain(&mut stream).await;
        let announce = |n: usize| {
            let streams = streams.clone();
            async move {
                add_events(&streams, ada, n).await;
                let mut conn = streams.pool.get().await.unwrap();
                diesel::sql_query(format!("NOTIFY {}, '{ada}'", db::CHANNEL))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        };
        // Listening: a change reaches the stream.
        tokio::time::sleep(Duration::from_millis(500)).await;
        announce(1).await;
        let got = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
        assert!(got.is_ok_and(|e| e.is_some()), "a change while listening");
        drain(&mut stream).await;
        // Its connection killed: it reconnects, and what came meanwhile arrives.
        let mut conn = streams.pool.get().await.unwrap();
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        drop(conn);
        announce(2).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut notifications = 0;
        while notifications < 2 {
            let event = tokio::time::timeout_at(deadline, stream.next())
                .await
                .expect("the changes after a reconnection")
                .unwrap()
                .unwrap();
            if event.starts_with(b"id: ") {
                notifications += 1;
            }
        }
    }

    #[tokio::test]
    async fn a_replay_resumes_after_a_known_id_and_resets_after_an_unknown_one() {
        let streams = streams().await;
        let ada = Uuid::now_v7();
        add_events(&streams, ada, 3).await;
        let mut conn = streams.pool.get().await.unwrap();
        let last = db::last_stream_event(&mut conn, ada).await.unwrap();
        let given = (last - 2).to_string();
        let mut stream = streams
            .attach(Uuid::now_v7(), ada, Some(&given))
            .await
            .unwrap();
        let seen = drain(&mut stream).await;
        assert_eq!(seen.len(), 3, "two missed, then the count: {seen:?}");
        assert!(seen[0].starts_with(&format!("id: {}\n", last - 1)));
        for bad in ["x", "-1", &(last + 1000).to_string()] {
            let mut stream = streams
                .attach(Uuid::now_v7(), ada, Some(bad))
                .await
                .unwrap();
            assert!(
                drain(&mut stream).await[0].starts_with("event: reset"),
                "{bad}"
            );
        }
        // Someone else's id is not one of this stream's.
        let bo = Uuid::now_v7();
        let mut stream = streams
            .attach(Uuid::now_v7(), bo, Some(&given))
            .await
            .unwrap();
        assert!(drain(&mut stream).await[0].starts_with("event: reset"));
        // Too much missed: a reset.
        add_events(&streams, ada, MAX_REPLAY as usize + 1).await;
        let mut stream = streams
            .attach(Uuid::now_v7(), ada, Some(&given))
            .await
            .unwrap();
        assert!(drain(&mut stream).await[0].starts_with("event: reset"));
    }
}
