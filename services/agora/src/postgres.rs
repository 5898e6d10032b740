//! A PostgreSQL cluster under the state dir, run with the machine's own binaries.
//!
//! PostgreSQL refuses to run as root, so when `agora` runs as root the cluster is owned
//! by, and every PostgreSQL command runs as, the unprivileged `postgres` user.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What can go wrong with the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// No PostgreSQL server binaries on this machine.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under \
         /usr/lib/postgresql/*/bin. Install them, e.g. `sudo apt-get install postgresql` \
         (Debian/Ubuntu), `brew install postgresql` (macOS), or point Agora at an existing \
         server with --database-url / AGORA_DATABASE_URL"
    )]
    NotInstalled,
    /// Running as root but there is no user to run PostgreSQL as.
    #[error(
        "running as root, and PostgreSQL refuses to: create a `postgres` user \
         (`useradd --system postgres`) or run agora as a normal user"
    )]
    NoUnprivilegedUser,
    /// A file-system step failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PostgreSQL command failed.
    #[error("`{command}` failed: {output}{hint}")]
    Command {
        /// Which.
        command: String,
        /// Its stderr/stdout.
        output: String,
        /// What to try.
        hint: &'static str,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PostgresError + '_ {
    move |source| PostgresError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Finds the directory holding `initdb` and `pg_ctl`: PATH first, then the newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn find_bin_dir() -> Result<PathBuf, PostgresError> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(PostgresError::NotInstalled)
}

/// A user id and group id to run PostgreSQL as.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// When running as root: the `postgres` user (or `nobody` as a last resort).
fn unprivileged_user() -> Result<Option<RunAs>, PostgresError> {
    use std::os::unix::fs::MetadataExt;
    // `/proc/self` is owned by the effective user; no libc call needed.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for wanted in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if let [name, _, uid, gid, ..] = fields.as_slice()
                && *name == wanted
                && let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse())
            {
                return Ok(Some(RunAs { uid, gid }));
            }
        }
    }
    Err(PostgresError::NoUnprivilegedUser)
}

/// A running local cluster.
pub struct LocalPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    /// The superuser's password (kept in `<state-dir>/postgres/superuser-password`).
    password: String,
}

impl LocalPostgres {
    /// Creates the cluster on first use, then starts it on a free loopback port.
    pub fn start(state_dir: &Path) -> Result<Self, PostgresError> {
        let bin_dir = find_bin_dir()?;
        let run_as = unprivileged_user()?;
        let root = state_dir.join("postgres");
        let data_dir = root.join("data");
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        if let Some(user) = run_as {
            chown_tree(&root, user)?;
        }
        // A generated password, not `trust`: with trust on 127.0.0.1 every local OS user
        // would be the database superuser.
        let password_file = root.join("superuser-password");
        let password = match std::fs::read_to_string(&password_file) {
            Ok(p) if !p.trim().is_empty() => p.trim().to_owned(),
            _ => {
                let p = generate_password().map_err(io_err(&password_file))?;
                write_private(&password_file, p.as_bytes()).map_err(io_err(&password_file))?;
                p
            }
        };
        let pg = Self {
            bin_dir,
            data_dir,
            run_as,
            port: 0,
            password,
        };
        if !pg.data_dir.join("PG_VERSION").is_file() {
            tracing::info!(dir = %pg.data_dir.display(), "creating the PostgreSQL cluster");
            // initdb reads the password from a file it (as `postgres`) can read.
            let pwfile = root.join("initdb-password");
            write_private(&pwfile, pg.password.as_bytes()).map_err(io_err(&pwfile))?;
            if let Some(user) = run_as {
                std::os::unix::fs::chown(&pwfile, Some(user.uid), Some(user.gid))
                    .map_err(io_err(&pwfile))?;
            }
            let created = pg.run(
                "initdb",
                &[
                    "-D".as_ref(),
                    pg.data_dir.as_os_str(),
                    "-U".as_ref(),
                    "postgres".as_ref(),
                    "-A".as_ref(),
                    "scram-sha-256".as_ref(),
                    "--pwfile".as_ref(),
                    pwfile.as_os_str(),
                    "-E".as_ref(),
                    "UTF8".as_ref(),
                    "--locale=C".as_ref(),
                ],
                "; when running as root, the state dir must be reachable by the `postgres` \
                 user (choose --state-dir outside /root)",
            );
            let _ = std::fs::remove_file(&pwfile);
            created?;
        } else {
            // A cluster still running here was orphaned by an agora that was killed: the
            // caller holds the state-dir lock, so nothing else can be using it.
            if pg.pg_ctl_quiet(&["status"]) {
                tracing::warn!("stopping an orphaned PostgreSQL left by a previous run");
                pg.stop()?;
            }
            pg.upgrade_trust_cluster()?;
        }
        let port = free_port().map_err(io_err(state_dir))?;
        let pg = Self { port, ..pg };
        let log = root.join("postgres.log");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200"
        );
        pg.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                pg.data_dir.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
            "; see the log under <state-dir>/postgres/postgres.log",
        )?;
        tracing::info!(port, "PostgreSQL started");
        Ok(pg)
    }

    /// Where the server and client binaries are.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Server-level URL (database `postgres`), with the superuser's password.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// Clusters made by earlier versions trusted every local connection: give the
    /// superuser the password and switch authentication to scram-sha-256 (offline,
    /// in single-user mode, before the server starts).
    fn upgrade_trust_cluster(&self) -> Result<(), PostgresError> {
        let hba_path = self.data_dir.join("pg_hba.conf");
        let hba = std::fs::read_to_string(&hba_path).map_err(io_err(&hba_path))?;
        let trusting = |line: &str| {
            !line.trim_start().starts_with('#') && line.split_whitespace().last() == Some("trust")
        };
        if !hba.lines().any(trusting) {
            return Ok(());
        }
        tracing::info!("switching the local cluster from trust to password authentication");
        let mut single = self
            .command("postgres")
            .args(["--single", "-D"])
            .arg(&self.data_dir)
            .arg("postgres")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(io_err(&self.data_dir))?;
        if let Some(stdin) = single.stdin.as_mut() {
            use std::io::Write;
            writeln!(stdin, "ALTER USER postgres PASSWORD '{}';", self.password)
                .map_err(io_err(&self.data_dir))?;
        }
        let status = single.wait().map_err(io_err(&self.data_dir))?;
        if !status.success() {
            return Err(PostgresError::Command {
                command: "postgres --single".into(),
                output: status.to_string(),
                hint: "",
            });
        }
        let upgraded: String = hba
            .lines()
            .map(|line| {
                if trusting(line) {
                    format!(
                        "{}scram-sha-256\n",
                        line.trim_end().trim_end_matches("trust")
                    )
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(&hba_path, upgraded).map_err(io_err(&hba_path))
    }

    /// Stops the cluster (fast shutdown: sessions are ended, data is flushed).
    pub fn stop(&self) -> Result<(), PostgresError> {
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data_dir.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
            "",
        )
        .map(|_| ())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        if let Some(user) = self.run_as {
            cmd.uid(user.uid).gid(user.gid).current_dir("/");
        }
        cmd
    }

    fn pg_ctl_quiet(&self, args: &[&str]) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn run(
        &self,
        program: &str,
        args: &[&std::ffi::OsStr],
        hint: &'static str,
    ) -> Result<Output, PostgresError> {
        let output =
            self.command(program)
                .args(args)
                .output()
                .map_err(|e| PostgresError::Command {
                    command: program.to_owned(),
                    output: e.to_string(),
                    hint,
                })?;
        if output.status.success() {
            Ok(output)
        } else {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            Err(PostgresError::Command {
                command: program.to_owned(),
                output: text.trim().to_owned(),
                hint,
            })
        }
    }
}

/// The URL of the cluster an `agora up` runs on `state_dir` (found by the port in
/// its `postmaster.pid`), if one runs there.
pub fn running_url(state_dir: &Path) -> Result<Option<String>, PostgresError> {
    let root = state_dir.join("postgres");
    let pid_file = root.join("data").join("postmaster.pid");
    let pid = match std::fs::read_to_string(&pid_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&pid_file)(e)),
    };
    // Line 4 of postmaster.pid is the port.
    let Some(port) = pid
        .lines()
        .nth(3)
        .and_then(|l| l.trim().parse::<u16>().ok())
    else {
        return Ok(None);
    };
    let password_file = root.join("superuser-password");
    let password = std::fs::read_to_string(&password_file).map_err(io_err(&password_file))?;
    Ok(Some(format!(
        "postgres://postgres:{}@127.0.0.1:{port}/postgres",
        password.trim()
    )))
}

fn chown_tree(dir: &Path, user: RunAs) -> Result<(), PostgresError> {
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io_err(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_dir() && !path.is_symlink() {
            chown_tree(&path, user)?;
        } else {
            std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid))
                .map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// 32 random characters of `[A-Za-z0-9]` (URL-safe, so it goes into the URL as is).
fn generate_password() -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
    Ok(raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// Writes a file only its owner may read (replacing any old one).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

fn free_port() -> std::io::Result<u16> {
    TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()
        .map(|a| a.port())
}
