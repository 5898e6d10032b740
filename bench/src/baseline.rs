//! The limits the services are held against: the raw rate of the libraries they use, with
//! the same parameters, on the same cores, with no HTTP and no database in the way.

use crate::report::Throughput;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, RgbImage};
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A baseline that could not run.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("image")]
    Image(#[from] image::ImageError),
    #[error("the token's key")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("a worker thread panicked")]
    Worker,
    #[error("running {tool}")]
    Spawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed: {status}")]
    Tool {
        tool: &'static str,
        status: std::process::ExitStatus,
    },
}

/// Runs `work` on `threads` threads until `seconds` are over; how many times it ran.
fn on_threads<F>(threads: usize, seconds: Duration, work: F) -> Result<Throughput, BaselineError>
where
    F: Fn() -> Result<(), BaselineError> + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let started = Instant::now();
    let until = started + seconds;
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || -> Result<u64, BaselineError> {
                let mut done = 0;
                while Instant::now() < until {
                    work()?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut count = 0;
    for handle in handles {
        count += handle.join().map_err(|_| BaselineError::Worker)??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Throughput {
        per_second: count as f64 / elapsed,
        count,
        seconds: elapsed,
        threads: threads.max(1),
    })
}

/// Password checks a second: argon2id verifications with the auth service's parameters
/// (what one login costs the auth service).
pub fn argon2_verifications(
    threads: usize,
    seconds: Duration,
) -> Result<Throughput, BaselineError> {
    let p = agora_auth::passwords::HashParams::default();
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
        .map_err(|e| BaselineError::Argon2(e.to_string()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = hasher
        .hash_password(b"bench password")
        .map_err(|e| BaselineError::Argon2(e.to_string()))?
        .to_string();
    on_threads(threads, seconds, move || {
        let parsed =
            argon2::PasswordHash::new(&hash).map_err(|e| BaselineError::Argon2(e.to_string()))?;
        hasher
            .verify_password(b"bench password", &parsed)
            .map_err(|e| BaselineError::Argon2(e.to_string()))
    })
}

/// Access-token verifications a second: the EdDSA signature and claims of `token`
/// checked with the platform's public key (`jwk`, from its JWKS).
pub fn token_verifications(
    token: &str,
    jwk: &jsonwebtoken::jwk::Jwk,
    threads: usize,
    seconds: Duration,
) -> Result<Throughput, BaselineError> {
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_aud = false;
    let token = token.to_owned();
    // Fails now rather than in every thread if the key does not fit.
    jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)?;
    on_threads(threads, seconds, move || {
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)?;
        Ok(())
    })
}

/// Photos a second through libjpeg-turbo's own tools, the pipeline a user could script
/// instead of the photos service: `djpeg | cjpeg -quality 85 -optimize` for the stored
/// image and `djpeg -scale 1/4 | cjpeg -quality 85` (DCT-domain downscaling) for the
/// thumbnail; four process starts per photo, each tool single-threaded.
pub fn libjpeg_turbo_pipeline(
    jpeg: Arc<std::path::PathBuf>,
    threads: usize,
    seconds: Duration,
) -> Result<Throughput, BaselineError> {
    on_threads(threads, seconds, move || {
        let path = jpeg.as_os_str();
        piped(
            ("djpeg", &[path]),
            ("cjpeg", &["-quality", "85", "-optimize"]),
        )?;
        piped(
            ("djpeg", &["-scale".as_ref(), "1/4".as_ref(), path]),
            ("cjpeg", &["-quality", "85"]),
        )
    })
}

/// Photos a second through libvips' command-line tools, the peer a user might pick:
/// `vips copy in out.jpg[Q=85,strip]` and `vipsthumbnail -s 320`, one libvips thread per
/// process (`VIPS_CONCURRENCY=1`) so that `threads` processes share the cores as the
/// other pipelines do.
pub fn libvips_pipeline(
    jpeg: Arc<std::path::PathBuf>,
    scratch: Arc<std::path::PathBuf>,
    threads: usize,
    seconds: Duration,
) -> Result<Throughput, BaselineError> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    on_threads(threads, seconds, move || {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 64;
        let full = scratch.join(format!("full-{n}.jpg[Q=85,strip]"));
        let thumb = scratch.join(format!("thumb-{n}.jpg[Q=85,strip]"));
        let vips = |tool: &'static str, args: &[&std::ffi::OsStr]| -> Result<(), BaselineError> {
            let status = std::process::Command::new(tool)
                .args(args)
                .env("VIPS_CONCURRENCY", "1")
                .status()
                .map_err(|source| BaselineError::Spawn { tool, source })?;
            status
                .success()
                .then_some(())
                .ok_or(BaselineError::Tool { tool, status })
        };
        vips(
            "vips",
            &["copy".as_ref(), jpeg.as_os_str(), full.as_os_str()],
        )?;
        vips(
            "vipsthumbnail",
            &[
                jpeg.as_os_str(),
                "-s".as_ref(),
                "320".as_ref(),
                "-o".as_ref(),
                thumb.as_os_str(),
            ],
        )
    })
}

/// `first | second > /dev/null`, both waited for.
fn piped<A: AsRef<std::ffi::OsStr>, B: AsRef<std::ffi::OsStr>>(
    (first, first_args): (&'static str, &[A]),
    (second, second_args): (&'static str, &[B]),
) -> Result<(), BaselineError> {
    use std::process::{Command, Stdio};
    let mut producer = Command::new(first)
        .args(first_args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| BaselineError::Spawn {
            tool: first,
            source,
        })?;
    let Some(stdout) = producer.stdout.take() else {
        return Err(BaselineError::Worker);
    };
    let consumer = Command::new(second)
        .args(second_args)
        .stdin(stdout)
        .stdout(Stdio::null())
        .status()
        .map_err(|source| BaselineError::Spawn {
            tool: second,
            source,
        })?;
    let produced = producer.wait().map_err(|source| BaselineError::Spawn {
        tool: first,
        source,
    })?;
    for (tool, status) in [(first, produced), (second, consumer)] {
        if !status.success() {
            return Err(BaselineError::Tool { tool, status });
        }
    }
    Ok(())
}

/// A photo-like JPEG of `width`×`height`: smooth light and texture, so it compresses
/// like a photograph rather than a flat test card.
pub fn photo_jpeg(width: u32, height: u32) -> Result<Vec<u8>, BaselineError> {
    seeded_photo_jpeg(width, height, 0)
}

/// [`photo_jpeg`] with its noise seeded: distinct seeds, distinct bytes.
pub fn seeded_photo_jpeg(width: u32, height: u32, seed: u32) -> Result<Vec<u8>, BaselineError> {
    let mut state: u32 = 0x1234_5678 ^ seed.wrapping_mul(0x9e37_79b9);
    let image = RgbImage::from_fn(width, height, |x, y| {
        // xorshift noise over gradients.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state & 0x1f) as i32 - 16;
        let fx = x as f32 / width as f32;
        let fy = y as f32 / height as f32;
        let wave = ((fx * 12.0).sin() * (fy * 9.0).cos() * 40.0) as i32;
        let channel = |base: f32| (base as i32 + wave + noise).clamp(0, 255) as u8;
        image::Rgb([
            channel(60.0 + 150.0 * fy),
            channel(90.0 + 100.0 * fx),
            channel(180.0 - 120.0 * fy),
        ])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(image).write_with_encoder(JpegEncoder::new_with_quality(
        &mut Cursor::new(&mut out),
        90,
    ))?;
    Ok(out)
}
