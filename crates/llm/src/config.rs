//! Provider configuration: which API, which models, where, with which key.
//!
//! [`ProviderConfig`] is everything an adapter needs; [`Secret`] wraps the API key so that no
//! `Debug`/`Display` of a config can print it. Keys come only from environment variables (by
//! name): the JSON config file ([`ConfigFile`]) names the variable and refuses a literal key, so a
//! key never ends up in a file that gets committed or attached to a bug report.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::LlmError;
use crate::window::context_window_for;

/// The wire protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Google Gemini `generateContent` (Developer API, or Vertex AI express mode).
    Gemini,
    /// OpenAI-compatible chat completions (OpenAI, vLLM, ollama, llama.cpp, OpenRouter).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Gemini, Provider::OpenAi, Provider::Anthropic];

    /// Lower-case name used in CLI flags, config files and [`crate::ChatModel::name`].
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gemini => "gemini",
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    /// Environment variable holding the API key.
    pub fn key_env(self) -> &'static str {
        match self {
            Provider::Gemini => "GEMINI_API_KEY",
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
        }
    }

    /// Environment variable overriding the base URL.
    pub fn base_url_env(self) -> &'static str {
        match self {
            Provider::Gemini => "GEMINI_BASE_URL",
            Provider::OpenAi => "OPENAI_BASE_URL",
            Provider::Anthropic => "ANTHROPIC_BASE_URL",
        }
    }

    /// Gemini and Anthropic take the host root; OpenAI-compatible servers take a URL that already
    /// includes `/v1`, because local servers mount the API under different prefixes.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Gemini => "https://generativelanguage.googleapis.com",
            Provider::OpenAi => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com",
        }
    }

    /// The model chain used when the caller names none. Empty for OpenAI-compatible servers:
    /// the adapter then asks the server (`GET {base}/models`) and uses its only model, since
    /// local servers accept any name and would silently answer a made-up default.
    pub fn default_models(self) -> &'static str {
        match self {
            Provider::Gemini => "gemini-3-pro-preview,gemini-3-flash-preview",
            Provider::OpenAi => "",
            Provider::Anthropic => "claude-sonnet-4-5",
        }
    }

    /// Local OpenAI-compatible servers (ollama, llama.cpp, vLLM) usually need no key.
    pub fn key_required(self) -> bool {
        !matches!(self, Provider::OpenAi)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = LlmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gemini" | "google" => Ok(Provider::Gemini),
            "openai" | "openai-compatible" => Ok(Provider::OpenAi),
            "anthropic" | "claude" => Ok(Provider::Anthropic),
            other => Err(LlmError::Config(format!(
                "unknown provider {other:?} (expected gemini, openai or anthropic)"
            ))),
        }
    }
}

/// An API key. `Debug` and `Display` print `[REDACTED]`; only [`Secret::expose`] gives the value,
/// and only adapters call it (to set a header and to scrub recorded exchanges).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Default bound on one model turn, retries included: a server that accepts and never answers
/// costs at most this, not `timeout` × `max_attempts` plus backoff (80+ minutes).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// Command-line (or embedding) settings laid over a [`ProviderConfig`] from the environment or
/// a config file; `None` keeps what the config says.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// A comma-separated model chain.
    pub model: Option<String>,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u32>,
    /// Per HTTP attempt.
    pub timeout: Option<Duration>,
    pub attempts: Option<u32>,
    /// One model turn, all attempts and backoff included.
    pub deadline: Option<Duration>,
}

/// How hard an adapter tries before giving up on one model of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// HTTP attempts per model, the first one included.
    pub max_attempts: u32,
    /// Backoff before retry `n` is uniform in `[0, min(max_backoff, base_delay * 2^(n-1))]`
    /// ("full jitter"), so many clients hitting the same limit spread out.
    pub base_delay: Duration,
    pub max_backoff: Duration,
    /// Upper bound on a server-requested wait (`Retry-After`, Gemini `retryDelay`), so a
    /// misbehaving proxy cannot park the run for hours.
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_server_delay: Duration::from_secs(300),
        }
    }
}

/// Everything needed to talk to one endpoint.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub provider: Provider,
    /// The fallback chain, tried in order; never empty once validated by [`crate::connect`].
    pub models: Vec<String>,
    /// Gemini/Anthropic: host root (or a Vertex publisher prefix for Gemini); OpenAI: incl. `/v1`.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Per HTTP attempt; generous because thinking models answer slowly and we don't stream.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Overrides the built-in context-window table (see [`crate::window`]).
    pub context_window: Option<u64>,
    /// Output limit sent with every request that sets none itself (`max_tokens` and kin).
    pub max_output_tokens: Option<u32>,
    /// Wall-clock limit for one model turn, every attempt and backoff included; `None` leaves
    /// only `timeout` × `retry.max_attempts` (plus backoff) as the bound.
    pub deadline: Option<Duration>,
}

impl ProviderConfig {
    /// The API key, for a provider that cannot work without one; the error names the
    /// environment variable to set.
    pub(crate) fn required_key(&self) -> Result<String, LlmError> {
        self.api_key
            .as_ref()
            .map(|k| k.expose().to_string())
            .ok_or_else(|| {
                LlmError::Config(format!(
                    "{} needs an API key: set {}",
                    self.provider,
                    self.provider.key_env()
                ))
            })
    }

    /// A config with default timeout and retry policy. `models` is a comma-separated chain.
    pub fn new(
        provider: Provider,
        models: &str,
        base_url: impl Into<String>,
        api_key: Option<Secret>,
    ) -> Self {
        ProviderConfig {
            provider,
            models: split_models(models),
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            context_window: None,
            max_output_tokens: None,
            deadline: Some(DEFAULT_DEADLINE),
        }
    }

    /// Reads `<PROVIDER>_API_KEY` and `<PROVIDER>_BASE_URL` from the process environment.
    /// `model` is a comma-separated chain; `None` takes [`Provider::default_models`].
    pub fn from_env(provider: Provider, model: Option<&str>) -> Result<Self, LlmError> {
        Self::from_lookup(provider, model, None, |name| std::env::var(name).ok())
    }

    /// Like [`ProviderConfig::from_env`] with an explicit variable lookup (tests, embedding).
    /// `key_env` overrides the variable the key is read from.
    pub fn from_lookup(
        provider: Provider,
        model: Option<&str>,
        key_env: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let key_var = key_env.unwrap_or(provider.key_env());
        let api_key = get(key_var).map(|k| Secret::new(k.trim()));
        if api_key.is_none() && provider.key_required() {
            return Err(LlmError::Config(format!(
                "{provider} needs an API key: set {key_var}"
            )));
        }
        let base_url =
            get(provider.base_url_env()).unwrap_or_else(|| provider.default_base_url().to_string());
        let cfg = ProviderConfig::new(
            provider,
            model.unwrap_or(provider.default_models()),
            base_url,
            api_key,
        );
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads a JSON config file (see [`ConfigFile`]); the key comes from the environment.
    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LlmError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::from_json(&text, |name| std::env::var(name).ok())
            .map_err(|e| LlmError::Config(format!("{}: {}", path.display(), strip_prefix(&e))))
    }

    /// Parses the JSON config format with an explicit environment lookup.
    pub fn from_json(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let raw: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| LlmError::Config(format!("invalid JSON: {e}")))?;
        if raw.get("api_key").is_some() || raw.get("key").is_some() {
            return Err(LlmError::Config(
                "API keys are never stored in config files; name the environment variable with \"api_key_env\"".into(),
            ));
        }
        let file: ConfigFile = serde_json::from_value(raw)
            .map_err(|e| LlmError::Config(format!("invalid config: {e}")))?;
        let provider: Provider = file.provider.parse()?;
        let mut cfg = Self::from_lookup(
            provider,
            file.model.as_deref(),
            file.api_key_env.as_deref(),
            &lookup,
        )?;
        if let Some(url) = file.base_url {
            cfg.base_url = url;
        }
        if let Some(secs) = file.timeout_s {
            cfg.timeout = seconds("timeout_s", secs)?;
        }
        if let Some(n) = file.max_attempts {
            cfg.retry.max_attempts = n;
        }
        if let Some(secs) = file.deadline_s {
            cfg.deadline = Some(seconds("deadline_s", secs)?);
        }
        cfg.context_window = file.context_window;
        cfg.max_output_tokens = file.max_output_tokens;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies `o` and validates the result.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), LlmError> {
        if let Some(model) = &o.model {
            self.models = split_models(model);
        }
        if let Some(w) = o.context_window {
            self.context_window = Some(w);
        }
        if let Some(n) = o.max_output_tokens {
            self.max_output_tokens = Some(n);
        }
        if let Some(t) = o.timeout {
            self.timeout = t;
        }
        if let Some(n) = o.attempts {
            self.retry.max_attempts = n;
        }
        if let Some(d) = o.deadline {
            self.deadline = Some(d);
        }
        self.validate()
    }

    /// Checks what can be checked without the network.
    pub fn validate(&self) -> Result<(), LlmError> {
        if self.models.is_empty() && self.provider != Provider::OpenAi {
            return Err(LlmError::Config(format!(
                "{}: no model given",
                self.provider
            )));
        }
        if let Some(bad) = self.models.iter().find(|m| !valid_model_name(m)) {
            return Err(LlmError::Config(format!("invalid model name {bad:?}")));
        }
        let url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| LlmError::Config(format!("invalid base URL {:?}: {e}", self.base_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "base URL {:?} must be http or https",
                self.base_url
            )));
        }
        if url.query().is_some() {
            // Keys in query strings end up in logged URLs; we send keys in headers only.
            return Err(LlmError::Config(format!(
                "base URL for {} must not carry a query string",
                self.provider
            )));
        }
        if let Some(key) = &self.api_key
            && !key.expose().chars().all(|c| c.is_ascii_graphic())
        {
            // It goes into an HTTP header; say so now rather than fail every request later.
            return Err(LlmError::Config(format!(
                "the {} API key contains whitespace or non-ASCII characters",
                self.provider
            )));
        }
        if self.retry.max_attempts == 0 {
            return Err(LlmError::Config("max_attempts must be at least 1".into()));
        }
        if self.timeout.is_zero() || self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(LlmError::Config(
                "timeout and deadline must be positive".into(),
            ));
        }
        if self.context_window == Some(0) || self.max_output_tokens == Some(0) {
            return Err(LlmError::Config(
                "context_window and max_output_tokens must be positive".into(),
            ));
        }
        if self.api_key.is_none() && self.provider.key_required() {
            return Err(LlmError::Config(format!(
                "{} needs an API key: set {}",
                self.provider,
                self.provider.key_env()
            )));
        }
        Ok(())
    }

    /// The context window of the first model of the chain, or the configured override.
    pub fn context_window(&self) -> u64 {
        self.context_window.unwrap_or_else(|| {
            self.models
                .first()
                .map(|m| context_window_for(m))
                .unwrap_or(crate::window::DEFAULT_CONTEXT_WINDOW)
        })
    }
}

/// The on-disk config format (JSON, so no TOML dependency):
/// `{"provider": "gemini", "model": "a,b", "base_url": "...", "api_key_env": "NAME",
///   "timeout_s": 600, "max_attempts": 8, "deadline_s": 1800, "context_window": 1048576,
///   "max_output_tokens": 8192}`.
/// Everything but `provider` is optional. A literal `api_key` is rejected. `timeout_s` is per
/// HTTP attempt, `deadline_s` bounds one model turn (all attempts and backoff).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub timeout_s: Option<f64>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub deadline_s: Option<f64>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
}

/// Which provider has a key in the environment, in the order Gemini, Anthropic, OpenAI; a bare
/// `OPENAI_BASE_URL` (a local server) counts for OpenAI.
pub fn detect_from_env() -> Option<Provider> {
    detect_with(|name| std::env::var(name).ok())
}

/// [`detect_from_env`] with an explicit lookup.
pub fn detect_with(lookup: impl Fn(&str) -> Option<String>) -> Option<Provider> {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    [Provider::Gemini, Provider::Anthropic, Provider::OpenAi]
        .into_iter()
        .find(|p| set(p.key_env()))
        .or_else(|| set(Provider::OpenAi.base_url_env()).then_some(Provider::OpenAi))
}

fn split_models(spec: &str) -> Vec<String> {
    spec.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect()
}

/// Model names go into URL paths (Gemini), so they must not smuggle path segments or queries.
fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '@'))
}

/// A positive, finite number of seconds from a config file (`from_secs_f64` would panic on
/// negative or huge values).
fn seconds(field: &str, secs: f64) -> Result<Duration, LlmError> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| LlmError::Config(format!("{field} must be a positive number of seconds")))
}

fn strip_prefix(e: &LlmError) -> String {
    match e {
        LlmError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}
