//! [`CachingModel`]: a [`ChatModel`] wrapper that replays stored replies for identical requests.
//!
//! The key is the wrapped model's name plus an XXH3-128 hash of the canonical JSON of the
//! [`ChatRequest`] (serde_json maps are sorted, so equal requests serialise identically) and an
//! optional salt (the candidate index, so N candidates of one agent do not replay one answer).
//! Entries live at `<cache>/llm/<model>/<hash>.json` and are written to a temporary file and
//! renamed, so a crash never leaves a half-written entry. A rerun of the same job therefore
//! replays deterministically up to its first new request: resume after a crash, cheap reruns,
//! deterministic tests. Errors are never cached. A replayed response carries a single marker
//! [`Exchange`] (see [`is_cache_hit`]) which the loop turns into `CacheHit` on the LLM span.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use llm::{ChatModel, ChatRequest, ChatResponse, Exchange, LlmError};
use serde::{Deserialize, Serialize};

/// The `outcome` of the marker exchange on a replayed response.
pub const CACHE_HIT_OUTCOME: &str = "cache hit";

const ENTRY_VERSION: u32 = 1;

/// True when `response` was replayed from a [`CachingModel`].
pub fn is_cache_hit(response: &ChatResponse) -> bool {
    response.exchanges.len() == 1 && response.exchanges[0].outcome == CACHE_HIT_OUTCOME
}

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    model: String,
    #[serde(default)]
    salt: String,
    request: ChatRequest,
    response: ChatResponse,
}

/// Wraps a model with the on-disk reply cache.
#[derive(Clone)]
pub struct CachingModel {
    inner: Arc<dyn ChatModel>,
    dir: PathBuf,
    salt: String,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CachingModel {
    /// `cache_dir` is racejudge's cache root; entries go under `cache_dir/llm/`.
    pub fn new(inner: Arc<dyn ChatModel>, cache_dir: &Path) -> Self {
        CachingModel {
            inner,
            dir: cache_dir.join("llm"),
            salt: String::new(),
        }
    }

    /// The same cache with `salt` mixed into every key (e.g. `candidate-2`).
    pub fn with_salt(&self, salt: impl Into<String>) -> Self {
        CachingModel {
            inner: self.inner.clone(),
            dir: self.dir.clone(),
            salt: salt.into(),
        }
    }

    /// Where the reply to `request` is (or would be) stored.
    pub fn entry_path(&self, request: &ChatRequest) -> PathBuf {
        let canonical = serde_json::to_vec(request).unwrap_or_default();
        let mut keyed = Vec::with_capacity(canonical.len() + self.salt.len() + 1);
        keyed.extend_from_slice(self.salt.as_bytes());
        keyed.push(0);
        keyed.extend_from_slice(&canonical);
        let hash = xxhash_rust::xxh3::xxh3_128(&keyed);
        self.dir
            .join(sanitise(&self.inner.name()))
            .join(format!("{hash:032x}.json"))
    }

    async fn lookup(&self, path: &Path, request: &ChatRequest) -> Option<ChatResponse> {
        let bytes = tokio::fs::read(path).await.ok()?;
        match serde_json::from_slice::<Entry>(&bytes) {
            // Comparing the stored request guards against hash collisions and format drift.
            Ok(entry)
                if entry.version == ENTRY_VERSION
                    && entry.request == *request
                    && entry.salt == self.salt =>
            {
                Some(entry.response)
            }
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "ignoring unreadable LLM cache entry");
                None
            }
        }
    }

    async fn store(
        &self,
        path: &Path,
        request: &ChatRequest,
        response: &ChatResponse,
    ) -> std::io::Result<()> {
        let entry = Entry {
            version: ENTRY_VERSION,
            model: self.inner.name(),
            salt: self.salt.clone(),
            request: request.clone(),
            response: response.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&entry).map_err(std::io::Error::other)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        tokio::fs::write(&tmp, &bytes).await?;
        if let Err(err) = tokio::fs::rename(&tmp, path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(err);
        }
        Ok(())
    }
}

/// Model names contain `:` and `/`; keep the directory name portable and inside `llm/`.
fn sanitise(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "_".into()
    } else {
        s
    }
}

impl ChatModel for CachingModel {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn context_window(&self) -> u64 {
        self.inner.context_window()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send + 'a>> {
        Box::pin(async move { self.chat_recorded(request).await.map_err(|f| f.error) })
    }

    // Forwarded so that a miss that fails still reports the inner model's HTTP attempts.
    fn chat_recorded<'a>(&'a self, request: &'a ChatRequest) -> llm::RecordedChat<'a> {
        Box::pin(async move {
            let path = self.entry_path(request);
            if let Some(mut response) = self.lookup(&path, request).await {
                tracing::debug!(path = %path.display(), "LLM cache hit");
                response.exchanges = vec![Exchange {
                    model: response.model.clone(),
                    url: format!("cache:{}", path.display()),
                    request_body: serde_json::Value::Null,
                    status: None,
                    response_body: None,
                    outcome: CACHE_HIT_OUTCOME.to_string(),
                    duration_ms: 0,
                }];
                return Ok(response);
            }
            let response = self.inner.chat_recorded(request).await?;
            if let Err(err) = self.store(&path, request, &response).await {
                tracing::warn!(path = %path.display(), %err, "could not write LLM cache entry");
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_become_safe_directory_names() {
        assert_eq!(sanitise("gemini:gemini-3-flash"), "gemini_gemini-3-flash");
        assert_eq!(sanitise("../../etc"), ".._.._etc");
        assert_eq!(sanitise(".."), "_");
        assert_eq!(sanitise(""), "_");
    }
}
