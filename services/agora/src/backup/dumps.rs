//! Databases in and out with PostgreSQL's own tools: `pg_dump` in the custom format
//! (compressed, restorable table by table, readable by any newer `pg_restore`),
//! streamed into the archive, and `pg_restore` fed from it. A logical dump, not a
//! physical copy: each service's database is its own dump, which a server of another
//! version restores, and `agora up`'s migrations carry forward.

use super::BackupError;
use super::archive::Archive;
use super::manifest::FileEntry;
use reqwest::Url;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A server and the client tools to use with it.
pub struct Server {
    bin_dir: PathBuf,
    /// The server's URL without its password.
    url: Url,
    password: Option<String>,
}

impl Server {
    /// The server at `url` (any database), with the tools in `bin_dir`.
    pub fn new(url: &str, bin_dir: PathBuf) -> Result<Self, BackupError> {
        let mut url =
            Url::parse(url).map_err(|e| BackupError::Invalid(format!("the database URL: {e}")))?;
        // The password goes by the environment, never on a command line `ps` shows.
        let password = url.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        let _ = url.set_password(None);
        Ok(Self {
            bin_dir,
            url,
            password,
        })
    }

    /// The database the URL names, if it names one.
    pub fn database(&self) -> Option<String> {
        let name = self.url.path().trim_start_matches('/');
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        (!name.is_empty()).then(|| name.into_owned())
    }

    fn command(&self, program: &str, database: &str) -> Command {
        let mut url = self.url.clone();
        url.set_path(database);
        let mut cmd = Command::new(self.tool(program));
        cmd.arg(format!("--dbname={url}"))
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Without one in the URL, `PGPASSWORD` of the environment applies (a Job's).
        if let Some(password) = &self.password {
            cmd.env("PGPASSWORD", password);
        }
        cmd
    }

    /// The client tool of the server's own version: beside the server binaries found
    /// (following a link to where the package put them), else on `PATH`.
    fn tool(&self, program: &str) -> PathBuf {
        if self.bin_dir.as_os_str().is_empty() {
            return PathBuf::from(program);
        }
        let beside = self.bin_dir.join(program);
        if beside.is_file() {
            return beside;
        }
        std::fs::canonicalize(self.bin_dir.join("pg_ctl"))
            .ok()
            .and_then(|real| Some(real.parent()?.join(program)))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(program))
    }

    /// One value from a query (`psql`, unaligned, tuples only).
    pub async fn query(&self, database: &str, sql: &str) -> Result<String, BackupError> {
        let output = self
            .command("psql", database)
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .await
            .map_err(|e| tool_missing("psql", e))?;
        if !output.status.success() {
            return Err(BackupError::Tool {
                command: format!("psql ({database})"),
                output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The newest applied migration of a service's database, if it has any.
    pub async fn migration(&self, database: &str) -> Result<Option<String>, BackupError> {
        let version = self
            .query(
                database,
                "SELECT max(version) FROM __diesel_schema_migrations",
            )
            .await?;
        Ok(Some(version).filter(|v| !v.is_empty()))
    }

    /// Dumps `database` into `name` of `archive`, streamed.
    pub async fn dump(
        &self,
        database: &str,
        archive: &Archive,
        name: &str,
    ) -> Result<FileEntry, BackupError> {
        let mut child = self
            .command("pg_dump", database)
            .args(["--format=custom", "--no-password"])
            .spawn()
            .map_err(|e| tool_missing("pg_dump", e))?;
        let errors = collect_stderr(&mut child);
        let stdout = child.stdout.take().ok_or_else(|| BackupError::Tool {
            command: "pg_dump".into(),
            output: "no output stream".into(),
        })?;
        let written = archive.write_from(name, stdout).await;
        if written.is_err() {
            let _ = child.kill().await;
        }
        let status = child.wait().await;
        let stderr = errors.await.unwrap_or_default();
        match (written, status) {
            // The store's failure is the story (pg_dump then dies of a broken pipe).
            (Err(err), _) => Err(err),
            (Ok(entry), Ok(status)) if status.success() => Ok(entry),
            (Ok(_), Ok(_)) => Err(BackupError::Tool {
                command: format!("pg_dump ({database})"),
                output: stderr,
            }),
            (Ok(_), Err(e)) => Err(tool_missing("pg_dump", e)),
        }
    }

    /// Restores `entry` of `archive` into the empty `database`, in one transaction
    /// (a failure leaves it empty), checking the bytes against the manifest.
    pub async fn restore(
        &self,
        database: &str,
        archive: &Archive,
        entry: &FileEntry,
    ) -> Result<(), BackupError> {
        let mut child = self
            .command("pg_restore", database)
            .args([
                "--no-password",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| tool_missing("pg_restore", e))?;
        let errors = collect_stderr(&mut child);
        let mut stdin = child.stdin.take().ok_or_else(|| BackupError::Tool {
            command: "pg_restore".into(),
            output: "no input stream".into(),
        })?;
        let fed = archive.read_into(entry, &mut stdin).await;
        if fed.is_err() {
            // Killed before its input ends: its transaction never commits.
            let _ = child.kill().await;
        }
        drop(stdin);
        let status = child.wait().await;
        let stderr = errors.await.unwrap_or_default();
        match (fed, status) {
            // Bytes that are not the manifest's, or a store that failed: that is the
            // story, not the kill.
            (Err(err @ (BackupError::Corrupt { .. } | BackupError::Store { .. })), _) => Err(err),
            // Otherwise its own complaint says more than the broken pipe it left.
            (_, Ok(status)) if !status.success() => Err(BackupError::Tool {
                command: format!("pg_restore ({database})"),
                output: stderr,
            }),
            (fed, Ok(_)) => fed,
            (_, Err(e)) => Err(tool_missing("pg_restore", e)),
        }
    }
}

/// Reads a child's stderr as it comes (a full pipe would stall it).
fn collect_stderr(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text).await;
        }
        text.trim().to_owned()
    })
}

fn tool_missing(program: &str, error: std::io::Error) -> BackupError {
    BackupError::Tool {
        command: program.to_owned(),
        output: format!(
            "{error} (PostgreSQL's client tools are needed: the same package as the server)"
        ),
    }
}
