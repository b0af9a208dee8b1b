//! Scrubbing the API key out of everything we record or report.
//!
//! [`Redactor`] replaces every occurrence of the key in strings, JSON values (keys and values, at
//! any depth) and [`LlmError`] messages with `[REDACTED]`. Headers are never recorded at all, so
//! this is the second line of defence: it covers servers or proxies that echo the key back in an
//! error body, and prompts that happen to contain it.

use std::sync::RwLock;

use serde_json::Value;

use crate::LlmError;

/// Every API key a provider was connected with in this process (see [`connect`]), so that
/// recorders outside this crate (trajectories, and any store after them) can scrub them too:
/// a key a user pastes into a report, or one a model repeats, must not land in a span.
///
/// [`connect`]: crate::connect
static KNOWN_SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Keys shorter than this are not real API keys (test doubles such as `"k"`); replacing them
/// everywhere would mangle ordinary text.
const MIN_SECRET_LEN: usize = 8;

/// Remembers `secret` for [`redact_known_secrets`].
pub(crate) fn register_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut known = KNOWN_SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !known.iter().any(|k| k == secret) {
        known.push(secret.to_string());
    }
}

/// `text` with every API key this process connected with replaced by `[REDACTED]`; `None`
/// when there was nothing to replace (the common case costs one substring search per key).
pub fn redact_known_secrets(text: &str) -> Option<String> {
    let known = KNOWN_SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out: Option<String> = None;
    for secret in known.iter() {
        let current = out.as_deref().unwrap_or(text);
        if current.contains(secret.as_str()) {
            out = Some(current.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

pub(crate) const REDACTED: &str = "[REDACTED]";

#[derive(Debug, Clone)]
pub(crate) struct Redactor {
    /// `None` (or empty) means nothing to hide; an empty needle must never be "replaced".
    secret: Option<String>,
}

impl Redactor {
    /// Keys shorter than [`MIN_SECRET_LEN`] are not scrubbed, as in [`register_secret`]: local
    /// servers run with placeholder keys such as `x`, and replacing every `x` of a transcript
    /// would destroy it while protecting nothing.
    pub(crate) fn new(secret: Option<String>) -> Self {
        Redactor {
            secret: secret.filter(|s| s.len() >= MIN_SECRET_LEN),
        }
    }

    pub(crate) fn text(&self, text: &str) -> String {
        match &self.secret {
            Some(s) if text.contains(s.as_str()) => text.replace(s.as_str(), REDACTED),
            _ => text.to_string(),
        }
    }

    pub(crate) fn value(&self, value: &Value) -> Value {
        if self.secret.is_none() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub(crate) fn error(&self, err: LlmError) -> LlmError {
        match err {
            LlmError::InputTooLong { model, message } => LlmError::InputTooLong {
                model: self.text(&model),
                message: self.text(&message),
            },
            LlmError::OutputTruncated { model } => LlmError::OutputTruncated {
                model: self.text(&model),
            },
            LlmError::Provider { provider, message } => LlmError::Provider {
                provider,
                message: self.text(&message),
            },
            LlmError::Config(message) => LlmError::Config(self.text(&message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubs_keys_at_any_depth() {
        let r = Redactor::new(Some("sk-12345678".into()));
        let v = json!({"a": ["x sk-12345678 y", {"sk-12345678": 1}], "b": 2});
        assert_eq!(
            r.value(&v),
            json!({"a": ["x [REDACTED] y", {"[REDACTED]": 1}], "b": 2})
        );
        assert_eq!(r.text("url?key=sk-12345678"), "url?key=[REDACTED]");
    }

    #[test]
    fn empty_secret_changes_nothing() {
        let r = Redactor::new(Some(String::new()));
        assert_eq!(r.text("abc"), "abc");
        let r = Redactor::new(None);
        assert_eq!(r.value(&json!({"k": "v"})), json!({"k": "v"}));
    }

    #[test]
    fn errors_are_scrubbed() {
        let r = Redactor::new(Some("KEY-0123456789".into()));
        let e = r.error(LlmError::Provider {
            provider: "p".into(),
            message: "bad KEY-0123456789".into(),
        });
        assert_eq!(e.to_string(), "p request failed: bad [REDACTED]");
    }

    #[test]
    fn placeholder_keys_leave_text_alone() {
        let r = Redactor::new(Some("x".into()));
        assert_eq!(r.text("max x index"), "max x index");
        assert_eq!(r.value(&json!({"x": "x"})), json!({"x": "x"}));
    }
}
