//! Writing the cache without making the caller wait ([`start`]).
//!
//! Once a cold build or a refresh has assembled its tables, the index can answer queries; writing
//! the 785 MB cache for the next process is work the caller need not wait for. On an idle disk it
//! takes 0.3 s, but seconds while the disk is busy writing back other data. So the write runs on
//! a thread of its own over a shared [`Store`], and is waited for only where it matters: when the
//! [`crate::Index`] is dropped (so a process that drops its index before exiting always leaves a
//! complete cache), when another `Index::open` of the same cache directory starts (so it loads
//! what was just built), and on request ([`crate::Index::wait_persisted`]). A save that never
//! finishes (the process is killed) leaves the previous cache in place: files are replaced
//! atomically, and the next open refreshes again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use crate::persist::{self, CacheKey};
use crate::store::Store;

/// One background save and, once done, how it ended.
#[derive(Debug)]
pub(crate) struct PendingSave {
    dir: PathBuf,
    outcome: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl PendingSave {
    /// Blocks until the save has ended; its error, if it failed.
    pub fn wait(&self) -> Result<(), String> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = outcome.as_ref() {
                return result.clone();
            }
            outcome = self.done.wait(outcome).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn finish(&self, result: Result<(), String>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        self.done.notify_all();
    }
}

/// Saves still running in this process.
static RUNNING: Mutex<Vec<Arc<PendingSave>>> = Mutex::new(Vec::new());

/// Waits for every save into `dir` that this process still has running.
pub(crate) fn wait_for(dir: &Path) {
    let running: Vec<Arc<PendingSave>> = RUNNING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|s| s.dir == dir)
        .cloned()
        .collect();
    for save in running {
        let _ = save.wait();
    }
}

/// Writes `store` to `dir` on a background thread, then records the entry's new size with
/// `lease`. Runs the save inline if no thread can be started.
pub(crate) fn start(
    dir: PathBuf,
    key: CacheKey,
    store: Arc<Store>,
    lease: Arc<dircache::Lease>,
) -> Arc<PendingSave> {
    let pending = Arc::new(PendingSave {
        dir: dir.clone(),
        outcome: Mutex::new(None),
        done: Condvar::new(),
    });
    RUNNING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(pending.clone());
    let spawned = std::thread::Builder::new()
        .name("index-cache-save".into())
        .spawn({
            let (dir, key, store, lease, pending) = (
                dir.clone(),
                key.clone(),
                store.clone(),
                lease.clone(),
                pending.clone(),
            );
            move || write(&dir, &key, &store, &lease, &pending)
        });
    if spawned.is_err() {
        write(&dir, &key, &store, &lease, &pending);
    }
    pending
}

/// The save itself: the cache file, then the entry's size; `pending` learns how it ended.
fn write(
    dir: &Path,
    key: &CacheKey,
    store: &Store,
    lease: &dircache::Lease,
    pending: &Arc<PendingSave>,
) {
    let result = persist::save(dir, key, store)
        .map(|_| {
            if let Err(e) = lease.record_size() {
                tracing::warn!(error = %e, "could not record the index cache's size");
            }
        })
        .map_err(|e| {
            // An unwritable cache costs speed next time, not correctness now.
            tracing::warn!(error = %e, "could not persist the index");
            e.to_string()
        });
    RUNNING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|s| !Arc::ptr_eq(s, pending));
    pending.finish(result);
}
