//! The usage journal: every usage row is appended to a local file (one JSON line, one `write`
//! system call) before the answer's last byte leaves, and only then queued for the database.
//! A process killed with rows still queued leaves them in its journal; the next process to
//! start on the same journal directory replays them (ingestion is idempotent by row id) and
//! deletes the file. A plain `write` survives the death of the process (the data is in the
//! kernel's page cache); it does not survive the loss of the machine before the kernel wrote
//! it out — see docs/spend-caps.md, "What a crash can lose".
//!
//! Files are segments: `usage-<holder>-<n>.jsonl`, each locked (`flock`, exclusive) by the
//! process writing it, so a replaying process never takes a live one's file. A segment is
//! deleted once every row appended to it is stored; the current one is emptied whenever
//! everything is stored, and a new one is started past [`SEGMENT_BYTES`].

use inventiv_persistence::repo::usage::UsageRecord;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A segment grows to about this size before the next one starts.
const SEGMENT_BYTES: u64 = 8 << 20;

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    bytes: u64,
    /// Rows appended and not yet stored.
    unstored: u64,
}

#[derive(Debug)]
struct State {
    current: u64,
    segments: BTreeMap<u64, Segment>,
}

/// This process's journal (`None` directory: journaling off, for tests that measure without).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    holder: String,
    state: Mutex<State>,
}

/// Which segment a row was written to (handed back when the row is stored).
pub type Mark = u64;

fn open_segment(dir: &Path, holder: &str, n: u64) -> std::io::Result<Segment> {
    let path = dir.join(format!("usage-{holder}-{n}.jsonl"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)?;
    file.try_lock()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Segment {
        path,
        file,
        bytes: 0,
        unstored: 0,
    })
}

impl Journal {
    /// Opens a journal of its own in `dir` (created if needed).
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let holder = uuid::Uuid::now_v7().simple().to_string();
        let first = open_segment(dir, &holder, 0)?;
        Ok(Journal {
            dir: dir.to_owned(),
            holder,
            state: Mutex::new(State {
                current: 0,
                segments: BTreeMap::from([(0, first)]),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `row`; returns where, for [`Journal::stored`]. An error means the row is not
    /// journaled (the caller still queues it: the database may yet take it).
    pub fn append(&self, row: &UsageRecord) -> std::io::Result<Mark> {
        let mut line = serde_json::to_vec(row).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut state = self.state();
        let current = state.current;
        let rotate = state
            .segments
            .get(&current)
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if rotate {
            let next = current + 1;
            let segment = open_segment(&self.dir, &self.holder, next)?;
            state.segments.insert(next, segment);
            state.current = next;
            self.drop_finished(&mut state);
        }
        let current = state.current;
        let segment = state
            .segments
            .get_mut(&current)
            .ok_or_else(|| std::io::Error::other("no journal segment"))?;
        // One `write` of the whole line: with O_APPEND it lands whole and in order.
        segment.file.write_all(&line)?;
        segment.bytes += line.len() as u64;
        segment.unstored += 1;
        Ok(current)
    }

    /// Rows written at these marks are stored in the database.
    pub fn stored(&self, marks: impl IntoIterator<Item = Mark>) {
        let mut state = self.state();
        for mark in marks {
            if let Some(segment) = state.segments.get_mut(&mark) {
                segment.unstored = segment.unstored.saturating_sub(1);
            }
        }
        self.drop_finished(&mut state);
    }

    /// Deletes retired segments whose rows are all stored, and empties the current one when
    /// all of its rows are (so an idle journal takes no space).
    fn drop_finished(&self, state: &mut State) {
        let current = state.current;
        state.segments.retain(|n, segment| {
            if segment.unstored > 0 {
                return true;
            }
            if *n == current {
                if segment.bytes > 0 && segment.file.set_len(0).is_ok() {
                    segment.bytes = 0;
                }
                return true;
            }
            if let Err(err) = std::fs::remove_file(&segment.path) {
                tracing::warn!(error = %err, "could not delete a finished usage journal segment");
            }
            false
        });
    }

    /// Removes this process's files (clean shutdown, after every row is stored).
    pub fn close(&self) {
        let mut state = self.state();
        if state.segments.values().all(|s| s.unstored == 0) {
            for segment in std::mem::take(&mut state.segments).into_values() {
                let _ = std::fs::remove_file(&segment.path);
            }
        }
    }
}

/// Journal files found orphaned, each still open (and locked by this process) until deleted.
pub type Orphaned = Vec<(PathBuf, File)>;

/// The rows journaled by processes that are gone: every `usage-*.jsonl` of `dir` that no live
/// process holds locked. Returns the rows and the files they came from (delete them once the
/// rows are stored). A torn last line (the process died mid-write) is skipped: its answer had
/// not been completed.
pub fn orphans(dir: &Path) -> std::io::Result<(Vec<UsageRecord>, Orphaned)> {
    let mut rows = Vec::new();
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((rows, files)),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let path = entry?.path();
        let is_journal = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("usage-") && n.ends_with(".jsonl"));
        if !is_journal {
            continue;
        }
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        if file.try_lock().is_err() {
            continue; // a live process's
        }
        for line in std::io::BufReader::new(&file).lines() {
            let line = line?;
            match serde_json::from_str::<UsageRecord>(&line) {
                Ok(row) => rows.push(row),
                Err(err) => {
                    tracing::warn!(error = %err, file = %path.display(), "skipping an unreadable usage journal line")
                }
            }
        }
        files.push((path, file));
    }
    Ok((rows, files))
}
