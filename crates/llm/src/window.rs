//! Context windows by model name, so the agent loop knows when to compress history.
//!
//! A small prefix table, not a catalogue: providers rename models often, and
//! [`crate::ProviderConfig::context_window`] overrides it for anything the table gets wrong.

/// Used for models the table does not know (most local OpenAI-compatible servers).
pub const DEFAULT_CONTEXT_WINDOW: u64 = 128_000;

/// Longest matching prefix wins, so `gpt-4o-mini` and `gpt-4.1` can differ from `gpt-4`.
const TABLE: &[(&str, u64)] = &[
    ("gemini-3", 1_048_576),
    ("gemini-2.5", 1_048_576),
    ("gemini-2.0", 1_048_576),
    ("gpt-4o", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude", 200_000),
];

/// Whether the table knows `model`'s family; callers warn when it does not, since the
/// [`DEFAULT_CONTEXT_WINDOW`] then used is a guess (local models often have far less).
pub fn is_known(model: &str) -> bool {
    let bare = bare(model);
    TABLE.iter().any(|(prefix, _)| bare.starts_with(prefix))
}

fn bare(model: &str) -> String {
    model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase()
}

/// The context window in tokens for `model`. Provider prefixes such as OpenRouter's
/// `anthropic/` or Gemini's `models/` are ignored.
pub fn context_window_for(model: &str) -> u64 {
    let bare = bare(model);
    TABLE
        .iter()
        .filter(|(prefix, _)| bare.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|&(_, window)| window)
        .unwrap_or(DEFAULT_CONTEXT_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_families_and_default() {
        assert_eq!(context_window_for("gemini-3-flash-preview"), 1_048_576);
        assert_eq!(
            context_window_for("models/gemini-3.1-pro-preview"),
            1_048_576
        );
        assert_eq!(context_window_for("gpt-4o-mini"), 128_000);
        assert_eq!(context_window_for("claude-sonnet-4-5"), 200_000);
        assert_eq!(context_window_for("anthropic/claude-opus-4"), 200_000);
        assert_eq!(
            context_window_for("qwen3-coder:30b"),
            DEFAULT_CONTEXT_WINDOW
        );
        assert!(is_known("anthropic/claude-opus-4"));
        assert!(!is_known("gemma-3-270m-it"));
    }
}
