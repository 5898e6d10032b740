//! The two ways of loading a server.
//!
//! - [`open_loop`]: requests leave at a constant rate whatever the server does (wrk2's
//!   model). Each request's latency runs from the moment it *should* have been sent, so a
//!   stall shows up in every request it delayed instead of being hidden by a client that
//!   politely waited (coordinated omission).
//! - [`closed_loop`]: a fixed number of connections each send their next request as soon
//!   as the previous one is answered: the maximum throughput.
//!
//! Both discard what happens during the warm-up and record latencies in microseconds in
//! HDR histograms, one per request kind.

use crate::report::{KindReport, RunReport, Throughput};
use bytes::Bytes;
use hdrhistogram::Histogram;
use reqwest::Method;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One request to send.
pub struct Request {
    /// Index into the workload's [`Workload::kinds`].
    pub kind: usize,
    pub method: Method,
    pub url: String,
    /// A bearer token.
    pub token: Option<Arc<str>>,
    /// `(content type, bytes)`.
    pub body: Option<(&'static str, Bytes)>,
}

/// What to send: the `i`-th request of a run is `next(i)`, so a run is reproducible.
pub trait Workload: Send + Sync + 'static {
    /// The names of the request kinds, reported separately.
    fn kinds(&self) -> &[&'static str];
    fn next(&self, i: u64) -> Request;
}

/// Durations of one run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
    /// A request still unanswered after this is an error.
    pub timeout: Duration,
}

struct Sample {
    kind: usize,
    micros: u64,
    /// The HTTP status, or 0 for a transport error or a timeout.
    status: u16,
}

/// Latencies and outcomes per kind.
struct Tally {
    kinds: Vec<&'static str>,
    histograms: Vec<Histogram<u64>>,
    errors: Vec<BTreeMap<u16, u64>>,
}

impl Tally {
    fn new(kinds: &[&'static str]) -> Self {
        let histogram = || {
            // 1 µs to 60 s at three significant digits.
            Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!("constant, valid bounds"))
        };
        Tally {
            kinds: kinds.to_vec(),
            histograms: kinds.iter().map(|_| histogram()).collect(),
            errors: kinds.iter().map(|_| BTreeMap::new()).collect(),
        }
    }

    fn add(&mut self, sample: &Sample) {
        let Some(histogram) = self.histograms.get_mut(sample.kind) else {
            return;
        };
        histogram.saturating_record(sample.micros.max(1));
        if !(200..300).contains(&sample.status)
            && let Some(errors) = self.errors.get_mut(sample.kind)
        {
            *errors.entry(sample.status).or_default() += 1;
        }
    }

    /// Requests answered (errors included).
    fn answered(&self) -> u64 {
        self.histograms.iter().map(Histogram::len).sum()
    }

    fn absorb(&mut self, other: Tally) {
        for (sum, part) in self.histograms.iter_mut().zip(&other.histograms) {
            let _ = sum.add(part);
        }
        for (sum, part) in self.errors.iter_mut().zip(other.errors) {
            for (status, n) in part {
                *sum.entry(status).or_default() += n;
            }
        }
    }

    fn report(self, seconds: f64, offered: Option<f64>) -> RunReport {
        let mut all = Histogram::<u64>::new_from(&self.histograms[0]);
        let mut kinds = BTreeMap::new();
        let mut errors_total = 0;
        for ((name, histogram), errors) in self.kinds.iter().zip(&self.histograms).zip(self.errors)
        {
            let _ = all.add(histogram);
            let error_count: u64 = errors.values().sum();
            errors_total += error_count;
            kinds.insert(
                (*name).to_owned(),
                KindReport::of(histogram, error_count, errors, seconds),
            );
        }
        RunReport::new(offered, seconds, &all, errors_total, kinds)
    }
}

/// Sends one request; its status, or 0 when it failed or timed out.
async fn send(client: &reqwest::Client, request: Request, timeout: Duration) -> u16 {
    let mut builder = client.request(request.method, request.url).timeout(timeout);
    if let Some(token) = &request.token {
        builder = builder.bearer_auth(token);
    }
    if let Some((content_type, body)) = request.body {
        builder = builder.header("content-type", content_type).body(body);
    }
    match builder.send().await {
        // The body is read, so the connection goes back to the pool.
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    }
}

/// Sends `rate` requests a second for the warm-up and then the measurement; latencies of
/// requests scheduled after the warm-up count, each from its scheduled send time.
pub async fn open_loop(
    client: &reqwest::Client,
    workload: Arc<dyn Workload>,
    rate: f64,
    timing: Timing,
) -> RunReport {
    open_loop_watched(client, workload, rate, timing, &CpuWatch::default()).await
}

/// [`open_loop`], reading the CPU time of `watch`'s processes over the measured window
/// beside the machine's.
pub async fn open_loop_watched(
    client: &reqwest::Client,
    workload: Arc<dyn Workload>,
    rate: f64,
    timing: Timing,
    watch: &CpuWatch,
) -> RunReport {
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let kinds = workload.kinds().to_vec();
    let collector = tokio::spawn(async move {
        let mut tally = Tally::new(&kinds);
        while let Some(sample) = rx.recv().await {
            tally.add(&sample);
        }
        tally
    });
    let start = Instant::now() + Duration::from_millis(20);
    let measured_from = start + timing.warmup;
    let total = ((timing.warmup + timing.measure).as_secs_f64() * rate).round() as u64;
    let interval = 1.0 / rate;
    let mut tasks = tokio::task::JoinSet::new();
    let mut cpu_from = None;
    let mut processes_from = Vec::new();
    for i in 0..total {
        let intended = start + Duration::from_secs_f64(i as f64 * interval);
        if intended > Instant::now() {
            tokio::time::sleep_until(intended.into()).await;
        }
        if cpu_from.is_none() && intended >= measured_from {
            cpu_from = machine_busy_seconds();
            processes_from = watch.sample();
        }
        let request = workload.next(i);
        let client = client.clone();
        let tx = (intended >= measured_from).then(|| tx.clone());
        tasks.spawn(async move {
            let kind = request.kind;
            let status = send(&client, request, timing.timeout).await;
            if let Some(tx) = tx {
                let micros = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = tx.send(Sample {
                    kind,
                    micros,
                    status,
                });
            }
        });
        // Finished tasks are reaped as we go, so the set stays as large as what is in flight.
        while tasks.try_join_next().is_some() {}
    }
    drop(tx);
    while tasks.join_next().await.is_some() {}
    let cpu_to = machine_busy_seconds();
    let processes_to = watch.sample();
    let tally = collector
        .await
        .unwrap_or_else(|_| Tally::new(workload.kinds()));
    let mut report = tally.report(timing.measure.as_secs_f64(), Some(rate));
    report.machine_cpu_seconds = cpu_from.zip(cpu_to).map(|(from, to)| to - from);
    report.process_cpu_seconds = watch
        .named
        .iter()
        .zip(processes_from.iter().zip(&processes_to))
        .map(|((name, _), (from, to))| (name.clone(), to - from))
        .collect();
    report
}

/// The CPU time every process of the machine has spent so far (user, nice, system, irq
/// and softirq of `/proc/stat`'s first line; steal and idle are not ours), in seconds.
/// None where there is no `/proc/stat`.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| fields.get(i).copied())
        .sum::<Option<u64>>()?;
    // `/proc/stat` counts in USER_HZ, which the kernel's ABI fixes at 100 on x86 and arm64.
    Some(busy as f64 / 100.0)
}

/// `connections` loops, each sending its next request when the last one is answered;
/// what was answered inside the measured window counts.
async fn closed_loop_tally(
    client: &reqwest::Client,
    workload: Arc<dyn Workload>,
    connections: usize,
    timing: Timing,
) -> Tally {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measured_from = start + timing.warmup;
    let end = measured_from + timing.measure;
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let client = client.clone();
        let workload = workload.clone();
        let counter = counter.clone();
        loops.spawn(async move {
            let mut tally = Tally::new(workload.kinds());
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let request = workload.next(counter.fetch_add(1, Ordering::Relaxed));
                let kind = request.kind;
                let status = send(&client, request, timing.timeout).await;
                // Answers that arrive in the measured window count, whenever they were
                // sent: counting only requests sent inside it would miss the last ones in
                // flight at its end and understate the rate by latency ÷ window (3% for a
                // 250 ms upload in 10 s).
                let answered = Instant::now();
                if answered >= measured_from && answered <= end {
                    let micros = u64::try_from((answered - sent).as_micros()).unwrap_or(u64::MAX);
                    tally.add(&Sample {
                        kind,
                        micros,
                        status,
                    });
                }
            }
            tally
        });
    }
    let mut total = Tally::new(workload.kinds());
    while let Some(joined) = loops.join_next().await {
        if let Ok(tally) = joined {
            total.absorb(tally);
        }
    }
    total
}

/// The maximum rate: [`closed_loop_tally`] reported over the measured time.
pub async fn closed_loop(
    client: &reqwest::Client,
    workload: Arc<dyn Workload>,
    connections: usize,
    timing: Timing,
) -> RunReport {
    closed_loop_tally(client, workload, connections, timing)
        .await
        .report(timing.measure.as_secs_f64(), None)
}

/// The maximum rates of several workloads, measured in turns: `rounds` slices of each,
/// one after the other, so that drift of the host weighs on all alike. Returns each
/// workload's merged run and its rate in each round.
pub async fn closed_loops_in_turn(
    client: &reqwest::Client,
    workloads: &[Arc<dyn Workload>],
    connections: usize,
    timing: Timing,
    rounds: usize,
    watch: &CpuWatch,
) -> Vec<(RunReport, Vec<f64>, BTreeMap<String, f64>)> {
    let turns = Turns::new(timing, rounds);
    let mut totals: Vec<(Tally, Vec<f64>, CpuTally)> = workloads
        .iter()
        .map(|w| {
            (
                Tally::new(w.kinds()),
                Vec::with_capacity(turns.rounds),
                CpuTally::default(),
            )
        })
        .collect();
    for round in 0..turns.rounds {
        for (workload, (total, rates, cpu)) in workloads.iter().zip(&mut totals) {
            let (started, before) = (Instant::now(), watch.sample());
            let rate = turns.run(client, workload, connections, round, total).await;
            cpu.add(watch, &before, &watch.sample(), started.elapsed(), rate);
            rates.push(rate);
        }
    }
    totals
        .into_iter()
        .map(|(total, rates, cpu)| (turns.report(total), rates, cpu.per_request(watch)))
        .collect()
}

/// Processes whose CPU time a measurement reads, by name (`/proc/<pid>/stat`: user and
/// system time of every thread, in the kernel's fixed 100 Hz ticks).
#[derive(Debug, Default, Clone)]
pub struct CpuWatch {
    named: Vec<(String, Vec<u32>)>,
}

impl CpuWatch {
    /// `name=pid[,pid…]` pairs.
    pub fn new(named: Vec<(String, Vec<u32>)>) -> Self {
        Self { named }
    }

    /// CPU seconds so far, per name (a process that is gone counts nothing).
    fn sample(&self) -> Vec<f64> {
        self.named
            .iter()
            .map(|(_, pids)| pids.iter().map(|pid| cpu_seconds(*pid)).sum())
            .collect()
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) end at the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// CPU time and (estimated) requests over a workload's turns.
#[derive(Debug, Default)]
struct CpuTally {
    seconds: Vec<f64>,
    requests: f64,
}

impl CpuTally {
    /// A turn: the CPU used over its whole time (warm-up included), set against the
    /// requests its measured rate implies over that time.
    fn add(
        &mut self,
        watch: &CpuWatch,
        before: &[f64],
        after: &[f64],
        elapsed: Duration,
        rate: f64,
    ) {
        self.seconds.resize(watch.named.len(), 0.0);
        for (total, (b, a)) in self.seconds.iter_mut().zip(before.iter().zip(after)) {
            *total += a - b;
        }
        self.requests += rate * elapsed.as_secs_f64();
    }

    /// Microseconds of CPU per request, per watched name.
    fn per_request(&self, watch: &CpuWatch) -> BTreeMap<String, f64> {
        watch
            .named
            .iter()
            .zip(&self.seconds)
            .map(|((name, _), seconds)| {
                let us = if self.requests > 0.0 {
                    seconds * 1e6 / self.requests
                } else {
                    0.0
                };
                (name.clone(), us)
            })
            .collect()
    }
}

/// A closed-loop run and its baseline, measured in turns: `rounds` slices of each, one
/// after the other (in-flight requests finish before the baseline starts), so a host
/// that slows down or speeds up during the suite weighs on both alike. Returns
/// the merged run, the merged baseline, and each round's run/baseline ratio (their
/// spread is the drift the alternation evened out).
pub async fn alternating<B, Fut, E>(
    client: &reqwest::Client,
    workload: Arc<dyn Workload>,
    connections: usize,
    timing: Timing,
    rounds: usize,
    mut baseline: B,
) -> Result<(RunReport, Throughput, Vec<f64>), E>
where
    B: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = Result<Throughput, E>>,
{
    let turns = Turns::new(timing, rounds);
    let mut total = Tally::new(workload.kinds());
    let mut raws = Vec::with_capacity(turns.rounds);
    let mut ratios = Vec::with_capacity(turns.rounds);
    for round in 0..turns.rounds {
        let rate = turns
            .run(client, &workload, connections, round, &mut total)
            .await;
        let raw = baseline(turns.slice).await?;
        ratios.push(if raw.per_second > 0.0 {
            rate / raw.per_second
        } else {
            0.0
        });
        raws.push(raw);
    }
    let raw = Throughput::merged(&raws);
    Ok((turns.report(total), raw, ratios))
}

/// The measured time cut into rounds of equal slices.
struct Turns {
    timing: Timing,
    rounds: usize,
    slice: Duration,
}

impl Turns {
    fn new(timing: Timing, rounds: usize) -> Self {
        let rounds = rounds.max(1);
        Turns {
            timing,
            rounds,
            slice: timing.measure / u32::try_from(rounds).unwrap_or(u32::MAX),
        }
    }

    /// One slice of closed-loop load in `round` (the whole warm-up in the first, then a
    /// second at most to refill the pipeline): its rate, its answers added to `total`.
    async fn run(
        &self,
        client: &reqwest::Client,
        workload: &Arc<dyn Workload>,
        connections: usize,
        round: usize,
        total: &mut Tally,
    ) -> f64 {
        let warmup = if round == 0 {
            self.timing.warmup
        } else {
            self.timing.warmup.min(Duration::from_secs(1))
        };
        let timing = Timing {
            warmup,
            measure: self.slice,
            timeout: self.timing.timeout,
        };
        let tally = closed_loop_tally(client, workload.clone(), connections, timing).await;
        let rate = tally.answered() as f64 / self.slice.as_secs_f64();
        total.absorb(tally);
        rate
    }

    /// The merged rounds over the whole measured time.
    fn report(&self, total: Tally) -> RunReport {
        total.report(self.timing.measure.as_secs_f64(), None)
    }
}

/// A client for the load: keep-alive connections, as many as the load needs.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    agora_common::client::http_client()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
}

/// The same request with each body in turn (e.g. logins of different people).
pub struct Rotating {
    pub method: Method,
    pub url: String,
    pub bodies: Vec<(&'static str, Bytes)>,
}

impl Workload for Rotating {
    fn kinds(&self) -> &[&'static str] {
        &["request"]
    }

    fn next(&self, n: u64) -> Request {
        let body = usize::try_from(n)
            .ok()
            .and_then(|n| self.bodies.get(n % self.bodies.len().max(1)))
            .cloned();
        Request {
            kind: 0,
            method: self.method.clone(),
            url: self.url.clone(),
            token: None,
            body,
        }
    }
}

/// The same request, again and again.
pub struct Fixed {
    pub method: Method,
    pub url: String,
    pub token: Option<Arc<str>>,
    pub body: Option<(&'static str, Bytes)>,
}

impl Workload for Fixed {
    fn kinds(&self) -> &[&'static str] {
        &["request"]
    }

    fn next(&self, _: u64) -> Request {
        Request {
            kind: 0,
            method: self.method.clone(),
            url: self.url.clone(),
            token: self.token.clone(),
            body: self.body.clone(),
        }
    }
}
