//! `agora backup` and `agora restore`: a whole platform's data — every service's
//! database, the photo bytes and the keys — as one set, checked on the way back.
//!
//! Layout (the same for a cluster's backups): `databases/<service>.dump` (pg_dump's
//! custom format), `photos/<object>` (the photo store's objects as they are),
//! `keys.json` or `keys.sealed` (the signing key and the share-link key, sealed when an
//! encryption key is given) and `manifest.json`, written last: a backup without one is
//! incomplete. A restore checks every object against the manifest before it writes
//! anything, and leaves nothing behind when it fails.

pub mod archive;
mod dumps;
pub mod manifest;
mod photo_bucket;
pub mod sealed;

use crate::postgres::{self, LocalPostgres, PostgresError};
use archive::Archive;
pub use archive::Location;
use base64::Engine as _;
use dumps::Server;
use manifest::{CUT, DatabaseEntry, FileEntry, KeysEntry, Manifest, PhotoSummary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a backup or restore refused or could not do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file-system step failed.
    #[error("{path}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The backup's store failed.
    #[error("{what}")]
    Store {
        /// Which object (or store).
        what: String,
        /// Why.
        source: object_store::Error,
    },
    /// A PostgreSQL tool failed.
    #[error("`{command}` failed: {output}")]
    Tool {
        /// Which.
        command: String,
        /// What it said.
        output: String,
    },
    /// The local cluster could not be started or stopped.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// Creating a database failed.
    #[error(transparent)]
    Database(#[from] agora_common::db::DbError),
    /// An option or the state it names is not usable.
    #[error("{0}")]
    Invalid(String),
    /// A backup file is missing, truncated or altered.
    #[error("backup file {file} is damaged: {reason}; nothing was restored")]
    Corrupt {
        /// The object, under the backup's root.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The keys cannot be opened, or the manifest is not the key's.
    #[error("backup file {file}")]
    Sealed {
        /// The keys object.
        file: String,
        /// Why.
        source: sealed::SealError,
    },
}

impl From<agora_common::store::StoreError> for BackupError {
    fn from(err: agora_common::store::StoreError) -> Self {
        match err {
            agora_common::store::StoreError::Invalid(why) => Self::Invalid(why),
            agora_common::store::StoreError::Store { what, source } => Self::Store { what, source },
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reports a step of a long operation (a line on stderr, for the CLI).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// `agora backup`.
pub struct BackupOptions {
    /// The platform's state dir (`agora up --state-dir`).
    pub state_dir: PathBuf,
    /// A directory to create (or an empty one), or an empty bucket prefix.
    pub to: Location,
    /// Seals the keys when given.
    pub encryption_key: Option<Vec<u8>>,
    /// The server `agora up` was pointed at with `--database-url`, if it was.
    pub database_url: Option<String>,
    /// Instead of a state dir: where a cluster's platform keeps its data.
    pub explicit: Option<ExplicitSource>,
    /// The destination may hold an unfinished attempt (no manifest), which is cleared;
    /// one holding a complete backup is left as it is (a retried Job's second run).
    pub resume: bool,
    /// The platform, as the manifest records it (a cluster's name, namespace and spec).
    pub platform: Option<serde_json::Value>,
}

/// A platform's data named piece by piece (what a cluster's backup Job mounts).
pub struct ExplicitSource {
    /// Each service's database: `(service, postgres URL)`. A URL without a password
    /// uses `PGPASSWORD`.
    pub databases: Vec<(String, String)>,
    /// The key files, named as the platform's keys Secret names them
    /// (`auth-signing-key`, `share-link-key`, `internal-token`).
    pub keys_dir: PathBuf,
    /// The photo store's directory, when photos are on a volume.
    pub photos_dir: Option<PathBuf>,
    /// The photos' bucket, when photos are in one: its objects are listed, not copied.
    pub photos_bucket: Option<Location>,
}

/// The key files of a local state dir (`keys/`), by the names a backup gives them (the
/// keys Secret's names in a cluster), so that a backup restores either way.
const LOCAL_KEYS: [(&str, &str); 2] = [
    ("auth-signing-key", "auth-signing-key.pem"),
    ("share-link-key", "photos-share-link-key"),
];

/// `agora restore`.
pub struct RestoreOptions {
    /// The backup's directory or bucket prefix.
    pub from: Location,
    /// A state dir to create (or an empty one).
    pub state_dir: PathBuf,
    /// Opens sealed keys.
    pub encryption_key: Option<Vec<u8>>,
    /// Instead of a state dir: where a cluster's new platform keeps its data.
    pub explicit: Option<ExplicitTarget>,
    /// The erasure log kept beside the backups: every erasure logged after the backup
    /// started is applied again before the platform serves.
    pub erasure_log: Option<Location>,
}

/// A new platform's data places named one by one (what a cluster's restore Job mounts).
pub struct ExplicitTarget {
    /// Each service's database, empty: `(service, postgres URL)`, restored as the URL's
    /// role (the service's own, which then owns what it restores).
    pub databases: Vec<(String, String)>,
    /// Where the key files are written, named as the keys Secret names them.
    pub keys_dir: PathBuf,
    /// The photo store's directory, empty, when photos are on a volume.
    pub photos_dir: Option<PathBuf>,
    /// The photos' bucket, when photos are in one: it must hold every object the
    /// backup listed.
    pub photos_bucket: Option<Location>,
    /// The databases already hold the data (CloudNativePG recovered them to a point in
    /// time): only the photos and the keys are restored, and logged erasures applied.
    pub databases_recovered: bool,
}

/// Backs up the platform whose state is in `options.state_dir` (running or not), or
/// the one `options.explicit` names.
pub async fn backup(
    options: &BackupOptions,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let state_dir = match &options.explicit {
        Some(_) => None,
        None => Some(checked_state_dir(&options.state_dir)?),
    };
    let created = match &options.to {
        Location::Directory(dir) if options.resume => {
            if !dir.exists() {
                claim_empty_dir(dir, 0o700)?;
            }
            Some(false)
        }
        Location::Directory(dir) => Some(claim_empty_dir(dir, 0o700)?),
        Location::S3 { .. } => None,
    };
    let archive = match Archive::open(&options.to) {
        Ok(archive) => archive,
        Err(err) => {
            forget(&options.to, created, None).await;
            return Err(err);
        }
    };
    if options.resume {
        if let Some(bytes) = archive.read_bytes(manifest::NAME).await? {
            progress("the destination holds a complete backup already: kept");
            return serde_json::from_slice(&bytes).map_err(|e| BackupError::Corrupt {
                file: manifest::NAME.into(),
                reason: format!("unreadable ({e})"),
            });
        }
        // What an interrupted attempt left: never part of a backup.
        archive.clear().await?;
    } else if created.is_none() && !archive.is_empty().await? {
        // A bucket prefix is checked here; a directory was when it was claimed.
        return Err(BackupError::Invalid(format!(
            "{} is not empty: refusing to write into it",
            options.to
        )));
    }
    let result = match (&options.explicit, &state_dir) {
        (Some(explicit), _) => back_up_explicit(explicit, &archive, options, progress).await,
        (None, Some(state_dir)) => back_up_state_dir(state_dir, &archive, options, progress).await,
        (None, None) => Err(BackupError::Invalid("nothing to back up".into())),
    };
    if result.is_err() {
        forget(&options.to, created, Some(&archive)).await;
    }
    result
}

fn checked_state_dir(state_dir: &Path) -> Result<PathBuf, BackupError> {
    let state_dir = state_dir
        .canonicalize()
        .map_err(|e| BackupError::Invalid(format!("state dir {}: {e}", state_dir.display())))?;
    if !state_dir.join("keys").is_dir() {
        return Err(BackupError::Invalid(format!(
            "{} holds no platform (no keys/): nothing to back up",
            state_dir.display()
        )));
    }
    Ok(state_dir)
}

async fn back_up_state_dir(
    state_dir: &Path,
    archive: &Archive,
    options: &BackupOptions,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let keys = read_keys(&state_dir.join("keys"), &LOCAL_KEYS)?;
    let source = DatabaseSource::open(state_dir, options.database_url.as_deref()).await?;
    let sources = Sources {
        databases: CUT
            .iter()
            .map(|service| (*service, format!("agora_{service}"), source.server()))
            .collect(),
        photos_dir: Some(state_dir.join("photos")),
        photos_bucket: None,
        keys,
        kind: "local",
    };
    let written = write_backup(archive, &sources, options, progress).await;
    // The backup's own failure is the story; a complete backup stays complete even
    // if the cluster started for it does not stop cleanly.
    if let Err(err) = source.close().await {
        tracing::warn!(error = %agora_common::problem::Chain(&err), "stopping the state dir's PostgreSQL after the backup failed");
    }
    written
}

async fn back_up_explicit(
    explicit: &ExplicitSource,
    archive: &Archive,
    options: &BackupOptions,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    // Only the client tools are needed: on PATH when no server is installed.
    let bin_dir = postgres::find_bin_dir().unwrap_or_default();
    let mut servers = Vec::new();
    for service in CUT {
        let mut urls = explicit.databases.iter().filter(|(s, _)| s == service);
        let Some((_, url)) = urls.next() else {
            continue;
        };
        if urls.next().is_some() {
            return Err(BackupError::Invalid(format!(
                "--database {service}=… given twice"
            )));
        }
        let (server, database) = server_of(service, url, &bin_dir)?;
        servers.push((service, database, server));
    }
    if let Some((unknown, _)) = explicit
        .databases
        .iter()
        .find(|(s, _)| !CUT.contains(&s.as_str()))
    {
        return Err(BackupError::Invalid(format!(
            "--database {unknown}=…: no such service (one of {})",
            CUT.join(", ")
        )));
    }
    let names: Vec<(&str, &str)> = LOCAL_KEYS
        .iter()
        .map(|(name, _)| (*name, *name))
        .chain([("internal-token", "internal-token")])
        .collect();
    let sources = Sources {
        databases: servers
            .iter()
            .map(|(service, database, server)| (*service, database.clone(), server))
            .collect(),
        photos_dir: explicit.photos_dir.clone(),
        photos_bucket: explicit.photos_bucket.clone(),
        keys: read_keys(&explicit.keys_dir, &names)?,
        kind: "cluster",
    };
    write_backup(archive, &sources, options, progress).await
}

/// Where one backup reads from.
struct Sources<'a> {
    /// `(service, database, server)`, in the cut's order.
    databases: Vec<(&'a str, String, &'a Server)>,
    /// The photo store's directory, if photos are files.
    photos_dir: Option<PathBuf>,
    /// The photos' bucket, if photos are objects there.
    photos_bucket: Option<Location>,
    /// The key files, as `keys.json`'s content.
    keys: Vec<u8>,
    /// `local` or `cluster`.
    kind: &'static str,
}

/// Removes what a failed backup wrote: the directory's contents (or the directory, if
/// it was made here), or the bucket prefix's objects (it was empty before).
async fn forget(to: &Location, created: Option<bool>, archive: Option<&Archive>) {
    match (to, created, archive) {
        (Location::Directory(dir), Some(created), _) => discard(dir, created),
        (Location::S3 { .. }, _, Some(archive)) => {
            let _ = archive.clear().await;
        }
        _ => {}
    }
}

/// Where the databases are read from while backing up.
enum DatabaseSource {
    /// A server of its own or `agora up`'s running cluster.
    Server(Server),
    /// The state dir's cluster, started for the backup (no `agora up` was running) and
    /// stopped after it; the lock keeps `agora up` out meanwhile.
    Started(Server, LocalPostgres, std::fs::File),
}

impl DatabaseSource {
    async fn open(state_dir: &Path, database_url: Option<&str>) -> Result<Self, BackupError> {
        if let Some(url) = database_url {
            // Only the client tools are needed: on PATH when no server is installed.
            let bin_dir = postgres::find_bin_dir().unwrap_or_default();
            return Ok(Self::Server(Server::new(url, bin_dir)?));
        }
        let lock_path = state_dir.join("agora.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        if lock.try_lock().is_err() {
            // `agora up` runs: dump from its cluster, wherever it listens.
            let url = postgres::running_url(state_dir)?.ok_or_else(|| {
                BackupError::Invalid(
                    "`agora up` runs on this state dir without its own cluster: pass the \
                     server it uses with --database-url"
                        .into(),
                )
            })?;
            return Ok(Self::Server(Server::new(&url, postgres::find_bin_dir()?)?));
        }
        if !state_dir.join("postgres/data/PG_VERSION").is_file() {
            return Err(BackupError::Invalid(format!(
                "{} has no PostgreSQL cluster of its own (did `agora up` run with \
                 --database-url?): pass the same --database-url",
                state_dir.display()
            )));
        }
        let dir = state_dir.to_owned();
        let pg = tokio::task::spawn_blocking(move || LocalPostgres::start(&dir))
            .await
            .map_err(|e| BackupError::Invalid(e.to_string()))??;
        Ok(Self::Started(
            Server::new(&pg.url(), pg.bin_dir().to_owned())?,
            pg,
            lock,
        ))
    }

    fn server(&self) -> &Server {
        match self {
            Self::Server(server) | Self::Started(server, ..) => server,
        }
    }

    async fn close(self) -> Result<(), BackupError> {
        if let Self::Started(_, pg, lock) = self {
            tokio::task::spawn_blocking(move || pg.stop())
                .await
                .map_err(|e| BackupError::Invalid(e.to_string()))??;
            drop(lock);
        }
        Ok(())
    }
}

async fn write_backup(
    archive: &Archive,
    sources: &Sources<'_>,
    options: &BackupOptions,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let started_at = now();
    let keys = sources.keys.clone();
    let mut postgres_version = String::new();
    let mut files = Vec::new();
    let mut databases = Vec::new();
    for (service, database, server) in &sources.databases {
        if postgres_version.is_empty() {
            postgres_version = server.query(database, "SHOW server_version").await?;
        }
        let migration = server.migration(database).await?;
        let file = format!("databases/{service}.dump");
        let entry = server.dump(database, archive, &file).await?;
        progress(&format!("dumped {database} ({})", size(entry.size)));
        files.push(entry);
        databases.push(DatabaseEntry {
            service: (*service).to_owned(),
            database: database.clone(),
            migration,
            file,
        });
    }
    // After the photos database: every photo it names has its bytes here (unless its
    // owner deleted it meanwhile).
    let photos = match (&sources.photos_dir, &sources.photos_bucket) {
        (Some(dir), _) => copy_photos(dir, archive, &mut files, progress).await?,
        (None, Some(bucket)) => {
            let (listing, objects) = photo_bucket::record(bucket, archive, progress).await?;
            files.push(listing);
            PhotoSummary {
                objects: objects.len() as u64,
                bytes: objects.iter().map(|o| o.size).sum(),
                bucket: Some(bucket.to_string()),
            }
        }
        (None, None) => PhotoSummary::default(),
    };
    let (name, encryption, bytes) = match &options.encryption_key {
        Some(secret) => (
            "keys.sealed",
            "aes-256-gcm",
            sealed::seal(secret, &keys).map_err(|source| BackupError::Sealed {
                file: "keys.sealed".into(),
                source,
            })?,
        ),
        None => ("keys.json", "none", keys),
    };
    files.push(archive.write_bytes(name, bytes).await?);
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        agora_version: env!("CARGO_PKG_VERSION").into(),
        source: sources.kind.into(),
        platform: options.platform.clone(),
        postgres_version,
        databases,
        photos,
        keys: KeysEntry {
            file: name.into(),
            encryption: encryption.into(),
        },
        files,
        started_at,
        completed_at: now(),
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Invalid(format!("manifest: {e}")))?;
    if let Some(secret) = &options.encryption_key {
        let tag = sealed::tag(secret, &json).map_err(|source| BackupError::Sealed {
            file: manifest::MAC.into(),
            source,
        })?;
        archive.write_bytes(manifest::MAC, tag.into_bytes()).await?;
    }
    archive.write_bytes(manifest::NAME, json).await?;
    Ok(manifest)
}

/// Copies the photo store's files. A file deleted since the photos database was
/// dumped is skipped: its owner deleted the photo meanwhile (the cut's one exception,
/// see `docs/backup.md`).
async fn copy_photos(
    dir: &Path,
    archive: &Archive,
    files: &mut Vec<FileEntry>,
    progress: Progress<'_>,
) -> Result<PhotoSummary, BackupError> {
    let mut summary = PhotoSummary::default();
    for relative in walk(dir)? {
        let path = dir.join(&relative);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path)(e)),
        };
        let entry = archive
            .write_from(&format!("photos/{relative}"), file)
            .await?;
        summary.objects += 1;
        summary.bytes += entry.size;
        files.push(entry);
        if summary.objects.is_multiple_of(500) {
            progress(&format!("copied {} photo objects", summary.objects));
        }
    }
    progress(&format!(
        "copied {} photo objects ({})",
        summary.objects,
        size(summary.bytes)
    ));
    Ok(summary)
}

/// Every regular file under `dir`, as sorted `/`-separated relative paths (none when
/// `dir` does not exist).
fn walk(dir: &Path) -> Result<Vec<String>, BackupError> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_owned(), String::new())];
    while let Some((at, prefix)) = pending.pop() {
        let entries = match std::fs::read_dir(&at) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&at)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&at))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(io_err(&entry.path()))?;
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // The photo store writes `<name>#<n>`, then renames: skip unfinished ones.
            if kind.is_dir() {
                pending.push((entry.path(), relative));
            } else if kind.is_file() && !relative.contains('#') {
                found.push(relative);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The key files of `dir` as JSON, `{"<name>": "<base64>"}`: each `(name, file)` of
/// `names` that exists (a Secret's mount holds links to its files, which are followed).
fn read_keys(dir: &Path, names: &[(&str, &str)]) -> Result<Vec<u8>, BackupError> {
    let mut keys = BTreeMap::new();
    for (name, file) in names {
        let path = dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => {
                keys.insert(
                    (*name).to_owned(),
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    if !keys.contains_key("auth-signing-key") {
        return Err(BackupError::Invalid(format!(
            "{} holds no signing key",
            dir.display()
        )));
    }
    serde_json::to_vec(&keys).map_err(|e| BackupError::Invalid(format!("keys: {e}")))
}

/// Deletes a backup's files: the directory, or every object under the bucket prefix.
/// Absent already is fine (a deletion Job's retry).
pub async fn delete(location: &Location) -> Result<(), BackupError> {
    match location {
        Location::Directory(dir) => match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(dir)(e)),
        },
        Location::S3 { .. } => Archive::open(location)?.clear().await,
    }
}

/// Restores a backup into a new state dir, which `agora up` then serves (migrating
/// forward if the backup is older).
pub async fn restore(
    options: &RestoreOptions,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    if let Location::Directory(dir) = &options.from
        && !dir.is_dir()
    {
        return Err(BackupError::Invalid(format!(
            "{}: no backup there",
            dir.display()
        )));
    }
    if options.explicit.is_none() {
        refuse_non_empty(&options.state_dir)?;
    }
    let archive = Archive::open(&options.from)?;
    let manifest = read_manifest(&archive, options.encryption_key.as_deref()).await?;
    // Every byte is checked before one is written.
    for (i, entry) in manifest.files.iter().enumerate() {
        archive.verify(entry).await?;
        if (i + 1).is_multiple_of(500) {
            progress(&format!(
                "checked {} of {} files",
                i + 1,
                manifest.files.len()
            ));
        }
    }
    progress(&format!("checked all {} files", manifest.files.len()));
    let keys = open_keys(&archive, &manifest, options.encryption_key.as_deref()).await?;
    check_photo_place(&archive, &manifest, options.explicit.as_ref(), progress).await?;
    if let Some(target) = &options.explicit {
        return restore_explicit(
            target,
            &archive,
            &manifest,
            &keys,
            options.erasure_log.as_ref(),
            progress,
        )
        .await
        .map(|()| manifest);
    }

    // Not 0700: when run as root, the `postgres` user must reach the cluster inside.
    let created = claim_empty_dir(&options.state_dir, 0o755)?;
    let result = fill(
        &options.state_dir,
        &archive,
        &manifest,
        &keys,
        options.erasure_log.as_ref(),
        progress,
    )
    .await;
    if result.is_err() {
        discard(&options.state_dir, created);
    }
    result.map(|()| manifest)
}

/// Refuses a restore whose photos would have no place: a backup whose photos stayed in
/// their bucket restores only into a platform using that bucket (which must still hold
/// them), and photo files only onto a volume.
async fn check_photo_place(
    archive: &Archive,
    manifest: &Manifest,
    target: Option<&ExplicitTarget>,
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let bucket = target.and_then(|t| t.photos_bucket.as_ref());
    match (&manifest.photos.bucket, bucket) {
        (Some(_), Some(bucket)) => {
            let objects = photo_bucket::recorded(archive, manifest).await?;
            photo_bucket::check(bucket, &objects, progress).await
        }
        (Some(recorded), None) => Err(BackupError::Invalid(format!(
            "the backup's photos stayed in {recorded}: restore it into a platform whose \
             photos are in that bucket (--photos-bucket); nothing was restored"
        ))),
        (None, Some(bucket)) if manifest.photos.objects > 0 => Err(BackupError::Invalid(format!(
            "the backup holds {} photo files, and this platform keeps its photos in \
             {bucket}: restore it into a platform with a photo volume; nothing was \
             restored",
            manifest.photos.objects
        ))),
        _ => Ok(()),
    }
}

/// Restores into a cluster's new platform: refuses unless every database and the photo
/// directory are empty; on a failure, empties what it filled (the databases' schemas,
/// the photo files) so that a retry starts from the same place. The key files are
/// written last.
async fn restore_explicit(
    target: &ExplicitTarget,
    archive: &Archive,
    manifest: &Manifest,
    keys: &BTreeMap<String, Vec<u8>>,
    erasure_log: Option<&Location>,
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let bin_dir = postgres::find_bin_dir().unwrap_or_default();
    let mut servers = Vec::new();
    let to_fill = if target.databases_recovered {
        &[][..]
    } else {
        &manifest.databases[..]
    };
    for db in to_fill {
        let url = target
            .databases
            .iter()
            .find(|(service, _)| *service == db.service)
            .map(|(_, url)| url)
            .ok_or_else(|| {
                BackupError::Invalid(format!(
                    "the backup holds the {} database: pass --database {}=URL",
                    db.service, db.service
                ))
            })?;
        let (server, database) = server_of(&db.service, url, &bin_dir)?;
        let tables = server
            .query(
                &database,
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg_toast%'",
            )
            .await?;
        if tables != "0" {
            return Err(BackupError::Invalid(format!(
                "database {database} ({}) is not empty ({tables} tables or sequences): \
                 refusing to restore into it",
                db.service
            )));
        }
        servers.push((db, database, server));
    }
    if let Some(dir) = &target.photos_dir {
        refuse_non_empty_contents(dir)?;
    }
    let mut restored = Vec::new();
    let filled = async {
        if let Some(dir) = &target.photos_dir {
            write_photos(dir, archive, manifest, progress).await?;
        }
        for (db, database, server) in &servers {
            let entry = dump_of(manifest, db)?;
            server.restore(database, archive, entry).await?;
            restored.push((database.clone(), server));
            progress(&format!("restored {database} ({})", db.service));
        }
        if let Some(log) = erasure_log {
            reapply_erasures(log, manifest, &target.databases, progress).await?;
        }
        std::fs::create_dir_all(&target.keys_dir).map_err(io_err(&target.keys_dir))?;
        for (name, bytes) in keys {
            let path = target.keys_dir.join(name);
            postgres::write_private(&path, bytes).map_err(io_err(&path))?;
        }
        Ok::<(), BackupError>(())
    }
    .await;
    if let Err(err) = filled {
        for (database, server) in restored {
            if let Err(undo) = server
                .query(
                    &database,
                    "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
                )
                .await
            {
                tracing::warn!(%database, error = %agora_common::problem::Chain(&undo), "emptying a restored database after a failed restore");
            }
        }
        if let Some(dir) = &target.photos_dir {
            discard(dir, false);
        }
        return Err(err);
    }
    Ok(())
}

/// Applies again every erasure of the log at `log` completed after the backup started,
/// straight in the restored databases (`(service, URL)`), before anything serves them:
/// a restore never brings an erased person back.
async fn reapply_erasures(
    log: &Location,
    manifest: &Manifest,
    databases: &[(String, String)],
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    use agora_common::accounts::{ERASURES_PREFIX, ErasureRecord};
    use futures_util::TryStreamExt;
    let started: chrono::DateTime<chrono::Utc> = manifest
        .started_at
        .parse()
        .map_err(|e| BackupError::Invalid(format!("the manifest's started_at: {e}")))?;
    let label = log.to_string();
    let store_err = |source| BackupError::Store {
        what: label.clone(),
        source,
    };
    let store = agora_common::store::open(log)?;
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&object_store::path::Path::from(ERASURES_PREFIX)))
        .try_collect()
        .await
        .map_err(store_err)?;
    let mut records = Vec::new();
    for meta in listed {
        let bytes = store
            .get_opts(&meta.location, object_store::GetOptions::default())
            .await
            .map_err(store_err)?
            .bytes()
            .await
            .map_err(store_err)?;
        let record: ErasureRecord = serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Invalid(format!(
                "{label}: {} is not an erasure record: {e}",
                meta.location
            ))
        })?;
        if record.erased_at > started {
            records.push(record);
        }
    }
    let url_of = |service: &str| {
        databases
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, url)| url.as_str())
    };
    for record in &records {
        let id = record.account_id;
        if let Some(url) = url_of("auth") {
            agora_auth::reapply_erasure(url, id, record.erased_at).await?;
        }
        for (service, url) in databases {
            match service.as_str() {
                "users" => agora_users::erase_account(url, id).await?,
                "relations" => agora_relations::erase_account(url, id).await?,
                "photos" => agora_photos::erase_account(url, id).await?,
                "events" => agora_events::erase_account(url, id).await?,
                "notifications" => agora_notifications::erase_account(url, id).await?,
                _ => {}
            }
        }
    }
    progress(&format!(
        "applied again {} erasure(s) logged after the backup started",
        records.len()
    ));
    Ok(())
}

/// The file entry of a database's dump.
fn dump_of<'a>(manifest: &'a Manifest, db: &DatabaseEntry) -> Result<&'a FileEntry, BackupError> {
    manifest
        .files
        .iter()
        .find(|f| f.path == db.file)
        .ok_or_else(|| BackupError::Corrupt {
            file: manifest::NAME.into(),
            reason: format!("lists no {}", db.file),
        })
}

/// A `--database SERVICE=URL`'s server and the database its URL names.
fn server_of(service: &str, url: &str, bin_dir: &Path) -> Result<(Server, String), BackupError> {
    let server = Server::new(url, bin_dir.to_owned())?;
    let database = server.database().ok_or_else(|| {
        BackupError::Invalid(format!(
            "--database {service}=URL: the URL names no database"
        ))
    })?;
    Ok((server, database))
}

/// Writes the backup's photo objects under `dir`.
async fn write_photos(
    dir: &Path,
    archive: &Archive,
    manifest: &Manifest,
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let mut photos = 0u64;
    for entry in manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("photos/"))
    {
        let relative = entry.path.trim_start_matches("photos/");
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_err(parent))?;
        }
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(io_err(&path))?;
        archive.read_into(entry, &mut file).await?;
        photos += 1;
        if photos.is_multiple_of(500) {
            progress(&format!("restored {photos} photo objects"));
        }
    }
    progress(&format!("restored {photos} photo objects"));
    Ok(())
}

/// Refuses a directory holding anything but what a fresh volume holds (`lost+found`).
fn refuse_non_empty_contents(dir: &Path) -> Result<(), BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_name() != "lost+found" {
            return Err(BackupError::Invalid(format!(
                "{} is not empty: refusing to restore photos into it",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The manifest; with an encryption key, only if its tag is the key's (then every file
/// it lists is the backup's own, checked by SHA-256). Without one, a backup is trusted
/// as far as the place it is kept.
async fn read_manifest(archive: &Archive, secret: Option<&[u8]>) -> Result<Manifest, BackupError> {
    let bytes = archive
        .read_bytes(manifest::NAME)
        .await?
        .ok_or_else(|| BackupError::Corrupt {
            file: manifest::NAME.into(),
            reason: "missing: the backup did not complete".into(),
        })?;
    if let Some(secret) = secret {
        let unauthentic = |source| BackupError::Sealed {
            file: manifest::NAME.into(),
            source,
        };
        let tag = archive
            .read_bytes(manifest::MAC)
            .await?
            .ok_or(sealed::SealError::Unauthentic)
            .map_err(unauthentic)?;
        sealed::check_tag(secret, &bytes, &String::from_utf8_lossy(&tag)).map_err(unauthentic)?;
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| BackupError::Corrupt {
        file: manifest::NAME.into(),
        reason: format!("unreadable ({e})"),
    })?;
    if manifest.format != manifest::FORMAT {
        return Err(BackupError::Invalid(format!(
            "backup format {:?}: this agora reads {:?}",
            manifest.format,
            manifest::FORMAT
        )));
    }
    // Names become paths and databases: only what a backup of ours holds.
    for entry in &manifest.files {
        let safe = entry
            .path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
        if !safe {
            return Err(BackupError::Corrupt {
                file: manifest::NAME.into(),
                reason: format!("names a file outside the backup: {:?}", entry.path),
            });
        }
    }
    for db in &manifest.databases {
        if !CUT.contains(&db.service.as_str()) || !manifest.files.iter().any(|f| f.path == db.file)
        {
            return Err(BackupError::Corrupt {
                file: manifest::NAME.into(),
                reason: format!("an unknown database entry {:?}", db.service),
            });
        }
    }
    Ok(manifest)
}

/// The key files, opened (and checked) before anything is written.
async fn open_keys(
    archive: &Archive,
    manifest: &Manifest,
    secret: Option<&[u8]>,
) -> Result<BTreeMap<String, Vec<u8>>, BackupError> {
    let file = manifest.keys.file.as_str();
    let entry = manifest
        .files
        .iter()
        .find(|f| f.path == file)
        .ok_or_else(|| BackupError::Corrupt {
            file: manifest::NAME.into(),
            reason: format!("lists no {file}"),
        })?;
    let mut bytes = Vec::new();
    archive.read_into(entry, &mut bytes).await?;
    let plain = match (manifest.keys.encryption.as_str(), secret) {
        ("none", _) => bytes,
        ("aes-256-gcm", Some(secret)) => {
            sealed::open(secret, &bytes).map_err(|source| BackupError::Sealed {
                file: file.into(),
                source,
            })?
        }
        ("aes-256-gcm", None) => {
            return Err(BackupError::Invalid(format!(
                "{file} is encrypted: pass --encryption-key-file"
            )));
        }
        (other, _) => {
            return Err(BackupError::Invalid(format!(
                "{file}: unknown encryption {other:?}"
            )));
        }
    };
    let encoded: BTreeMap<String, String> =
        serde_json::from_slice(&plain).map_err(|e| BackupError::Corrupt {
            file: file.into(),
            reason: format!("unreadable ({e})"),
        })?;
    let mut keys = BTreeMap::new();
    for (name, value) in encoded {
        let plain_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !name.starts_with('.');
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .filter(|_| plain_name)
            .ok_or_else(|| BackupError::Corrupt {
                file: file.into(),
                reason: format!("a bad key entry {name:?}"),
            })?;
        keys.insert(name, bytes);
    }
    Ok(keys)
}

async fn fill(
    state_dir: &Path,
    archive: &Archive,
    manifest: &Manifest,
    keys: &BTreeMap<String, Vec<u8>>,
    erasure_log: Option<&Location>,
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let lock_path = state_dir.join("agora.lock");
    let lock = std::fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.try_lock()
        .map_err(|_| BackupError::Invalid(format!("{} is in use", state_dir.display())))?;
    let key_dir = state_dir.join("keys");
    std::fs::create_dir_all(&key_dir).map_err(io_err(&key_dir))?;
    for (name, bytes) in keys {
        // A cluster's keys carry the Secret's names; a state dir has its own, and no
        // internal token (`agora up` makes one per run).
        let Some((_, file)) = LOCAL_KEYS.iter().find(|(key, _)| key == name) else {
            continue;
        };
        let path = key_dir.join(file);
        postgres::write_private(&path, bytes).map_err(io_err(&path))?;
    }
    write_photos(&state_dir.join("photos"), archive, manifest, progress).await?;

    let dir = state_dir.to_owned();
    let pg = tokio::task::spawn_blocking(move || LocalPostgres::start(&dir))
        .await
        .map_err(|e| BackupError::Invalid(e.to_string()))??;
    let restored = async {
        let server = Server::new(&pg.url(), pg.bin_dir().to_owned())?;
        for db in &manifest.databases {
            let name = format!("agora_{}", db.service);
            agora_common::db::ensure_database(&pg.url(), &name).await?;
            let entry = dump_of(manifest, db)?;
            server.restore(&name, archive, entry).await?;
            progress(&format!("restored {name}"));
        }
        if let Some(log) = erasure_log {
            let databases: Vec<(String, String)> = manifest
                .databases
                .iter()
                .map(|db| {
                    let url = agora_common::db::with_database(
                        &pg.url(),
                        &format!("agora_{}", db.service),
                    );
                    (db.service.clone(), url)
                })
                .collect();
            reapply_erasures(log, manifest, &databases, progress).await?;
        }
        Ok::<(), BackupError>(())
    }
    .await;
    let stopped = tokio::task::spawn_blocking(move || pg.stop())
        .await
        .map_err(|e| BackupError::Invalid(e.to_string()))?;
    restored?;
    stopped?;
    drop(lock);
    Ok(())
}

/// Makes `dir` (with `mode`) or accepts it empty; refuses one that holds anything.
/// Returns whether it was created here.
fn claim_empty_dir(dir: &Path, mode: u32) -> Result<bool, BackupError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    refuse_non_empty(dir)?;
    if dir.exists() {
        // An existing directory gets the mode a new one would have.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(dir))?;
        return Ok(false);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_err(dir))?;
    Ok(true)
}

/// Refuses a directory that holds anything (an absent one is fine).
fn refuse_non_empty(dir: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(BackupError::Invalid(format!(
                "{} is not empty: refusing to write into it",
                dir.display()
            ))),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Removes what a failed run wrote: the directory if it made it, else its contents.
fn discard(dir: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}
