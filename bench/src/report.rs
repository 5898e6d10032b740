//! What a run measured, as written to `bench/results/<suite>.json`: milliseconds, rates
//! per second.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// One request kind of a run.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub requests: u64,
    /// Answered requests a second (errors included).
    pub rate: f64,
    pub errors: u64,
    /// Errors by HTTP status; 0 is a transport error or a timeout.
    pub errors_by_status: BTreeMap<u16, u64>,
    pub latency_ms: Latency,
}

impl KindReport {
    pub(crate) fn of(
        h: &Histogram<u64>,
        errors: u64,
        errors_by_status: BTreeMap<u16, u64>,
        seconds: f64,
    ) -> Self {
        KindReport {
            requests: h.len(),
            rate: h.len() as f64 / seconds,
            errors,
            errors_by_status,
            latency_ms: Latency::of(h),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The constant rate asked for (open loop), or none (closed loop: as fast as it goes).
    pub offered_rate: Option<f64>,
    /// Answered requests a second over the measurement.
    pub achieved_rate: f64,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: Latency,
    pub kinds: BTreeMap<String, KindReport>,
    /// CPU time the whole machine spent (every process, from `/proc/stat`) from the start
    /// of the measured window until its last request was answered; open loop only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_cpu_seconds: Option<f64>,
    /// CPU time of each watched process (`--cpu name=pid`) over the same window: the
    /// work a change adds to some processes, without the others' background (a
    /// checkpoint, autovacuum) in its figure; open loop only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub process_cpu_seconds: BTreeMap<String, f64>,
}

impl RunReport {
    pub(crate) fn new(
        offered_rate: Option<f64>,
        seconds: f64,
        all: &Histogram<u64>,
        errors: u64,
        kinds: BTreeMap<String, KindReport>,
    ) -> Self {
        RunReport {
            offered_rate,
            achieved_rate: all.len() as f64 / seconds,
            seconds,
            requests: all.len(),
            errors,
            latency_ms: Latency::of(all),
            kinds,
            machine_cpu_seconds: None,
            process_cpu_seconds: BTreeMap::new(),
        }
    }

    /// Every request answered with a 2xx.
    pub fn clean(&self) -> bool {
        self.errors == 0
    }
}

/// The rate a second of `count` things done in `seconds`.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub per_second: f64,
    pub count: u64,
    pub seconds: f64,
    pub threads: usize,
}

impl Throughput {
    /// Several runs of one measurement as one: their counts over their times.
    pub fn merged(runs: &[Throughput]) -> Self {
        let count: u64 = runs.iter().map(|r| r.count).sum();
        let seconds: f64 = runs.iter().map(|r| r.seconds).sum();
        Self {
            per_second: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            count,
            seconds,
            threads: runs.last().map_or(1, |r| r.threads),
        }
    }
}
