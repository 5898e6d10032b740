//! `agora-bench`: the load generator and baselines `hack/bench.sh` drives. Each command
//! runs one suite's measurements against a running platform and prints them as JSON.

mod baseline;
mod lifecycle;
mod load;
mod notify;
mod report;
mod social;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use load::{Fixed, Timing, Workload};
use report::{RunReport, Throughput};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "agora-bench", about = "Agora's load generator and baselines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Copy)]
struct TimingArgs {
    /// Seconds of load before measuring (not counted).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    measure: f64,
    /// Seconds after which an unanswered request is an error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

impl TimingArgs {
    fn timing(self) -> Timing {
        Timing {
            warmup: Duration::from_secs_f64(self.warmup),
            measure: Duration::from_secs_f64(self.measure),
            timeout: Duration::from_secs_f64(self.timeout),
        }
    }
}

/// The platform and one existing account of it.
#[derive(Args, Clone)]
struct AccountArgs {
    /// The platform's base URL.
    #[arg(long)]
    url: String,
    /// The account (signed in once, or again and again for logins).
    #[arg(long)]
    username: String,
    #[arg(
        long,
        env = "AGORA_SEED_PASSWORD",
        default_value = "agora-demo-password"
    )]
    password: String,
}

#[derive(Subcommand)]
enum Command {
    /// Edge overhead: one small endpoint called directly, through the gateway and through
    /// nginx; the maximum throughput of each, then latencies at one fixed rate.
    Edge {
        /// `name=url` of each target, e.g. direct=http://127.0.0.1:4000/api/v1/auth/jwks.
        #[arg(long = "target", required = true, value_parser = parse_target)]
        targets: Vec<(String, String)>,
        /// Connections of the maximum-throughput runs.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// The fixed rate (requests a second) at which latencies are compared.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// `name=pid[,pid…]` of processes whose CPU time per request is reported for
        /// each target's maximum (e.g. agora=1234, nginx=2345,2346).
        #[arg(long = "cpu", value_parser = parse_pids)]
        cpu: Vec<(String, Vec<u32>)>,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// The social mix at increasing constant rates, until p99 passes the limit or
    /// requests fail.
    Mix {
        /// The platform's base URL.
        #[arg(long)]
        url: String,
        /// The `agora seed` run whose people make the requests (--seed, --users).
        #[arg(long, default_value_t = 1)]
        seed: u32,
        #[arg(long)]
        users: usize,
        #[arg(
            long,
            env = "AGORA_SEED_PASSWORD",
            default_value = "agora-demo-password"
        )]
        password: String,
        /// The rates to try, in order.
        #[arg(long, value_delimiter = ',', required = true)]
        rates: Vec<f64>,
        /// The p99 (ms) above which a rate is too much.
        #[arg(long, default_value_t = 50.0)]
        p99_limit_ms: f64,
        /// `name=pid[,pid…]` of processes whose CPU time over each rate's measured
        /// window is reported beside the machine's (e.g. agora=1234, collector=2345).
        #[arg(long = "cpu", value_parser = parse_pids)]
        cpu: Vec<(String, Vec<u32>)>,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Feed latency at a constant rate for each caller (`--caller name=username`).
    Feed {
        #[arg(long)]
        url: String,
        #[arg(long = "caller", required = true, value_parser = parse_target)]
        callers: Vec<(String, String)>,
        #[arg(
            long,
            env = "AGORA_SEED_PASSWORD",
            default_value = "agora-demo-password"
        )]
        password: String,
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// How many authors and posts the platform holds (recorded with the results).
        #[arg(long)]
        authors: u64,
        #[arg(long)]
        posts: u64,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Logins a second against raw argon2id verifications a second; token checks a second
    /// at the edge against raw EdDSA verifications a second.
    Auth {
        #[command(flatten)]
        account: AccountArgs,
        /// Logins rotate over the people of `agora seed --seed <seed> --users <users>`
        /// (one account signing in from many connections at once is throttled as a
        /// guessing attack); without it, `--username` signs in again and again.
        #[arg(long)]
        users: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u32,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Threads of the raw baselines (the cores the services have).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Prints a pgbench script running the users service's own timeline SQL (the physical
    /// limit of the social mix), its parameters read from the `bench_scope` table
    /// (`n`, `viewer`, `authors`, `friends`) that hack/bench.sh fills from the
    /// relations database.
    PgbenchScript {
        #[arg(value_enum)]
        kind: Timeline,
    },
    /// Notifications: the memory of `--streams` open streams, then how long after a
    /// follow's answer its notification reaches the follower's stream, at `--rate`
    /// follows a second (the mix, if any, runs beside it).
    Notify {
        #[arg(long)]
        url: String,
        /// The `agora seed` run whose people listen and act (--seed, --users).
        #[arg(long, default_value_t = 1)]
        seed: u32,
        #[arg(long)]
        users: usize,
        #[arg(
            long,
            env = "AGORA_SEED_PASSWORD",
            default_value = "agora-demo-password"
        )]
        password: String,
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Seconds of follows measured.
        #[arg(long, default_value_t = 20.0)]
        measure: f64,
        /// agora up's process id, for its resident memory.
        #[arg(long)]
        pid: Option<u32>,
        /// The social mix's rate beside the follows (0: none).
        #[arg(long, default_value_t = 0.0)]
        mix_rate: f64,
        /// Seconds after which an unanswered request of the mix is an error.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Leaving: a fresh person with `--posts`, `--comments` and `--photos` exports their
    /// data (time until ready, archive size, agora up's peak memory), then deletes their
    /// account (time until their token is refused, until they are erased).
    Lifecycle {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000)]
        posts: usize,
        #[arg(long, default_value_t = 2000)]
        comments: usize,
        #[arg(long, default_value_t = 200)]
        photos: usize,
        /// Each photo's size (1632×1224 ≈ 2 MP, a phone's photo scaled down).
        #[arg(long, default_value_t = 1632)]
        photo_width: u32,
        #[arg(long, default_value_t = 1224)]
        photo_height: u32,
        /// agora up's process id, for its resident memory.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Photo uploads a second and MB/s against the raw decode+resize+encode rate of the
    /// `image` crate on the same JPEG.
    Photos {
        #[command(flatten)]
        account: AccountArgs,
        /// Width and height of the generated JPEG (1632×1224 ≈ 2 MP).
        #[arg(long, default_value_t = 1632)]
        width: u32,
        #[arg(long, default_value_t = 1224)]
        height: u32,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[command(flatten)]
        timing: TimingArgs,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Timeline {
    /// The home feed.
    Feed,
    /// One author's posts.
    User,
}

/// The pgbench script of one timeline: a random person's parameters, then the service's
/// query with its `$n` parameters bound to them (`-M prepared` sends them as parameters,
/// as the service does). `:people` is the number of rows of `bench_scope`. The feed
/// chooses between its two queries by the number of authors, as the service does.
fn pgbench_script(kind: Timeline) -> String {
    // $6 before $1, so no placeholder is a prefix of one replaced later.
    let bound = |sql: &str, values: [&str; 6]| {
        let mut query = sql.to_owned();
        for (i, value) in values.iter().enumerate().rev() {
            query = query.replace(&format!("${}", i + 1), value);
        }
        query
    };
    match kind {
        Timeline::Feed => {
            let values = [
                ":viewer::uuid",
                ":authors::uuid[]",
                ":friends::uuid[]",
                "NULL",
                "NULL",
                "11",
            ];
            format!(
                "\\set v random(1, :people)\n\
                 SELECT viewer, authors, friends, cardinality(authors) AS k FROM bench_scope WHERE n = :v \\gset\n\
                 \\if :k <= {few}\n{};\n\\else\n{};\n\\endif\n",
                bound(&agora_users::FEED_FEW_SQL, values),
                bound(&agora_users::FEED_MANY_SQL, values),
                few = agora_users::FEED_FEW_AUTHORS,
            )
        }
        Timeline::User => format!(
            "\\set v random(1, :people)\n\\set a random(1, :people)\n\
             SELECT s.viewer, o.viewer AS author, o.viewer = ANY(s.friends) AS friend \
             FROM bench_scope s, bench_scope o WHERE s.n = :v AND o.n = :a \\gset\n{};\n",
            bound(
                &agora_users::AUTHOR_PAGE_SQL,
                [
                    ":viewer::uuid",
                    ":author::uuid",
                    ":friend::boolean",
                    "NULL",
                    "NULL",
                    "11"
                ],
            )
        ),
    }
}

fn parse_target(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, url)| (name.to_owned(), url.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {text}"))
}

fn parse_pids(text: &str) -> Result<(String, Vec<u32>), String> {
    let (name, pids) = text
        .split_once('=')
        .ok_or_else(|| format!("expected name=pid[,pid…], got {text}"))?;
    let pids = pids
        .split(',')
        .map(|pid| pid.trim().parse::<u32>().map_err(|e| format!("{pid}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_owned(), pids))
}

/// A failed benchmark step.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("HTTP client")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Login(#[from] social::LoginError),
    #[error(transparent)]
    Baseline(#[from] baseline::BaselineError),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
    #[error(transparent)]
    Lifecycle(#[from] lifecycle::LifecycleError),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(result) => {
            if !result.is_null() {
                println!("{result:#}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("agora-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn fixed(method: Method, url: &str, token: Option<Arc<str>>) -> Arc<dyn Workload> {
    Arc::new(Fixed {
        method,
        url: url.to_owned(),
        token,
        body: None,
    })
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

async fn run(command: Command) -> Result<Value, BenchError> {
    let client = load::client()?;
    match command {
        Command::Edge {
            targets,
            connections,
            rate,
            cpu,
            timing,
        } => {
            let mut out = serde_json::Map::new();
            let workloads: Vec<_> = targets
                .iter()
                .map(|(_, url)| fixed(Method::GET, url, None))
                .collect();
            let maxima = load::closed_loops_in_turn(
                &client,
                &workloads,
                connections,
                timing.timing(),
                ROUNDS,
                &load::CpuWatch::new(cpu),
            )
            .await;
            for ((name, url), (max, max_rounds, cpu_us)) in targets.iter().zip(maxima) {
                let steady = load::open_loop(
                    &client,
                    fixed(Method::GET, url, None),
                    rate,
                    timing.timing(),
                )
                .await;
                eprintln!(
                    "edge {name}: max {:.0}/s, at {rate}/s p50 {:.3} p99 {:.3} p99.9 {:.3} ms, errors {}",
                    max.achieved_rate,
                    steady.latency_ms.p50,
                    steady.latency_ms.p99,
                    steady.latency_ms.p999,
                    max.errors + steady.errors
                );
                out.insert(
                    name.clone(),
                    json!({"url": url, "max": json_of(&max), "max_rounds": max_rounds,
                           "cpu_us_per_request": cpu_us, "fixed_rate": json_of(&steady)}),
                );
            }
            Ok(json!({"connections": connections, "rate": rate, "targets": out}))
        }
        Command::Mix {
            url,
            seed,
            users,
            password,
            rates,
            p99_limit_ms,
            cpu,
            timing,
        } => {
            let watch = load::CpuWatch::new(cpu);
            let accounts =
                social::seeded_accounts(&client, &url, seed, users, &password, 4).await?;
            let feed_only: Arc<dyn Workload> = Arc::new(social::OnlyFeed {
                base: url.trim_end_matches('/').to_owned(),
                accounts: accounts.clone(),
            });
            let workload: Arc<dyn Workload> =
                Arc::new(social::SocialMix::new(&url, accounts, u64::from(seed)));
            let mut steps: Vec<RunReport> = Vec::new();
            let mut best = None;
            for rate in rates {
                let step = load::open_loop_watched(
                    &client,
                    workload.clone(),
                    rate,
                    timing.timing(),
                    &watch,
                )
                .await;
                let ok = step.clean() && step.latency_ms.p99 <= p99_limit_ms;
                eprintln!(
                    "mix at {rate}/s: achieved {:.0}/s, p50 {:.2} p99 {:.2} ms, errors {}{}",
                    step.achieved_rate,
                    step.latency_ms.p50,
                    step.latency_ms.p99,
                    step.errors,
                    if ok { "" } else { "  (over the limit)" }
                );
                steps.push(step);
                if !ok {
                    break;
                }
                best = Some(rate);
            }
            // The feed alone, as fast as it goes: held against its raw SQL (pgbench).
            let feed_max = load::closed_loop(&client, feed_only, 16, timing.timing()).await;
            eprintln!(
                "feed alone: {:.0}/s, p50 {:.2} ms",
                feed_max.achieved_rate, feed_max.latency_ms.p50
            );
            Ok(json!({
                "users": users, "seed": seed, "p99_limit_ms": p99_limit_ms,
                "best_rate": best, "steps": json_of(&steps), "feed_max": json_of(&feed_max),
            }))
        }
        Command::Feed {
            url,
            callers,
            password,
            rate,
            authors,
            posts,
            timing,
        } => {
            let mut out = serde_json::Map::new();
            for (name, username) in callers {
                let accounts =
                    social::accounts(&client, &url, std::slice::from_ref(&username), &password)
                        .await?;
                let workload: Arc<dyn Workload> = Arc::new(social::OnlyFeed {
                    base: url.trim_end_matches('/').to_owned(),
                    accounts,
                });
                let run = load::open_loop(&client, workload, rate, timing.timing()).await;
                eprintln!(
                    "feed {name}: p50 {:.2} p99 {:.2} ms at {rate}/s, errors {}",
                    run.latency_ms.p50, run.latency_ms.p99, run.errors
                );
                out.insert(name, json_of(&run));
            }
            Ok(json!({"rate": rate, "authors": authors, "posts": posts, "callers": out}))
        }
        Command::Auth {
            account,
            users,
            seed,
            connections,
            threads,
            timing,
        } => {
            let logins = match users {
                Some(users) => agora::seed::plan::Plan::new(
                    seed,
                    agora::seed::plan::Sizes {
                        users,
                        posts_per_user: 0,
                    },
                )
                .people
                .into_iter()
                .map(|person| person.username)
                .collect(),
                None => vec![account.username.clone()],
            };
            auth_suite(&client, &account, &logins, connections, threads, timing).await
        }
        Command::PgbenchScript { kind } => {
            print!("{}", pgbench_script(kind));
            Ok(Value::Null)
        }
        Command::Lifecycle {
            url,
            posts,
            comments,
            photos,
            photo_width,
            photo_height,
            pid,
        } => {
            let result = lifecycle::run(
                &client,
                lifecycle::Settings {
                    base: url,
                    posts,
                    comments,
                    photos,
                    photo_size: (photo_width, photo_height),
                    pid,
                },
            )
            .await?;
            eprintln!(
                "lifecycle: export ready in {:.2} s ({} bytes), erased in {:.2} s",
                result["export_seconds"].as_f64().unwrap_or(0.0),
                result["archive_bytes"],
                result["erase_seconds"].as_f64().unwrap_or(0.0)
            );
            Ok(result)
        }
        Command::Notify {
            url,
            seed,
            users,
            password,
            streams,
            rate,
            measure,
            pid,
            mix_rate,
            timeout,
        } => {
            let accounts =
                social::seeded_accounts(&client, &url, seed, users, &password, 4).await?;
            let result = notify::run(
                &client,
                accounts,
                notify::Settings {
                    base: url,
                    streams,
                    rate,
                    measure: Duration::from_secs_f64(measure),
                    pid,
                    mix_rate,
                    mix_timeout: Duration::from_secs_f64(timeout),
                },
            )
            .await?;
            eprintln!(
                "notify: {} streams, {:.1} KiB each; follow to stream p50 {} p99 {} ms, {} missing",
                result["streams"],
                result["kib_per_stream"].as_f64().unwrap_or(0.0),
                result["latency_ms"]["p50"],
                result["latency_ms"]["p99"],
                result["missing"]
            );
            Ok(result)
        }
        Command::Photos {
            account:
                AccountArgs {
                    url,
                    username,
                    password,
                },
            width,
            height,
            connections,
            threads,
            timing,
        } => {
            let jpeg = Arc::new(baseline::photo_jpeg(width, height)?);
            let account = social::accounts(&client, &url, &[username], &password).await?;
            let token = account
                .first()
                .map(|a| a.token.clone())
                .ok_or_else(|| BenchError::Setup("no account".into()))?;
            let (content_type, body) = upload_form(&jpeg);
            let workload: Arc<dyn Workload> = Arc::new(Fixed {
                method: Method::POST,
                url: format!("{}/api/v1/photos", url.trim_end_matches('/')),
                token: Some(token),
                body: Some((content_type, body)),
            });
            // The tools read the same bytes from a file; libvips writes beside it.
            let scratch =
                std::env::temp_dir().join(format!("agora-bench-photos-{}", std::process::id()));
            std::fs::create_dir_all(&scratch).map_err(|e| BenchError::Setup(e.to_string()))?;
            let file = Arc::new(scratch.join("photo.jpg"));
            std::fs::write(file.as_ref(), jpeg.as_slice())
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let scratch = Arc::new(scratch);
            // libvips, the peer, runs right after libjpeg-turbo in each round: the same
            // host drift weighs on the three.
            let vips_runs = std::cell::RefCell::new(Vec::new());
            let measured = load::alternating(
                &client,
                workload,
                connections,
                timing.timing(),
                ROUNDS,
                |slice| {
                    let (file, scratch, vips_runs) = (file.clone(), scratch.clone(), &vips_runs);
                    async move {
                        let turbo = {
                            let file = file.clone();
                            blocking(move || baseline::libjpeg_turbo_pipeline(file, threads, slice))
                                .await?
                        };
                        let vips = blocking(move || {
                            baseline::libvips_pipeline(file, scratch, threads, slice)
                        })
                        .await?;
                        vips_runs.borrow_mut().push(vips);
                        Ok::<_, BenchError>(turbo)
                    }
                },
            )
            .await;
            let _ = std::fs::remove_dir_all(scratch.as_ref());
            let (uploads, turbo, rounds) = measured?;
            let vips = Throughput::merged(&vips_runs.into_inner());
            let megabytes = jpeg.len() as f64 / 1_000_000.0;
            eprintln!(
                "photos: {:.1} uploads/s ({:.1} MB/s), libjpeg-turbo pipeline {:.1}/s, libvips {:.1}/s, errors {}",
                uploads.achieved_rate,
                uploads.achieved_rate * megabytes,
                turbo.per_second,
                vips.per_second,
                uploads.errors
            );
            Ok(json!({
                "jpeg_bytes": jpeg.len(), "width": width, "height": height,
                "uploads": json_of(&uploads),
                "upload_megabytes_per_second": uploads.achieved_rate * megabytes,
                "libjpeg_turbo": json_of(&turbo), "libvips": json_of(&vips), "rounds": rounds,
            }))
        }
    }
}

/// The multipart form of one public photo upload.
fn upload_form(jpeg: &[u8]) -> (&'static str, Bytes) {
    const BOUNDARY: &str = "agora-bench-boundary";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(jpeg);
    body.extend_from_slice(
        format!(
            "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"visibility\"\r\n\r\npublic\r\n--{BOUNDARY}--\r\n"
        )
        .as_bytes(),
    );
    (
        "multipart/form-data; boundary=agora-bench-boundary",
        Bytes::from(body),
    )
}

/// Turns of each measurement and its baseline in the edge, auth and photos suites (see
/// [`load::alternating`]).
const ROUNDS: usize = 3;

/// A baseline on blocking threads, off the load generator's runtime.
async fn blocking<F>(work: F) -> Result<Throughput, BenchError>
where
    F: FnOnce() -> Result<Throughput, baseline::BaselineError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .map_err(BenchError::from)
}

async fn auth_suite(
    client: &reqwest::Client,
    AccountArgs {
        url,
        username,
        password,
    }: &AccountArgs,
    logins: &[String],
    connections: usize,
    threads: usize,
    timing: TimingArgs,
) -> Result<Value, BenchError> {
    let base = url.trim_end_matches('/');
    let logins: Arc<dyn Workload> = Arc::new(load::Rotating {
        method: Method::POST,
        url: format!("{base}/api/v1/auth/login"),
        bodies: logins
            .iter()
            .map(|login| {
                let body = json!({"login": login, "password": password}).to_string();
                ("application/json", Bytes::from(body))
            })
            .collect(),
    });
    let (login_run, raw_hashes, login_rounds) = load::alternating(
        client,
        logins,
        connections,
        timing.timing(),
        ROUNDS,
        |slice| blocking(move || baseline::argon2_verifications(threads, slice)),
    )
    .await?;
    let seconds = Duration::from_secs_f64(timing.measure);

    // Token checks at the edge: forward-auth's /verify through the gateway.
    let account = social::accounts(client, base, &[username.to_owned()], password).await?;
    let token = account
        .first()
        .map(|a| a.token.clone())
        .ok_or_else(|| BenchError::Setup("no account".into()))?;
    let verify = fixed(
        Method::GET,
        &format!("{base}/api/v1/auth/verify"),
        Some(token.clone()),
    );
    let verify_run = load::closed_loop(client, verify, connections, timing.timing()).await;
    let jwks: Value = client
        .get(format!("{base}/api/v1/auth/jwks"))
        .send()
        .await?
        .json()
        .await?;
    let jwk: jsonwebtoken::jwk::Jwk = jwks
        .pointer("/keys/0")
        .cloned()
        .and_then(|k| serde_json::from_value(k).ok())
        .ok_or_else(|| BenchError::Setup("the JWKS has no usable key".into()))?;
    let raw_tokens = {
        let token = token.to_string();
        tokio::task::spawn_blocking(move || {
            baseline::token_verifications(&token, &jwk, threads, seconds)
        })
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))??
    };
    eprintln!(
        "auth: {:.1} logins/s vs {:.1} raw argon2id/s; {:.0} verifications/s at the edge vs {:.0} raw EdDSA/s; errors {}",
        login_run.achieved_rate,
        raw_hashes.per_second,
        verify_run.achieved_rate,
        raw_tokens.per_second,
        login_run.errors + verify_run.errors
    );
    Ok(json!({
        "logins": json_of(&login_run),
        "raw_argon2id": json_of(&raw_hashes), "login_rounds": login_rounds,
        "edge_verifications": json_of(&verify_run),
        "raw_token_verifications": json_of(&raw_tokens),
    }))
}
