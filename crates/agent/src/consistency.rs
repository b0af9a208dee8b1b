//! Cross-checking an agent's final text against its `set-results` values.
//!
//! The reference never compared the KCSAN `Benign` flag with the "Final Classification" in the
//! explanation (aflow.md §10.7). [`bool_verdict_check`] builds a
//! [`ConsistencyCheck`](crate::ConsistencyCheck) for any boolean output whose value the text
//! states with one of two words (`Benign` ↔ "benign" / "harmful"); [`text_verdict`] finds which
//! word the text concludes with.

use std::sync::Arc;

use serde_json::Value;

use crate::definition::ConsistencyCheck;

/// Headings after which a conclusion is stated, most specific first.
const MARKERS: &[&str] = &[
    "final classification",
    "final verdict",
    "verdict",
    "conclusion",
    "classification",
];

/// Which word the text concludes with: `Some(true)` for `yes_word`, `Some(false)` for `no_word`,
/// `None` when it states neither. A conclusion heading, if any, is preferred; else the last
/// mention counts. "not X" / "non-X" are read as the other word.
pub fn text_verdict(text: &str, yes_word: &str, no_word: &str) -> Option<bool> {
    let lower = text.to_lowercase();
    let (yes, no) = (yes_word.to_lowercase(), no_word.to_lowercase());
    for marker in MARKERS {
        if let Some(at) = lower.rfind(marker) {
            let tail = &lower[at + marker.len()..];
            let window: String = tail.chars().take(200).collect();
            let first_yes = find_word(&window, &yes, false);
            let first_no = find_word(&window, &no, false);
            let pick = match (first_yes, first_no) {
                (Some(y), Some(n)) => Some(if y < n { (y, true) } else { (n, false) }),
                (Some(y), None) => Some((y, true)),
                (None, Some(n)) => Some((n, false)),
                (None, None) => None,
            };
            if let Some((pos, said)) = pick {
                return Some(said ^ negated(&window, pos));
            }
        }
    }
    let last_yes = find_word(&lower, &yes, true);
    let last_no = find_word(&lower, &no, true);
    let (pos, said) = match (last_yes, last_no) {
        (Some(y), Some(n)) => {
            if y > n {
                (y, true)
            } else {
                (n, false)
            }
        }
        (Some(y), None) => (y, true),
        (None, Some(n)) => (n, false),
        (None, None) => return None,
    };
    Some(said ^ negated(&lower, pos))
}

/// Byte offset of the first (or last) whole-word occurrence of `word` in `hay`.
fn find_word(hay: &str, word: &str, last: bool) -> Option<usize> {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut found = None;
    for (pos, _) in hay.match_indices(word) {
        let before = hay[..pos].chars().next_back();
        let after = hay[pos + word.len()..].chars().next();
        if !is_word(before) && !is_word(after) {
            if !last {
                return Some(pos);
            }
            found = Some(pos);
        }
    }
    found
}

fn negated(hay: &str, pos: usize) -> bool {
    let before = hay[..pos].trim_end_matches(['*', '_', '`', ' ', '"']);
    before.ends_with(" not")
        || before.ends_with("non-")
        || before.ends_with("non")
        || before == "not"
}

/// A check for a boolean output `field` stated in the text as `yes_word` (true) / `no_word`.
pub fn bool_verdict_check(field: &str, yes_word: &str, no_word: &str) -> ConsistencyCheck {
    let (field, yes, no) = (field.to_string(), yes_word.to_string(), no_word.to_string());
    Arc::new(move |text: &str, outputs: &Value| {
        let set = outputs.get(&field)?.as_bool()?;
        let said = text_verdict(text, &yes, &no)?;
        (set != said).then(|| {
            format!(
                "set-results has {field}={set}, but the final reply concludes the opposite (\"{}\")",
                if said { &yes } else { &no }
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_conclusion_heading_first() {
        let text = "The race looks harmful at first.\n\nFinal Classification: **BENIGN**\nIt is a stats counter.";
        assert_eq!(text_verdict(text, "benign", "harmful"), Some(true));
        let text = "Some say benign.\n### Final Classification\n**HARMFUL** (torn pointer)";
        assert_eq!(text_verdict(text, "benign", "harmful"), Some(false));
    }

    #[test]
    fn falls_back_to_the_last_mention_and_reads_negation() {
        assert_eq!(
            text_verdict(
                "It is benign. Well, not harmful anyway",
                "benign",
                "harmful"
            ),
            Some(true)
        );
        assert_eq!(
            text_verdict("This is a non-benign race", "benign", "harmful"),
            Some(false)
        );
        assert_eq!(text_verdict("no opinion", "benign", "harmful"), None);
        assert_eq!(
            text_verdict("benignly harmfulness", "benign", "harmful"),
            None
        );
    }

    #[test]
    fn check_reports_only_disagreement() {
        let check = bool_verdict_check("Benign", "benign", "harmful");
        assert_eq!(
            check("Final verdict: benign", &json!({"Benign": true})),
            None
        );
        let d = check("Final verdict: harmful", &json!({"Benign": true})).unwrap();
        assert!(d.contains("Benign=true") && d.contains("harmful"), "{d}");
        assert_eq!(check("undecided", &json!({"Benign": true})), None);
        assert_eq!(check("harmful", &json!({"Other": 1})), None);
    }
}
