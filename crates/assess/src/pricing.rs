//! Approximate cost of the LLM expert's tokens, for `racejudge eval --expert llm`.
//!
//! A small table of public list prices (US dollars per million tokens) for a few hosted models,
//! matched by the longest name prefix, so dated or suffixed names (`gpt-4o-2024-08-06`,
//! `claude-sonnet-4-20250514`) find their family. The figures are approximate: providers change
//! prices, tiers and long-context surcharges, and the estimate ignores cache discounts (cached
//! input is priced as ordinary input), so it is an upper bound for cached runs. Thinking tokens
//! are billed as output, as the providers that report them do. Local models have no price: their
//! cost is the machine's, not per token.

use llm::Usage;

/// List price of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// Dollars for `usage`: input at the input price (cached input included), output and
    /// thinking at the output price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_per_mtok
            + (usage.output_tokens + usage.thoughts_tokens) as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// (name prefix, input $/Mtok, output $/Mtok); list prices as published in 2025, approximate.
const PRICES: &[(&str, f64, f64)] = &[
    ("gemini-3-pro", 2.0, 12.0),
    ("gemini-2.5-pro", 1.25, 10.0),
    ("gemini-2.5-flash", 0.30, 2.50),
    ("gemini-2.5-flash-lite", 0.10, 0.40),
    ("gemini-2.0-flash", 0.10, 0.40),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("o4-mini", 1.10, 4.40),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-5-haiku", 0.80, 4.0),
    ("claude-haiku-4", 1.0, 5.0),
];

/// The price of `model` (a name, `provider/name`, the chat model's `provider:name`, or a
/// comma-separated fallback chain, of which the first model is priced), or `None` when the
/// table does not know it.
pub fn price_of(model: &str) -> Option<Price> {
    // `openai:gpt-4o` (what `ChatModel::name` gives); not `llama3:8b`, whose tag is no provider.
    let model = model
        .split_once(':')
        .filter(|(provider, _)| provider.chars().all(|c| c.is_ascii_alphabetic()))
        .map_or(model, |(_, name)| name);
    let first = model.split(',').next().unwrap_or(model).trim();
    let name = first
        .rsplit('/')
        .next()
        .unwrap_or(first)
        .to_ascii_lowercase();
    PRICES
        .iter()
        .filter(|(prefix, _, _)| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '@', ':']))
        })
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|&(_, input_per_mtok, output_per_mtok)| Price {
            input_per_mtok,
            output_per_mtok,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_dated_names_match_their_family() {
        assert_eq!(price_of("gemini-2.5-flash").unwrap().input_per_mtok, 0.30);
        assert_eq!(
            price_of("gemini-2.5-flash-lite").unwrap().input_per_mtok,
            0.10
        );
        assert_eq!(
            price_of("gpt-4o-mini-2024-07-18").unwrap().input_per_mtok,
            0.15
        );
        assert_eq!(price_of("gpt-4o-2024-08-06").unwrap().input_per_mtok, 2.50);
        assert_eq!(
            price_of("claude-sonnet-4-20250514")
                .unwrap()
                .output_per_mtok,
            15.0
        );
        assert_eq!(
            price_of("models/GEMINI-2.5-PRO").unwrap().output_per_mtok,
            10.0
        );
        assert_eq!(
            price_of("gemini-2.5-pro,gemini-2.5-flash")
                .unwrap()
                .input_per_mtok,
            1.25,
            "a fallback chain is priced by its first model"
        );
        assert_eq!(
            price_of("openai:gpt-4o-mini").unwrap().input_per_mtok,
            0.15,
            "the chat model's provider:name"
        );
        assert_eq!(
            price_of("gemini:gemini-2.5-pro,gemini-2.5-flash")
                .unwrap()
                .input_per_mtok,
            1.25
        );
    }

    #[test]
    fn unknown_and_local_models_have_no_price() {
        assert_eq!(price_of("gemma-3-270m-it"), None);
        assert_eq!(price_of("gpt-test"), None);
        // A prefix must end at a name boundary: `gpt-4o` is not `gpt-4omega`.
        assert_eq!(price_of("gpt-4omega"), None);
    }

    #[test]
    fn cost_bills_thinking_as_output() {
        let price = Price {
            input_per_mtok: 1.0,
            output_per_mtok: 10.0,
        };
        let usage = Usage {
            input_tokens: 2_000_000,
            output_tokens: 100_000,
            thoughts_tokens: 100_000,
            cached_tokens: 1_000_000,
        };
        assert!((price.cost(&usage) - 4.0).abs() < 1e-9);
    }
}
