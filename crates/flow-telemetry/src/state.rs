//! What a monitor remembers between processes: the [`MonitorState`] and the [`StateStore`]
//! seam that loads and saves it.
//!
//! The state holds the poller's cursor and ETag ([`PollerState`]), the detectors' full state
//! (the serialized [`Monitor`]: windows, baselines, EWMA and CUSUM accumulators, open alerts),
//! the workflow names resolved to ids, and the issue [`Ledger`] (fingerprint → issue number,
//! state, what was last said and when, writes still to do).
//!
//! Backends:
//! - [`FileStateStore`]: one JSON file, written atomically (write to a temporary file in the
//!   same directory, then rename) under an advisory lock, so the revision check holds across
//!   processes sharing the file. A file of an unknown format version or that does not parse
//!   is an error naming the file, never a silent fresh start; [`StateStore::reset`] starts
//!   over on purpose.
//! - [`RedisStateStore`]: one Redis hash per key (`rev`, `data`), updated by a Lua script that
//!   checks the revision the state was loaded at (compare-and-set), so two monitors sharing
//!   the key never lose each other's writes: the second save gets
//!   [`ErrorKind::StateConflict`] and the caller reloads.
//! - [`MemoryStateStore`]: in-process, for tests and long-running services with one replica.
//!
//! Every save bumps [`MonitorState::revision`]; a save is refused when the stored revision is
//! no longer the one the state was loaded at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::Ledger;
use crate::monitor::Monitor;
pub use crate::source::WorkflowRef;
use crate::source::sync::PollerState;

/// The format version this build writes and reads. Older files are read (missing fields take
/// their defaults); newer ones are refused.
pub const STATE_FORMAT: u32 = 1;

/// Everything a monitor must remember between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorState {
    /// The format version ([`STATE_FORMAT`] when written by this build).
    pub format: u32,
    /// Bumped by every save; the compare-and-set token of [`StateStore::save`].
    pub revision: u64,
    /// When it was last saved, unix ms.
    pub saved_at_ms: i64,
    /// A hash of the rules and scope the detectors were built with: when they change, the
    /// detectors start learning again (the ledger is kept).
    pub rules_hash: String,
    /// The incremental poller's position.
    pub poller: PollerState,
    /// The highest `run_number` observed per workflow key, to tell whether an event's run
    /// follows the last one observed (no gap to fill).
    pub run_numbers: BTreeMap<String, u64>,
    /// The detectors.
    pub monitor: Option<Monitor>,
    /// Workflow references resolved from names, by what the user typed.
    pub workflows: BTreeMap<String, WorkflowRef>,
    /// The issue ledger.
    pub ledger: Ledger,
}

impl Default for MonitorState {
    fn default() -> Self {
        Self {
            format: STATE_FORMAT,
            revision: 0,
            saved_at_ms: 0,
            rules_hash: String::new(),
            poller: PollerState::default(),
            run_numbers: BTreeMap::new(),
            monitor: None,
            workflows: BTreeMap::new(),
            ledger: Ledger::default(),
        }
    }
}

impl MonitorState {
    /// Serializes to JSON with this build's format version.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] if a value cannot be serialized (a non-finite number).
    pub fn to_json(&self) -> Result<String> {
        let mut s = self.clone();
        s.format = STATE_FORMAT;
        serde_json::to_string(&s).map_err(|e| Error::parse("monitor state", e))
    }

    /// Parses a state read from `origin` (a path or a Redis key, named in errors).
    ///
    /// # Errors
    /// [`ErrorKind::State`] naming `origin` when the text is not a monitor state or was written
    /// by a newer format.
    pub fn from_json(origin: &str, text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::state(
                origin,
                format!("not a monitor state ({e}); remove it or start over with --reset-state"),
            )
        })?;
        let format = value
            .get("format")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                Error::state(
                    origin,
                    "not a monitor state (no `format` version); remove it or start over with --reset-state",
                )
            })?;
        if format == 0 || format > u64::from(STATE_FORMAT) {
            return Err(Error::state(
                origin,
                format!(
                    "format version {format} is not supported (this build reads 1 to {STATE_FORMAT}); \
                     upgrade flow, or start over with --reset-state"
                ),
            ));
        }
        serde_json::from_value(value).map_err(|e| {
            Error::state(
                origin,
                format!("a corrupt monitor state ({e}); start over with --reset-state"),
            )
        })
    }
}

/// Loads and saves a [`MonitorState`]. Object-safe: held as `Arc<dyn StateStore>`.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The saved state, `None` when nothing was saved yet.
    ///
    /// # Errors
    /// [`ErrorKind::State`] naming the file or key when it cannot be read or parsed.
    async fn load(&self) -> Result<Option<MonitorState>>;

    /// Saves `state` if the stored revision is still `state.revision` (the one it was loaded
    /// at; 0 for none), and returns the new revision.
    ///
    /// # Errors
    /// [`ErrorKind::StateConflict`] when another monitor saved meanwhile (reload and redo);
    /// [`ErrorKind::State`] when it cannot be written.
    async fn save(&self, state: &MonitorState) -> Result<u64>;

    /// Forgets the saved state.
    ///
    /// # Errors
    /// [`ErrorKind::State`] when it cannot be removed.
    async fn reset(&self) -> Result<()>;

    /// Where the state lives, for messages (`state.json`, `redis://host/…#key`), no secrets.
    fn describe(&self) -> String;
}

/// An in-process store.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<Option<String>>,
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn stored_revision(text: Option<&str>) -> u64 {
    text.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("revision").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

#[async_trait::async_trait]
impl StateStore for MemoryStateStore {
    async fn load(&self) -> Result<Option<MonitorState>> {
        let text = self.inner.lock().map(|g| g.clone()).unwrap_or_default();
        text.map(|t| MonitorState::from_json("memory", &t))
            .transpose()
    }

    async fn save(&self, state: &MonitorState) -> Result<u64> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| Error::state("memory", "poisoned lock"))?;
        let current = stored_revision(g.as_deref());
        if current != state.revision {
            return Err(Error::new(ErrorKind::StateConflict {
                origin: "memory".into(),
                expected: state.revision,
                found: current,
            }));
        }
        let mut next = state.clone();
        next.revision = current + 1;
        *g = Some(next.to_json()?);
        Ok(next.revision)
    }

    async fn reset(&self) -> Result<()> {
        if let Ok(mut g) = self.inner.lock() {
            *g = None;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// A JSON file, written atomically and compare-and-set across processes.
///
/// A save holds an exclusive advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
/// `std::fs::File::lock`) on a sibling lock file, `.{name}.lock`, while it reads the stored
/// revision, compares it, writes a temporary file and renames it over the state: two
/// processes (or two store instances) saving the same file are serialized, so exactly one
/// save wins per revision and the other gets [`ErrorKind::StateConflict`]. The lock file
/// is never removed (removing it would let a waiter and a newcomer lock different files); the
/// lock ends with its holder, even one that crashed. Loads take no lock: the rename replaces
/// the file in one step. Network file systems without `flock` (some NFS set-ups) lose the
/// guarantee; use the Redis store there.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    path: PathBuf,
}

impl FileStateStore {
    /// A store at `path` (its directory is created on save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn origin(&self) -> String {
        self.path.display().to_string()
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned())
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The lock file every save and reset of this path holds.
    pub fn lock_path(&self) -> PathBuf {
        self.dir().join(format!(".{}.lock", self.file_name()))
    }

    async fn read(&self) -> Result<Option<String>> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => self.text(bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::state(self.origin(), format!("cannot read: {e}"))),
        }
    }

    fn text(&self, bytes: Vec<u8>) -> Result<String> {
        String::from_utf8(bytes).map_err(|_| {
            Error::state(
                self.origin(),
                "not a monitor state (not UTF-8 text); remove it or start over with --reset-state",
            )
        })
    }

    /// Runs `f` holding the exclusive lock of [`FileStateStore::lock_path`] (creating the
    /// directory and the lock file). Blocking: called on tokio's blocking pool.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let io = |what: &str, e: std::io::Error| {
            Error::state(self.origin(), format!("cannot {what}: {e}"))
        };
        std::fs::create_dir_all(self.dir()).map_err(|e| io("write", e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| io("open the lock file", e))?;
        lock.lock().map_err(|e| io("lock", e))?;
        let out = f();
        // Closing the file releases the lock as well; unlocking first says so.
        let _ = lock.unlock();
        out
    }

    /// The compare-and-set under the lock: `json` is the state at `expected + 1`.
    fn save_blocking(&self, expected: u64, json: &str) -> Result<u64> {
        self.locked(|| {
            let current = match std::fs::read(&self.path) {
                // An unreadable file is refused at load; here only its revision matters.
                Ok(bytes) => stored_revision(Some(&self.text(bytes)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(Error::state(self.origin(), format!("cannot read: {e}"))),
            };
            if current != expected {
                return Err(Error::new(ErrorKind::StateConflict {
                    origin: self.origin(),
                    expected,
                    found: current,
                }));
            }
            let io = |e: std::io::Error| Error::state(self.origin(), format!("cannot write: {e}"));
            let tmp = self
                .dir()
                .join(format!(".{}.{}.tmp", self.file_name(), std::process::id()));
            let written = std::fs::File::create(&tmp).and_then(|mut f| {
                std::io::Write::write_all(&mut f, json.as_bytes())?;
                f.sync_all()
            });
            if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
                let _ = std::fs::remove_file(&tmp);
                return Err(io(e));
            }
            Ok(expected + 1)
        })
    }

    /// Runs a blocking step of this store on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::state(self.origin(), format!("the file task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl StateStore for FileStateStore {
    async fn load(&self) -> Result<Option<MonitorState>> {
        match self.read().await? {
            Some(t) => MonitorState::from_json(&self.origin(), &t).map(Some),
            None => Ok(None),
        }
    }

    async fn save(&self, state: &MonitorState) -> Result<u64> {
        let expected = state.revision;
        let mut next = state.clone();
        next.revision = expected + 1;
        let json = next.to_json()?;
        self.blocking(move |store| store.save_blocking(expected, &json))
            .await
    }

    async fn reset(&self) -> Result<()> {
        if !tokio::fs::try_exists(self.dir()).await.unwrap_or(true) {
            return Ok(());
        }
        self.blocking(|store| {
            store.locked(|| match std::fs::remove_file(&store.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::state(store.origin(), format!("cannot remove: {e}"))),
            })
        })
        .await
    }

    fn describe(&self) -> String {
        self.origin()
    }
}

/// Compare-and-set: writes `data` at revision `ARGV[2]` only if the stored revision is `ARGV[1]`
/// and, when fenced (`KEYS[2]` given), only while the lease `KEYS[2]` still holds the fencing
/// token `ARGV[4]`. Answers `{"ok", new}`, `{"conflict", stored}` or `{"lease", 0}`.
const CAS_SCRIPT: &str = r"
if KEYS[2] and redis.call('GET', KEYS[2]) ~= ARGV[4] then return {'lease', 0} end
local cur = redis.call('HGET', KEYS[1], 'rev')
if not cur then cur = '0' end
if cur ~= ARGV[1] then return {'conflict', tonumber(cur)} end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'data', ARGV[3])
return {'ok', tonumber(ARGV[2])}
";

/// The lease a fenced [`RedisStateStore`] saves under: its key and the holder's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The repository the lease is for, `owner/name` (named in errors).
    pub repository: String,
    /// The Redis key of the lease.
    pub key: String,
    /// The fencing token the holder was given.
    pub token: u64,
}

/// A Redis hash `{rev, data}` under one key, shared by runners and service replicas.
#[derive(Clone)]
pub struct RedisStateStore {
    conn: redis::aio::ConnectionManager,
    key: String,
    shown: String,
    fence: Option<Fence>,
}

impl std::fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("at", &self.shown)
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

/// `redis://host:port/db` with any password removed, for messages.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("[redacted]"));
            }
            u.to_string()
        }
        Err(_) => "redis://[invalid url]".into(),
    }
}

impl RedisStateStore {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`) and stores under `key`.
    ///
    /// # Errors
    /// [`ErrorKind::State`] when the URL is invalid or the server unreachable.
    pub async fn connect(url: &str, key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let shown = format!("{}#{key}", redacted(url));
        let conn = connect_redis(url, &shown).await?;
        Ok(Self::from_connection(conn, key, shown))
    }

    /// A store on an open connection (shared with other users of the same server).
    pub(crate) fn from_connection(
        conn: redis::aio::ConnectionManager,
        key: String,
        shown: String,
    ) -> Self {
        Self {
            conn,
            key,
            shown,
            fence: None,
        }
    }

    /// The same store, saving only while `fence` is held: once the lease has expired or passed
    /// to another holder, [`StateStore::save`] fails with [`ErrorKind::LeaseLost`] and writes
    /// nothing, so a paused or partitioned replica cannot overwrite its successor's state.
    #[must_use]
    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }
}

/// Opens a connection manager (it reconnects by itself) to `url`; `shown` names it in errors.
///
/// # Errors
/// [`ErrorKind::State`] when the URL is invalid or the server unreachable.
pub(crate) async fn connect_redis(url: &str, shown: &str) -> Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)
        .map_err(|e| Error::state(shown, format!("invalid Redis URL: {e}")))?;
    redis::aio::ConnectionManager::new(client)
        .await
        .map_err(|e| Error::state(shown, format!("cannot connect: {e}")))
}

#[async_trait::async_trait]
impl StateStore for RedisStateStore {
    async fn load(&self) -> Result<Option<MonitorState>> {
        let mut conn = self.conn.clone();
        let data: Option<String> = redis::cmd("HGET")
            .arg(&self.key)
            .arg("data")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::state(&self.shown, format!("cannot read: {e}")))?;
        data.map(|t| MonitorState::from_json(&self.shown, &t))
            .transpose()
    }

    async fn save(&self, state: &MonitorState) -> Result<u64> {
        let mut next = state.clone();
        next.revision = state.revision + 1;
        let json = next.to_json()?;
        let mut conn = self.conn.clone();
        let cas = redis::Script::new(CAS_SCRIPT);
        let mut script = cas.prepare_invoke();
        script.key(&self.key);
        if let Some(f) = &self.fence {
            script.key(&f.key);
        }
        script
            .arg(state.revision.to_string())
            .arg(next.revision.to_string())
            .arg(json)
            .arg(self.fence.as_ref().map_or(0, |f| f.token).to_string());
        let (answer, n): (String, i64) = script
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::state(&self.shown, format!("cannot write: {e}")))?;
        match answer.as_str() {
            "ok" => Ok(next.revision),
            "conflict" => Err(Error::new(ErrorKind::StateConflict {
                origin: self.shown.clone(),
                expected: state.revision,
                found: u64::try_from(n).unwrap_or(0),
            })),
            _ => Err(Error::new(ErrorKind::LeaseLost {
                repository: self
                    .fence
                    .as_ref()
                    .map_or_else(|| self.shown.clone(), |f| f.repository.clone()),
            })),
        }
    }

    async fn reset(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::state(&self.shown, format!("cannot remove: {e}")))
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

/// Opens the store `spec` names: `redis://…` or `rediss://…` (key `key`), else a file path.
///
/// # Errors
/// As [`RedisStateStore::connect`].
pub async fn open_store(spec: &str, key: &str) -> Result<std::sync::Arc<dyn StateStore>> {
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        Ok(std::sync::Arc::new(
            RedisStateStore::connect(spec, key).await?,
        ))
    } else {
        Ok(std::sync::Arc::new(FileStateStore::new(spec)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn file_round_trip_bumps_the_revision_and_refuses_stale_saves() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path().join("sub/state.json"));
        assert!(store.load().await.unwrap().is_none());
        let mut s = MonitorState::default();
        s.poller.last_seen = Some(crate::RunId(7));
        assert_eq!(store.save(&s).await.unwrap(), 1);
        let loaded = store.load().await.unwrap().unwrap();
        assert_eq!(
            (loaded.revision, loaded.poller.last_seen),
            (1, Some(crate::RunId(7)))
        );
        // `s` still says revision 0: another monitor saved meanwhile.
        let e = store.save(&s).await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::StateConflict { found: 1, .. }),
            "{e}"
        );
        assert_eq!(store.save(&loaded).await.unwrap(), 2);
        store.reset().await.unwrap();
        assert!(store.load().await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn separate_stores_racing_on_one_file_win_once_per_revision() {
        const CONTENDERS: u64 = 6;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for round in 0..25u64 {
            // Every contender loads revision `round`, then all save at once.
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CONTENDERS as usize));
            let tasks: Vec<_> = (0..CONTENDERS)
                .map(|i| {
                    let store = FileStateStore::new(&path);
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        let mut s = store.load().await.unwrap().unwrap_or_default();
                        assert_eq!(s.revision, round);
                        s.poller.last_seen = Some(crate::RunId(round * 100 + i));
                        barrier.wait().await;
                        (i, store.save(&s).await)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    (i, Ok(rev)) => {
                        assert_eq!(rev, round + 1);
                        winners.push(i);
                    }
                    (_, Err(e)) => assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::StateConflict { expected, found, .. }
                                if *expected == round && *found == round + 1
                        ),
                        "{e}"
                    ),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            let stored = FileStateStore::new(&path).load().await.unwrap().unwrap();
            assert_eq!(
                (stored.revision, stored.poller.last_seen),
                (round + 1, Some(crate::RunId(round * 100 + winners[0]))),
                "the file holds the winner's state"
            );
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".state.json.lock", "state.json"],
            "no temporary left"
        );
    }

    #[tokio::test]
    async fn garbage_and_newer_formats_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = FileStateStore::new(&path);
        for (bytes, want) in [
            (b"\x00\xffgarbage".to_vec(), "not a monitor state"),
            (b"{\"hello\": 1}".to_vec(), "no `format` version"),
            (
                b"{\"format\": 99}".to_vec(),
                "format version 99 is not supported",
            ),
            (b"{\"format\": 1, \"poller\": 3}".to_vec(), "corrupt"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let e = store.load().await.unwrap_err().to_string();
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(want), "{e}");
        }
    }

    #[tokio::test]
    async fn a_monitor_survives_a_round_trip_with_its_detectors() {
        use crate::generator::{GeneratorConfig, generate};
        let h = generate(&GeneratorConfig {
            runs: 400,
            ..GeneratorConfig::default()
        });
        let (first, rest) = h.runs.split_at(250);
        let mut whole = Monitor::new(crate::Rules::default());
        let mut part = Monitor::new(crate::Rules::default());
        for r in first {
            whole.observe(r);
            part.observe(r);
        }
        let state = MonitorState {
            monitor: Some(part),
            ..MonitorState::default()
        };
        let json = state.to_json().unwrap();
        let mut resumed = MonitorState::from_json("t", &json)
            .unwrap()
            .monitor
            .unwrap();
        for r in rest {
            assert_eq!(whole.observe(r), resumed.observe(r), "run {}", r.id.0);
        }
        assert_eq!(whole.kpis(), resumed.kpis());
    }
}
