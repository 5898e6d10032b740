//! The notification stream: what an open stream costs, and how long after an action's
//! answer its notification reaches the recipient's open stream.
//!
//! Listeners (seeded people) open up to five streams each through the gateway, until
//! `streams` are open; agora up's resident memory before and after gives the cost of one
//! (the gateway's and the service's parts together). Then one actor follows a listener
//! after another at a fixed rate (unfollowing first when it already follows, so every
//! follow is news), and each follow's latency is the time from its answer to the
//! `notification` event on the listener's first stream (zero when it came first).

use crate::report::Latency;
use crate::social::Account;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most streams one person may open (the service's default limit).
const PER_PERSON: usize = 5;
/// How long a follow's notification may take before it counts as missing.
const MISSING_AFTER: Duration = Duration::from_secs(5);

/// What to measure.
pub struct Settings {
    pub base: String,
    pub streams: usize,
    /// Follows a second.
    pub rate: f64,
    pub measure: Duration,
    /// agora up's process, whose resident memory is read.
    pub pid: Option<u32>,
    /// The social mix's rate during the follows (0: none), and its timeout.
    pub mix_rate: f64,
    pub mix_timeout: Duration,
}

/// Why the measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("at least two people are needed (an actor and a listener)")]
    TooFewPeople,
    #[error("opening a stream: {0}")]
    Open(String),
    #[error("only {opened} of {wanted} streams opened within a minute")]
    NotOpened { opened: usize, wanted: usize },
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}")]
    Refused { what: String, status: u16 },
}

/// Resident memory of `pid` in KiB (0 when unknown).
pub fn rss_kib(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Arrivals of `notification` events on each listener's first stream.
type Arrivals = Arc<Mutex<HashMap<usize, Vec<Instant>>>>;

/// Opens one stream of `who`; reads it until the process ends, counting it as open at
/// its first event and, when `listener` is given, timing its `notification` events.
async fn open_stream(
    client: &reqwest::Client,
    base: &str,
    who: &Account,
    listener: Option<(usize, Arrivals)>,
    opened: Arc<AtomicUsize>,
) -> Result<(), NotifyError> {
    let resp = client
        .get(format!("{base}/api/v1/notifications/stream"))
        .bearer_auth(&*who.token)
        .send()
        .await
        .map_err(|e| NotifyError::Open(e.to_string()))?;
    if resp.status() != 200 {
        return Err(NotifyError::Open(format!(
            "{}: HTTP {}",
            who.username,
            resp.status()
        )));
    }
    let mut body = resp.bytes_stream();
    tokio::spawn(async move {
        let mut buffer: Vec<u8> = Vec::new();
        let mut counted = false;
        while let Some(Ok(chunk)) = body.next().await {
            let now = Instant::now();
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                if !counted {
                    counted = true;
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                if let Some((index, arrivals)) = &listener
                    && event
                        .split(|b| *b == b'\n')
                        .any(|line| line == b"event: notification")
                    && let Ok(mut arrivals) = arrivals.lock()
                {
                    arrivals.entry(*index).or_default().push(now);
                }
            }
        }
    });
    Ok(())
}

/// `method` on `path` as `who`; an error unless 2xx.
async fn call(
    client: &reqwest::Client,
    base: &str,
    who: &Account,
    method: Method,
    path: &str,
) -> Result<(), NotifyError> {
    let what = format!("{method} {path}");
    let resp = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(&*who.token)
        .send()
        .await
        .map_err(|source| NotifyError::Request {
            what: what.clone(),
            source,
        })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(NotifyError::Refused {
            what,
            status: resp.status().as_u16(),
        })
    }
}

/// Runs the measurement; its results as JSON.
pub async fn run(
    client: &reqwest::Client,
    accounts: Vec<Account>,
    settings: Settings,
) -> Result<Value, NotifyError> {
    let base = settings.base.trim_end_matches('/');
    let (actor, people) = accounts.split_first().ok_or(NotifyError::TooFewPeople)?;
    if people.is_empty() {
        return Err(NotifyError::TooFewPeople);
    }
    let listeners: Vec<&Account> = people
        .iter()
        .take(settings.streams.div_ceil(PER_PERSON).max(1))
        .collect();
    let streams = settings.streams.min(listeners.len() * PER_PERSON);
    let arrivals: Arrivals = Arc::default();
    let opened = Arc::new(AtomicUsize::new(0));

    let before_kib = rss_kib(settings.pid);
    for n in 0..streams {
        // Round-robin, so every listener's first stream opens first.
        let index = n % listeners.len();
        let timed = (n < listeners.len()).then(|| (index, arrivals.clone()));
        open_stream(client, base, listeners[index], timed, opened.clone()).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.load(Ordering::Relaxed) < streams {
        if Instant::now() > deadline {
            return Err(NotifyError::NotOpened {
                opened: opened.load(Ordering::Relaxed),
                wanted: streams,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kib = rss_kib(settings.pid);

    // Follows at a fixed rate, one listener after another, beside the social mix (its
    // warm-up second before the first follow).
    let mix = (settings.mix_rate > 0.0).then(|| {
        let workload: Arc<dyn crate::load::Workload> =
            Arc::new(crate::social::SocialMix::new(base, accounts.clone(), 1));
        let client = client.clone();
        let timing = crate::load::Timing {
            warmup: Duration::from_secs(1),
            measure: settings.measure,
            timeout: settings.mix_timeout,
        };
        let rate = settings.mix_rate;
        tokio::spawn(async move { crate::load::open_loop(&client, workload, rate, timing).await })
    });
    if mix.is_some() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let interval = Duration::from_secs_f64(1.0 / settings.rate.max(0.1));
    let mut ticks = tokio::time::interval(interval);
    // The seeded actor may already follow some listeners: unfollow first, so every
    // follow starts (only a follow that starts is news).
    let mut following = vec![true; listeners.len()];
    let mut answered: Vec<(usize, Instant, Instant)> = Vec::new();
    let started = Instant::now();
    let mut k = 0usize;
    while started.elapsed() < settings.measure {
        ticks.tick().await;
        let index = k % listeners.len();
        k += 1;
        let path = format!("/api/v1/relations/following/{}", listeners[index].id);
        if following[index] {
            call(client, base, actor, Method::DELETE, &path).await?;
        }
        let sent = Instant::now();
        call(client, base, actor, Method::PUT, &path).await?;
        answered.push((index, sent, Instant::now()));
        following[index] = true;
    }
    let mix = match mix {
        Some(task) => Some(task.await.map_err(|e| NotifyError::Open(e.to_string()))?),
        None => None,
    };
    tokio::time::sleep(MISSING_AFTER).await;

    let mut histogram = Histogram::<u64>::new(3).map_err(|e| NotifyError::Open(e.to_string()))?;
    let mut missing = 0u64;
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    // A stream's events come in order: each follow takes the first arrival after it was
    // sent that no earlier follow took.
    let mut taken: HashMap<usize, usize> = HashMap::new();
    for (index, sent, answer) in &answered {
        let times = arrivals.get(index).map(Vec::as_slice).unwrap_or_default();
        let next = taken.entry(*index).or_default();
        while times.get(*next).is_some_and(|t| t < sent) {
            *next += 1;
        }
        let arrival = times
            .get(*next)
            .filter(|t| t.duration_since(*sent) < MISSING_AFTER);
        if arrival.is_some() {
            *next += 1;
        }
        match arrival {
            Some(arrival) => {
                let micros = arrival.saturating_duration_since(*answer).as_micros();
                let _ = histogram.record(u64::try_from(micros).unwrap_or(u64::MAX));
            }
            None => missing += 1,
        }
    }
    let per_stream_kib = if streams > 0 && after_kib > before_kib {
        (after_kib - before_kib) as f64 / streams as f64
    } else {
        0.0
    };
    Ok(json!({
        "streams": streams,
        "listeners": listeners.len(),
        "rss_before_kib": before_kib,
        "rss_after_kib": after_kib,
        "kib_per_stream": per_stream_kib,
        "rate": settings.rate,
        "follows": answered.len(),
        "missing": missing,
        "latency_ms": Latency::of(&histogram),
        "mix_rate": settings.mix_rate,
        "mix": mix.map(|m| serde_json::to_value(m).unwrap_or(Value::Null)),
    }))
}
