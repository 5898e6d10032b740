//! A zip archive written as a stream: each file goes out as its bytes arrive (stored,
//! with a data descriptor after it), so an export never holds a whole file, let alone
//! the archive, in memory. The SHA-256 and size of every file are taken on the way
//! through for `manifest.json`, the last file, and the central directory follows.
//!
//! Entries are stored, not compressed: the bulk of an export is photos, already
//! compressed. Plain zip (no zip64): a file or the archive past 4 GiB is refused.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A source of a file failed.
    #[error("reading {path}: {source}")]
    Source {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Plain zip's limits.
    #[error("{0} is larger than 4 GiB")]
    TooLarge(String),
    /// Whoever takes the archive stopped taking it.
    #[error("the archive's reader went away")]
    Closed,
}

/// One file of the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    format_version: u32,
    created_at: DateTime<Utc>,
    files: &'a [ManifestFile],
}

struct Entry {
    name: String,
    crc: u32,
    size: u32,
    offset: u32,
}

/// Writes an archive into `out`, a chunk at a time.
pub struct ZipStream<S> {
    out: S,
    offset: u64,
    entries: Vec<Entry>,
    files: Vec<ManifestFile>,
    created_at: DateTime<Utc>,
    dos_time: u16,
    dos_date: u16,
}

/// Where the chunks go (a channel to the uploader, a `Vec` in tests).
pub trait Sink {
    /// Takes one chunk; an error when the reader went away.
    fn send(
        &mut self,
        chunk: Bytes,
    ) -> impl std::future::Future<Output = Result<(), ArchiveError>> + Send;
    /// Tells the reader the archive is broken (it must not keep what it got).
    fn fail(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

impl Sink for tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>> {
    async fn send(&mut self, chunk: Bytes) -> Result<(), ArchiveError> {
        tokio::sync::mpsc::Sender::send(self, Ok(chunk))
            .await
            .map_err(|_| ArchiveError::Closed)
    }

    async fn fail(&mut self) {
        let broken = std::io::Error::other("the archive could not be completed");
        // A reader that went away has nothing to keep anyway.
        let _ = tokio::sync::mpsc::Sender::send(self, Err(broken)).await;
    }
}

impl Sink for Vec<u8> {
    async fn send(&mut self, chunk: Bytes) -> Result<(), ArchiveError> {
        self.extend_from_slice(&chunk);
        Ok(())
    }

    async fn fail(&mut self) {
        self.clear();
    }
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
/// Sizes and CRC follow the data; the name is UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
const VERSION: u16 = 20;

impl<S: Sink + Send> ZipStream<S> {
    /// An empty archive dated `created_at`.
    pub fn new(out: S, created_at: DateTime<Utc>) -> Self {
        let dos_time =
            (created_at.hour() << 11) | (created_at.minute() << 5) | (created_at.second() / 2);
        let year = created_at.year().clamp(1980, 2107).unsigned_abs();
        let dos_date = ((year - 1980) << 9) | (created_at.month() << 5) | created_at.day();
        // All fit in 16 bits: hours < 24, minutes < 60, years since 1980 < 128.
        let (dos_time, dos_date) = (
            u16::try_from(dos_time).unwrap_or(0),
            u16::try_from(dos_date).unwrap_or(0),
        );
        Self {
            out,
            offset: 0,
            entries: Vec::new(),
            files: Vec::new(),
            created_at,
            dos_time,
            dos_date,
        }
    }

    async fn emit(&mut self, chunk: Bytes) -> Result<(), ArchiveError> {
        self.offset += chunk.len() as u64;
        self.out.send(chunk).await
    }

    /// Adds `path` with the bytes `body` yields.
    pub async fn add<B, E>(&mut self, path: &str, body: B) -> Result<(), ArchiveError>
    where
        B: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let offset =
            u32::try_from(self.offset).map_err(|_| ArchiveError::TooLarge("the archive".into()))?;
        let mut header = BytesMut::with_capacity(30 + path.len());
        header.put_u32_le(LOCAL_HEADER);
        header.put_u16_le(VERSION);
        header.put_u16_le(FLAGS);
        header.put_u16_le(0); // stored
        header.put_u16_le(self.dos_time);
        header.put_u16_le(self.dos_date);
        header.put_u32_le(0); // CRC, sizes: in the data descriptor
        header.put_u32_le(0);
        header.put_u32_le(0);
        header.put_u16_le(path.len() as u16);
        header.put_u16_le(0);
        header.put_slice(path.as_bytes());
        self.emit(header.freeze()).await?;

        let mut crc = crc32fast::Hasher::new();
        let mut sha = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ArchiveError::Source {
                path: path.to_owned(),
                source: e.into(),
            })?;
            crc.update(&chunk);
            sha.update(&chunk);
            size += chunk.len() as u64;
            if size > u64::from(u32::MAX) {
                return Err(ArchiveError::TooLarge(path.to_owned()));
            }
            self.emit(chunk).await?;
        }
        let (crc, size32) = (crc.finalize(), size as u32);
        let mut descriptor = BytesMut::with_capacity(16);
        descriptor.put_u32_le(DATA_DESCRIPTOR);
        descriptor.put_u32_le(crc);
        descriptor.put_u32_le(size32);
        descriptor.put_u32_le(size32);
        self.emit(descriptor.freeze()).await?;
        self.entries.push(Entry {
            name: path.to_owned(),
            crc,
            size: size32,
            offset,
        });
        self.files.push(ManifestFile {
            path: path.to_owned(),
            size,
            sha256: hex(&sha.finalize()),
        });
        Ok(())
    }

    /// Gives up: the reader is told the archive is broken.
    pub async fn abort(mut self) {
        self.out.fail().await;
    }

    /// Adds `manifest.json` and the central directory; returns the archive's size and
    /// its manifest.
    pub async fn finish(mut self) -> Result<(u64, Vec<ManifestFile>), ArchiveError> {
        let manifest = serde_json::to_vec_pretty(&Manifest {
            format_version: 1,
            created_at: self.created_at,
            files: &self.files,
        })
        .map_err(|e| ArchiveError::Source {
            path: "manifest.json".into(),
            source: e.into(),
        })?;
        let once =
            futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from(manifest)) });
        self.add("manifest.json", once).await?;
        let start =
            u32::try_from(self.offset).map_err(|_| ArchiveError::TooLarge("the archive".into()))?;
        let mut directory = BytesMut::new();
        for e in &self.entries {
            directory.put_u32_le(CENTRAL_HEADER);
            directory.put_u16_le(VERSION); // made by
            directory.put_u16_le(VERSION); // needed
            directory.put_u16_le(FLAGS);
            directory.put_u16_le(0);
            directory.put_u16_le(self.dos_time);
            directory.put_u16_le(self.dos_date);
            directory.put_u32_le(e.crc);
            directory.put_u32_le(e.size);
            directory.put_u32_le(e.size);
            directory.put_u16_le(e.name.len() as u16);
            directory.put_u16_le(0); // extra
            directory.put_u16_le(0); // comment
            directory.put_u16_le(0); // disk
            directory.put_u16_le(0); // internal attributes
            directory.put_u32_le(0); // external attributes
            directory.put_u32_le(e.offset);
            directory.put_slice(e.name.as_bytes());
        }
        let length = directory.len() as u32;
        let count = self.entries.len() as u16;
        directory.put_u32_le(END_OF_CENTRAL);
        directory.put_u16_le(0);
        directory.put_u16_le(0);
        directory.put_u16_le(count);
        directory.put_u16_le(count);
        directory.put_u32_le(length);
        directory.put_u32_le(start);
        directory.put_u16_le(0);
        self.emit(directory.freeze()).await?;
        Ok((self.offset, self.files))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
