//! Private PostgreSQL + PostGIS clusters for tests.
//!
//! Why: the PostgreSQL store and the query planner's PostgreSQL dialect are tested against a real
//! server, and a test run must not depend on a system service, a password or a fixed port. A
//! cluster here is `initdb` in a temporary folder, `postgres` listening on 127.0.0.1 on a free port
//! with trust authentication and its unix socket inside that folder. As root (CI), `initdb`
//! refuses to run, so the cluster runs as Debian's `postgres` system user (`setpriv`) and the
//! folder is handed to it.
//!
//! The server never outlives the test process: a small watchdog (`sh`, its own process group)
//! reads a pipe whose only writer is this process; when the process ends — normally, by a panic or
//! by SIGKILL — the kernel closes the pipe, and the watchdog stops the server (immediate
//! shutdown) and removes the folder. `Drop` of a [`Cluster`] does the same and waits for it.
//! (`PR_SET_PDEATHSIG` is not used: it fires when the spawning *thread* ends, and each test runs
//! on its own thread; it would also need `unsafe`, which the workspace forbids.)
//!
//! Replication: [`Cluster::standby`] makes a streaming standby of a cluster (`pg_basebackup`, a
//! folder and port of its own, asynchronous or synchronous), and [`Cluster::stop_immediate`] /
//! [`Cluster::promote`] drive failover drills (the read replica and failover tests).
//!
//! A missing binary is an error naming the path and the Debian packages (`scripts/deps.sh test`):
//! the tests that use a cluster fail, they never skip.

use std::fs;
use std::io::{self, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The client the clusters are driven with, for tests that look inside (`pg_stat_activity`, …).
pub use postgres;

/// The superuser every cluster is created with (`initdb -U`).
pub const SUPERUSER: &str = "postgres";
/// How long a server gets to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Ports taken between choosing and binding are retried this many times.
const PORT_ATTEMPTS: usize = 5;
/// The database fresh databases are copied from (PostGIS already installed in it).
const TEMPLATE: &str = "sk_template_postgis";

/// Why a cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum PgTestError {
    #[error(
        "PostgreSQL binary {0} not found (looked at `pg_config --bindir` and /usr/lib/postgresql/*/bin); \
         install Debian's `postgresql` and `postgresql-postgis` (scripts/deps.sh test)"
    )]
    Missing(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} failed ({status}):\n{output}")]
    Command { what: String, status: String, output: String },
    #[error("the PostgreSQL server in {dir} did not start: {why}\n--- server log ---\n{log}")]
    Start { dir: PathBuf, why: String, log: String },
    #[error("PostgreSQL at {url}: {source}")]
    Sql {
        url: String,
        #[source]
        source: postgres::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PgTestError {
    let what = what.into();
    move |source| PgTestError::Io { what, source }
}

/// A running private cluster. See the module documentation.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    port: u16,
    durable: bool,
    postmaster: Mutex<Child>,
    /// The write end of the watchdog's pipe: dropping it stops the server.
    guard: Mutex<Option<ChildStdin>>,
    watchdog: Mutex<Child>,
    template: Mutex<bool>,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU64 = AtomicU64::new(1);
static NEXT_STANDBY: AtomicU64 = AtomicU64::new(1);

/// How a standby follows its primary ([`Cluster::standby`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// The primary acknowledges commits without waiting for the standby (it may lag).
    Async,
    /// The primary acknowledges a commit only once the standby has it in its WAL.
    Sync,
}

impl Cluster {
    /// One cluster per test process, started on first use, stopped when the process exits.
    /// Panics (failing the test) when it cannot be started.
    pub fn shared() -> &'static Cluster {
        SHARED.get_or_init(|| match Cluster::start(false) {
            Ok(cluster) => cluster,
            Err(e) => panic!("shikong-pgtest: cannot start the shared PostgreSQL cluster: {e}"),
        })
    }

    /// A cluster of its own, stopped on Drop. `durable`: fsync on (benchmarks, crash tests);
    /// otherwise fsync=off for speed. Every cluster can be a replication primary
    /// ([`Cluster::standby`]): initdb's defaults already say `wal_level = replica`, ten WAL
    /// senders, and `trust` for replication connections from loopback.
    pub fn start(durable: bool) -> Result<Cluster, PgTestError> {
        let bin = Self::bin_dir();
        check_tools(&bin)?;
        let as_root = effective_uid()? == 0;
        let partial = Partial::new(as_root)?;
        let data = partial.root.join("data");
        let mut initdb = as_user(as_root, &bin.join("initdb"));
        initdb
            .current_dir(&partial.root)
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8"])
            // Byte order (= code point order, like Rust's `str`), Unicode case mapping.
            .args(["--locale=C", "--lc-ctype=C.UTF-8", "--no-instructions"]);
        if !durable {
            initdb.arg("--no-sync");
        }
        run(&mut initdb, "initdb")?;
        partial.launch(&bin, data, durable, &[])
    }

    /// A streaming standby of this cluster, in a folder of its own on another free port:
    /// `pg_basebackup -R -X stream` from this server, then `postgres` in hot standby (reads
    /// allowed, writes refused) following this one. With [`Replication::Sync`] this cluster
    /// then waits for the standby at every commit (`synchronous_standby_names` naming it,
    /// `synchronous_commit = on` for the superuser's sessions, which every test connection
    /// uses — the command line of a non-durable cluster says `off`, and a role setting beats
    /// it): a commit acknowledged here is in the standby's WAL, so a failover loses none. A
    /// synchronous primary whose standby is down waits at every commit until it is back.
    /// Returns once the standby streams (and, when synchronous, is the synchronous one).
    pub fn standby(&self, mode: Replication) -> Result<Cluster, PgTestError> {
        let bin = Self::bin_dir();
        check_tools(&bin)?;
        let as_root = effective_uid()? == 0;
        let partial = Partial::new(as_root)?;
        let data = partial.root.join("data");
        let mut backup = as_user(as_root, &bin.join("pg_basebackup"));
        backup
            .current_dir(&partial.root)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", SUPERUSER])
            .arg("-D")
            .arg(&data)
            .args(["-R", "-X", "stream", "-c", "fast"]);
        if !self.durable {
            backup.arg("--no-sync");
        }
        run(&mut backup, "pg_basebackup")?;
        let name = format!("sk_standby_{}", NEXT_STANDBY.fetch_add(1, Ordering::Relaxed));
        let conninfo =
            format!("primary_conninfo=host=127.0.0.1 port={} user={SUPERUSER} application_name={name}", self.port);
        let standby = partial.launch(&bin, data, self.durable, &[conninfo.as_str()])?;
        let admin = self.url("postgres");
        let sql = |source| PgTestError::Sql { url: admin.clone(), source };
        let mut client = connect(&admin)?;
        if mode == Replication::Sync {
            // One statement each: ALTER SYSTEM refuses to run in the implicit transaction of a
            // multi-statement query.
            for statement in [
                format!("ALTER SYSTEM SET synchronous_standby_names = '\"{name}\"'"),
                format!("ALTER ROLE {SUPERUSER} SET synchronous_commit = 'on'"),
                "SELECT pg_reload_conf()".to_owned(),
            ] {
                client.batch_execute(&statement).map_err(sql)?;
            }
        }
        let want = if mode == Replication::Sync { "sync" } else { "async" };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let state: Option<String> = client
                .query_opt(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'",
                    &[&name],
                )
                .map_err(sql)?
                .map(|r| r.get(0));
            if state.as_deref() == Some(want) {
                return Ok(standby);
            }
            if Instant::now() >= deadline {
                return Err(PgTestError::Start {
                    dir: standby.root.clone(),
                    why: format!("the standby {name} is not streaming ({want}) after {START_DEADLINE:?}: {state:?}"),
                    log: standby.log(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no checkpoint, clients cut off, as
    /// when its machine fails); the folder stays until Drop.
    pub fn stop_immediate(&self) -> Result<(), PgTestError> {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"], "pg_ctl stop -m immediate")?;
        let _ = self.postmaster.lock().unwrap_or_else(|p| p.into_inner()).wait();
        Ok(())
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`); the folder stays until Drop.
    pub fn stop(&self) -> Result<(), PgTestError> {
        self.pg_ctl(&["stop", "-m", "fast", "-w"], "pg_ctl stop -m fast")?;
        let _ = self.postmaster.lock().unwrap_or_else(|p| p.into_inner()).wait();
        Ok(())
    }

    /// Promotes a standby to a primary (`pg_ctl promote -w`: returns once it accepts writes).
    pub fn promote(&self) -> Result<(), PgTestError> {
        self.pg_ctl(&["promote", "-w", "-t", "60"], "pg_ctl promote")
    }

    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<(), PgTestError> {
        let as_root = effective_uid()? == 0;
        let mut cmd = as_user(as_root, &Self::bin_dir().join("pg_ctl"));
        cmd.current_dir(&self.root).arg("-D").arg(&self.data).args(args);
        run(&mut cmd, what)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The temporary folder holding the data directory, the server log and the unix socket.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// Whether fsync is on (see [`Cluster::start`]).
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// The server's log so far (stdout and stderr of `postgres`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// postgres://…@127.0.0.1:PORT/DB
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// CREATE DATABASE with a fresh unique name, CREATE EXTENSION postgis in it; its URL.
    /// Panics (failing the test) with the server's error when that is impossible.
    pub fn fresh_db(&self) -> String {
        match self.try_fresh_db() {
            Ok(url) => url,
            Err(e) => panic!("shikong-pgtest: cannot create a fresh database: {e}"),
        }
    }

    /// [`Cluster::fresh_db`] returning the error instead of panicking.
    pub fn try_fresh_db(&self) -> Result<String, PgTestError> {
        self.ensure_template()?;
        let name = format!("sk_test_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let admin = self.url("postgres");
        let mut client = connect(&admin)?;
        client
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
            .map_err(|source| PgTestError::Sql { url: admin.clone(), source })?;
        Ok(self.url(&name))
    }

    /// Creates the template database with PostGIS once: copying it is much faster than
    /// `CREATE EXTENSION postgis` in every database.
    fn ensure_template(&self) -> Result<(), PgTestError> {
        let mut ready = self.template.lock().unwrap_or_else(|p| p.into_inner());
        if *ready {
            return Ok(());
        }
        let admin = self.url("postgres");
        let sql = |url: &str| {
            let url = url.to_owned();
            move |source| PgTestError::Sql { url, source }
        };
        connect(&admin)?.batch_execute(&format!("CREATE DATABASE {TEMPLATE}")).map_err(sql(&admin))?;
        let url = self.url(TEMPLATE);
        {
            let mut client = connect(&url)?;
            client.batch_execute("CREATE EXTENSION postgis").map_err(sql(&url))?;
        }
        // The copy needs the template without sessions; ours is gone (CREATE DATABASE waits up to
        // 5 s for a closing backend).
        connect(&admin)?.batch_execute(&format!("ALTER DATABASE {TEMPLATE} IS_TEMPLATE true")).map_err(sql(&admin))?;
        *ready = true;
        Ok(())
    }

    /// The directory holding initdb, pg_ctl, postgres, pg_basebackup: `pg_config --bindir` when
    /// it has them, else the newest /usr/lib/postgresql/<version>/bin.
    pub fn bin_dir() -> PathBuf {
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("initdb").is_file() {
                return dir;
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        match versions.pop() {
            Some((_, bin)) => bin,
            // Nothing installed: a path that names where the binaries were expected; `start`
            // reports it as missing.
            None => PathBuf::from("/usr/lib/postgresql/<version>/bin"),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog stop the server and remove the folder.
        drop(self.guard.lock().unwrap_or_else(|p| p.into_inner()).take());
        let _ = self.postmaster.lock().unwrap_or_else(|p| p.into_inner()).wait();
        let _ = self.watchdog.lock().unwrap_or_else(|p| p.into_inner()).wait();
    }
}

/// A start that has not finished: dropping it makes the watchdog clean the folder up.
struct Partial {
    root: PathBuf,
    as_root: bool,
    guard: Option<ChildStdin>,
    watchdog: Option<Child>,
}

impl Partial {
    /// A new temporary folder (owned by the `postgres` user when running as root) with its
    /// watchdog and an empty server log.
    fn new(as_root: bool) -> Result<Partial, PgTestError> {
        let root = tempfile::Builder::new()
            .prefix("shikong-pg-")
            .tempdir()
            .map_err(io_err("creating the cluster's temporary folder"))?
            .keep();
        // The watchdog first: whatever fails below, dropping `guard` removes the folder.
        let (watchdog, guard) = spawn_watchdog(&root)?;
        let partial = Partial { root, as_root, guard: Some(guard), watchdog: Some(watchdog) };
        let log = partial.root.join("server.log");
        fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
        if as_root {
            run(
                Command::new("chown").arg("-R").arg("postgres:postgres").arg(&partial.root),
                "chown of the cluster folder to the `postgres` system user",
            )?;
        }
        Ok(partial)
    }

    /// Starts `postgres` on `data` on a free port (retrying a port taken meanwhile), with
    /// `extra` settings (`name=value`).
    fn launch(mut self, bin: &Path, data: PathBuf, durable: bool, extra: &[&str]) -> Result<Cluster, PgTestError> {
        let (root, log) = (self.root.clone(), self.root.join("server.log"));
        let mut attempt = 0;
        let (postmaster, port) = loop {
            attempt += 1;
            let port = free_port()?;
            let log_file =
                fs::OpenOptions::new().append(true).open(&log).map_err(io_err(format!("opening {}", log.display())))?;
            let log_err = log_file.try_clone().map_err(io_err("duplicating the log file handle"))?;
            let mut cmd = as_user(self.as_root, &bin.join("postgres"));
            cmd.current_dir(&root)
                .arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .arg("-c")
                .arg("listen_addresses=127.0.0.1")
                .arg("-c")
                .arg(format!("unix_socket_directories={}", root.display()))
                .args(["-c", "max_connections=300", "-c", "logging_collector=off"]);
            if !durable {
                cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
            }
            for setting in extra {
                cmd.arg("-c").arg(setting);
            }
            cmd.stdin(Stdio::null()).stdout(log_file).stderr(log_err).process_group(0);
            let mut child = cmd.spawn().map_err(io_err(format!("starting {}", bin.join("postgres").display())))?;
            match wait_ready(&mut child, port, &root, &log) {
                Ok(()) => break (child, port),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let in_use = matches!(&e, PgTestError::Start { log, .. }
                        if log.contains("could not bind") || log.contains("already in use"));
                    if !(in_use && attempt < PORT_ATTEMPTS) {
                        return Err(e);
                    }
                }
            }
        };
        let guard = self.guard.take();
        let watchdog = self.take_watchdog();
        Ok(Cluster {
            root,
            data,
            port,
            durable,
            postmaster: Mutex::new(postmaster),
            guard: Mutex::new(guard),
            watchdog: Mutex::new(watchdog),
            template: Mutex::new(false),
        })
    }

    fn take_watchdog(&mut self) -> Child {
        match self.watchdog.take() {
            Some(child) => child,
            None => unreachable!("the watchdog is taken once"),
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.wait();
        }
    }
}

/// The tools a cluster needs, or which one is missing.
fn check_tools(bin: &Path) -> Result<(), PgTestError> {
    for tool in ["initdb", "postgres", "pg_ctl", "pg_basebackup"] {
        let path = bin.join(tool);
        if !path.is_file() {
            return Err(PgTestError::Missing(path));
        }
    }
    Ok(())
}

/// The watchdog: waits for EOF on its stdin (this process gone or the cluster dropped), then
/// stops the server recorded in `postmaster.pid` (SIGQUIT: immediate shutdown; SIGKILL after
/// 10 s) and removes the folder. Its own process group, so a terminal's Ctrl-C reaches only the
/// test process, whose end then triggers the clean-up.
fn spawn_watchdog(root: &Path) -> Result<(Child, ChildStdin), PgTestError> {
    const SCRIPT: &str = r#"
cat >/dev/null
pidfile="$1/data/postmaster.pid"
pid=$(head -n 1 "$pidfile" 2>/dev/null)
if [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = postgres ]; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  while [ -e "$pidfile" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  [ "$(cat /proc/$pid/comm 2>/dev/null)" = postgres ] && kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$1"
"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("shikong-pgtest-watchdog")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io_err("starting the cluster's watchdog (sh)"))?;
    match child.stdin.take() {
        Some(stdin) => Ok((child, stdin)),
        None => unreachable!("stdin was piped"),
    }
}

/// `program` run as this user, or as the `postgres` system user when this process is root
/// (initdb and postgres refuse to run as root).
fn as_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), PgTestError> {
    let out = cmd.stdin(Stdio::null()).output().map_err(io_err(format!("running {what}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(PgTestError::Command {
        what: what.to_owned(),
        status: out.status.to_string(),
        output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    })
}

/// The effective user id, from /proc/self/status (no libc: the workspace forbids `unsafe`).
fn effective_uid() -> Result<u32, PgTestError> {
    let status = fs::read_to_string("/proc/self/status").map_err(io_err("reading /proc/self/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| PgTestError::Io {
            what: "reading the effective uid".into(),
            source: io::Error::other("no `Uid:` line in /proc/self/status"),
        })
}

fn free_port() -> Result<u16, PgTestError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err("finding a free loopback port"))?;
    let port = listener.local_addr().map_err(io_err("finding a free loopback port"))?.port();
    Ok(port)
}

fn connect(url: &str) -> Result<postgres::Client, PgTestError> {
    postgres::Client::connect(url, postgres::NoTls).map_err(|source| PgTestError::Sql { url: url.to_owned(), source })
}

/// Waits until the server accepts a connection, the server exits, or the deadline passes.
fn wait_ready(child: &mut Child, port: u16, root: &Path, log: &Path) -> Result<(), PgTestError> {
    let url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + START_DEADLINE;
    let failed = |why: String| PgTestError::Start { dir: root.to_owned(), why, log: read_log(log) };
    loop {
        if let Some(status) = child.try_wait().map_err(io_err("waiting for the server process"))? {
            return Err(failed(format!("the server exited ({status})")));
        }
        match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(failed(format!("no connection within {START_DEADLINE:?}: {e}")));
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn read_log(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

#[cfg(test)]
mod tests;
