//! What a harmful race would break, derived from the fired rules and the facts.
//!
//! Each harmful rule names the failure its evidence points to ([`kind_of_rule`]); when several
//! fire, the most severe failure is reported, because that is what a developer must rule out
//! first (a race that can lead to a use-after-free also leads to a wrong branch, not the other
//! way round). The failure decides the detector ([`ConsequenceKind::detectable_by`]). None of
//! this changes the verdict: it only describes a verdict the fitted weights already gave.

use serde::Serialize;

use super::facts::RaceFacts;
use super::rules::{Direction, Fired};
use crate::expert::FailureDetectableBy;

/// The failure a harmful race leads to. Declared from the most to the least severe: the derived
/// `Ord` picks the worst of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsequenceKind {
    /// A pointer is used after another CPU replaced or cleared it (its object may be freed).
    UseAfterFree,
    /// A pointer checked non-NULL is loaded again and may be NULL the second time.
    NullDereference,
    /// An object is reachable before its fields are written.
    UninitialisedRead,
    /// List, tree or reference-count linkage is updated concurrently.
    StructureCorruption,
    /// Concurrent read-modify-writes overwrite each other.
    LostUpdate,
    /// A reader relying on its lock sees a value written outside it, possibly half-written.
    TornValue,
    /// A branch is taken on a value that changes under it.
    WrongBranch,
    /// A state/mode field is read stale or mid-transition.
    StaleState,
    /// A negative sentinel stored by the writer reaches the reader's result.
    SentinelLeak,
    /// The verdict is harmful but no rule says how (the fitted weights or the base rate decided).
    Unknown,
}

impl ConsequenceKind {
    /// Which detector would catch the failure (see [`FailureDetectableBy`] for the meanings).
    pub fn detectable_by(self, facts: &RaceFacts) -> FailureDetectableBy {
        match self {
            ConsequenceKind::UseAfterFree | ConsequenceKind::StructureCorruption => {
                FailureDetectableBy::Kasan
            }
            ConsequenceKind::UninitialisedRead => FailureDetectableBy::Kmsan,
            ConsequenceKind::NullDereference => FailureDetectableBy::Any,
            // A lost count of a statistic surfaces in what user space reads (/proc, sysfs,
            // netlink); a lost update of internal state (or of a hint) surfaces nowhere by itself.
            ConsequenceKind::LostUpdate if facts.field_kind == Some("counter") => {
                FailureDetectableBy::User
            }
            ConsequenceKind::SentinelLeak => FailureDetectableBy::User,
            ConsequenceKind::LostUpdate
            | ConsequenceKind::TornValue
            | ConsequenceKind::WrongBranch
            | ConsequenceKind::StaleState
            | ConsequenceKind::Unknown => FailureDetectableBy::None,
        }
    }

    /// The consequence in one sentence, naming the racing field.
    pub fn sentence(self, field: &str) -> String {
        match self {
            ConsequenceKind::UseAfterFree => format!(
                "Use-after-free: a reader can dereference `{field}` after another CPU has replaced or cleared it, so the object it uses may already be freed."
            ),
            ConsequenceKind::NullDereference => format!(
                "NULL dereference: `{field}` is checked and then loaded again, and the second load can see the NULL the writer stores."
            ),
            ConsequenceKind::UninitialisedRead => format!(
                "Uninitialised read: the object behind `{field}` can be reached before it is fully initialised."
            ),
            ConsequenceKind::StructureCorruption => format!(
                "Structure corruption: concurrent updates of the linkage or reference count `{field}` can corrupt it, leaving dangling or freed entries reachable."
            ),
            ConsequenceKind::LostUpdate => format!(
                "Lost update: two plain read-modify-writes of `{field}` can overwrite each other, so one change is lost."
            ),
            ConsequenceKind::TornValue => format!(
                "Torn value: the reader relies on its lock but `{field}` is written without it, so it can see a stale or half-written value."
            ),
            ConsequenceKind::WrongBranch => format!(
                "Wrong branch: the code branches on `{field}` while another CPU changes it, so it can act on a value that no longer holds."
            ),
            ConsequenceKind::StaleState => format!(
                "Stale state: `{field}` is a state field read mid-transition, so the reader can act on a state the object has left."
            ),
            ConsequenceKind::SentinelLeak => format!(
                "Sentinel leak: the writer stores a negative sentinel in `{field}` that the reader uses without checking."
            ),
            ConsequenceKind::Unknown => format!(
                "Unclear: no rule identified what the race on `{field}` breaks; the harmful verdict rests on the fitted weights."
            ),
        }
    }
}

/// The failure a harmful rule's evidence points to; `None` for benign rules, for later-tree
/// rules (their evidence is the fix, not the failure) and for names it does not know.
pub fn kind_of_rule(rule: &str, facts: &RaceFacts) -> Option<ConsequenceKind> {
    Some(match rule {
        "pointer-dereferenced" => ConsequenceKind::UseAfterFree,
        "reloaded-after-check" => ConsequenceKind::NullDereference,
        // NULL -> pointer publishes an object (a reader may see it before its fields are
        // written); pointer -> NULL or pointer -> pointer retires one (a reader may keep it).
        "pointer-cleared-or-set" => {
            if facts.value.as_ref().is_some_and(|v| v.old == 0) {
                ConsequenceKind::UninitialisedRead
            } else {
                ConsequenceKind::UseAfterFree
            }
        }
        "initialised-while-visible" => ConsequenceKind::UninitialisedRead,
        "linked-structure" => ConsequenceKind::StructureCorruption,
        "lossy-read-modify-write" | "unlocked-rmw-writer" => ConsequenceKind::LostUpdate,
        "unlocked-writer-vs-locked-reader" => ConsequenceKind::TornValue,
        "control-dependency" => ConsequenceKind::WrongBranch,
        "state-field" | "enum-state-field" => ConsequenceKind::StaleState,
        "sentinel-not-rechecked" => ConsequenceKind::SentinelLeak,
        _ => return None,
    })
}

/// The consequence of a harmful verdict, for the assessment and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consequence {
    pub kind: ConsequenceKind,
    pub detectable_by: FailureDetectableBy,
    pub sentence: String,
    /// The fired rule that names the failure; `None` for [`ConsequenceKind::Unknown`].
    pub rule: Option<&'static str>,
}

/// What the verdict would break: `None` for a benign verdict, else the most severe failure
/// among the harmful rules that fired and count (later-tree rules never do).
pub fn derive(fired: &[Fired], facts: &RaceFacts, benign: bool) -> Option<Consequence> {
    if benign {
        return None;
    }
    let worst = fired
        .iter()
        .filter(|r| r.direction == Direction::Harmful && !r.later_tree)
        .filter_map(|r| kind_of_rule(r.rule, facts).map(|k| (k, r.rule)))
        .min_by_key(|(k, _)| *k);
    let (kind, rule) = match worst {
        Some((k, r)) => (k, Some(r)),
        None => (ConsequenceKind::Unknown, None),
    };
    let field = facts.field.as_deref().unwrap_or("the racing variable");
    Some(Consequence {
        kind,
        detectable_by: kind.detectable_by(facts),
        sentence: kind.sentence(field),
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::super::facts::ValueFacts;
    use super::super::rules::{RULES, is_later_tree};
    use super::*;

    fn facts() -> RaceFacts {
        RaceFacts {
            accesses: vec![],
            field: Some("ptr".into()),
            field_kind: None,
            value: None,
            same_function: false,
            kernel_release: None,
            same_version: false,
            tree_newer: false,
            field_is_pointer: None,
        }
    }

    fn fired(rule: &'static str) -> Fired {
        let r = RULES.iter().find(|r| r.name == rule).expect(rule);
        Fired {
            rule: r.name,
            direction: r.direction,
            weight: -1.0,
            later_tree: is_later_tree(r.name),
            reason: String::new(),
        }
    }

    fn pointer_change(old: u64, new: u64) -> ValueFacts {
        ValueFacts {
            old,
            new,
            bits_changed: (old ^ new).count_ones(),
            delta: old.abs_diff(new),
            pointer_like: true,
            to_or_from_zero: (old == 0) != (new == 0),
        }
    }

    #[test]
    fn every_counted_harmful_rule_names_a_failure_and_no_other_rule_does() {
        let f = facts();
        for r in RULES {
            let counted_harmful = r.direction == Direction::Harmful && !is_later_tree(r.name);
            assert_eq!(
                kind_of_rule(r.name, &f).is_some(),
                counted_harmful,
                "rule {}",
                r.name
            );
        }
    }

    #[test]
    fn each_failure_maps_to_its_detector() {
        use ConsequenceKind::*;
        use FailureDetectableBy as D;
        let f = facts();
        let mut stats = facts();
        stats.field_kind = Some("counter");
        let table = [
            (UseAfterFree, &f, D::Kasan),
            (StructureCorruption, &f, D::Kasan),
            (UninitialisedRead, &f, D::Kmsan),
            (NullDereference, &f, D::Any),
            (LostUpdate, &f, D::None),
            (LostUpdate, &stats, D::User),
            (SentinelLeak, &f, D::User),
            (TornValue, &f, D::None),
            (WrongBranch, &f, D::None),
            (StaleState, &f, D::None),
            (Unknown, &f, D::None),
        ];
        for (kind, facts, detector) in table {
            assert_eq!(kind.detectable_by(facts), detector, "{kind:?}");
            let s = kind.sentence("ptr");
            assert!(s.contains("`ptr`") && s.ends_with('.'), "{s}");
            assert_eq!(s.matches(". ").count(), 0, "one sentence: {s}");
        }
    }

    #[test]
    fn each_rule_maps_to_its_failure() {
        use ConsequenceKind::*;
        let f = facts();
        for (rule, kind) in [
            ("pointer-dereferenced", UseAfterFree),
            ("reloaded-after-check", NullDereference),
            ("initialised-while-visible", UninitialisedRead),
            ("linked-structure", StructureCorruption),
            ("lossy-read-modify-write", LostUpdate),
            ("unlocked-rmw-writer", LostUpdate),
            ("unlocked-writer-vs-locked-reader", TornValue),
            ("control-dependency", WrongBranch),
            ("state-field", StaleState),
            ("enum-state-field", StaleState),
            ("sentinel-not-rechecked", SentinelLeak),
        ] {
            assert_eq!(kind_of_rule(rule, &f), Some(kind), "{rule}");
        }
        for rule in ["statistics-field", "annotated-since-report", "no-such-rule"] {
            assert_eq!(kind_of_rule(rule, &f), None, "{rule}");
        }
    }

    #[test]
    fn a_cleared_pointer_is_a_use_after_free_a_published_one_an_uninitialised_read() {
        let mut f = facts();
        f.value = Some(pointer_change(0xffff_8881_0000_0000, 0));
        assert_eq!(
            kind_of_rule("pointer-cleared-or-set", &f),
            Some(ConsequenceKind::UseAfterFree)
        );
        f.value = Some(pointer_change(0, 0xffff_8881_0000_0000));
        assert_eq!(
            kind_of_rule("pointer-cleared-or-set", &f),
            Some(ConsequenceKind::UninitialisedRead)
        );
    }

    #[test]
    fn benign_verdict_has_no_consequence() {
        let f = facts();
        assert_eq!(derive(&[fired("pointer-dereferenced")], &f, true), None);
    }

    #[test]
    fn the_most_severe_failure_wins() {
        let f = facts();
        let c = derive(
            &[
                fired("control-dependency"),
                fired("pointer-dereferenced"),
                fired("lossy-read-modify-write"),
            ],
            &f,
            false,
        )
        .unwrap();
        assert_eq!(c.kind, ConsequenceKind::UseAfterFree);
        assert_eq!(c.detectable_by, FailureDetectableBy::Kasan);
        assert_eq!(c.rule, Some("pointer-dereferenced"));
        assert!(c.sentence.starts_with("Use-after-free"), "{}", c.sentence);
    }

    #[test]
    fn lost_update_of_a_statistic_is_visible_to_user_space_of_state_to_nobody() {
        let mut f = facts();
        f.field = Some("rx_packets".into());
        f.field_kind = Some("counter");
        let c = derive(&[fired("lossy-read-modify-write")], &f, false).unwrap();
        assert_eq!(
            (c.kind, c.detectable_by),
            (ConsequenceKind::LostUpdate, FailureDetectableBy::User)
        );
        assert!(c.sentence.contains("`rx_packets`"));
        f.field_kind = None;
        let c = derive(&[fired("lossy-read-modify-write")], &f, false).unwrap();
        assert_eq!(c.detectable_by, FailureDetectableBy::None);
    }

    #[test]
    fn benign_and_later_tree_rules_do_not_name_the_failure() {
        let f = facts();
        let c = derive(
            &[fired("statistics-field"), fired("made-atomic-since-report")],
            &f,
            false,
        )
        .unwrap();
        assert_eq!(c.kind, ConsequenceKind::Unknown);
        assert_eq!(c.detectable_by, FailureDetectableBy::None);
        assert_eq!(c.rule, None);
    }
}
