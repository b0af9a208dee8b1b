//! The rule table: named, individually tested detectors with a direction.
//!
//! Each [`Rule`] looks at [`RaceFacts`] and either stays silent or fires with a one-line reason
//! that cites what it saw. [`super::model`] weighs the fired rules with a fitted table (positive
//! means benign), so anyone can recompute the verdict from the evidence.

use serde::Serialize;

use super::facts::{AccessFacts, RaceFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Benign,
    Harmful,
}

/// A detector. `direction` is what the rule claims when it fires; how much that claim counts is
/// fitted from labelled reports ([`super::model`]), not written here.
pub struct Rule {
    pub name: &'static str,
    pub detects: &'static str,
    pub direction: Direction,
    pub check: fn(&RaceFacts) -> Option<String>,
}

/// One fired rule, for the evidence: its claim, its fitted weight (log-odds towards benign; 0
/// for later-tree evidence, which never counts) and what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct Fired {
    pub rule: &'static str,
    pub direction: Direction,
    pub weight: f64,
    pub later_tree: bool,
    pub reason: String,
}

/// Rules whose evidence exists only in a tree *newer* than the report's (the race annotated,
/// made atomic or locked since). Production reports are assessed on their own tree, where these
/// cannot fire; so they are shown, never weighed (see [`super::model`]).
pub const LATER_TREE_RULES: &[&str] = &[
    "annotated-since-report",
    "made-atomic-since-report",
    "common-lock-now",
    "fixed-by-single-load",
];

pub fn is_later_tree(rule: &str) -> bool {
    LATER_TREE_RULES.contains(&rule)
}

fn located(f: &RaceFacts) -> impl Iterator<Item = &AccessFacts> {
    f.accesses.iter().filter(|a| a.location.is_some())
}

fn loc_str(a: &AccessFacts) -> String {
    a.location
        .as_ref()
        .map(|l| format!("{}:{} `{}`", l.file, l.line, l.text.trim()))
        .unwrap_or_default()
}

pub const RULES: &[Rule] = &[
    Rule {
        name: "diagnostic-read",
        detects: "a racing access only feeds a warning, BUG check, printk, tracepoint or debug helper",
        direction: Direction::Benign,
        check: |f| {
            located(f)
                .find(|a| a.diagnostic.is_some() && !a.store)
                .map(|a| {
                    format!(
                        "{} is used by {}()",
                        loc_str(a),
                        a.diagnostic.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "statistics-field",
        detects: "the racing field is a counter, statistic, timestamp or hint (name-based)",
        direction: Direction::Benign,
        check: |f| {
            let kind = f.field_kind?;
            // A pointer-valued change is not a counter or timestamp, whatever the name says;
            // nor is a field declared as a pointer, or one compared with an enumerator (a state).
            if f.value.as_ref().is_some_and(|v| v.pointer_like)
                || f.field_is_pointer == Some(true)
                || f.accesses.iter().any(|a| a.enum_constant.is_some())
            {
                return None;
            }
            Some(format!(
                "field `{}` looks like a {kind}",
                f.field.as_deref().unwrap_or_default()
            ))
        },
    },
    Rule {
        name: "one-side-marked",
        detects: "one access is already marked (READ_ONCE/WRITE_ONCE/atomic/data_race): the lockless access is intended, the other side lacks the annotation",
        direction: Direction::Benign,
        check: |f| {
            // A marker seen in a *different* kernel version may be the later fix of this very race,
            // so tree markers count only on an exactly located line.
            let is_marked = |a: &AccessFacts| {
                a.marked_in_report
                    || a.marker.is_some()
                        && matches!(
                            a.location.as_ref().map(|l| &l.method),
                            Some(super::locate::Method::Exact)
                        )
            };
            let marked = f.accesses.iter().filter(|a| is_marked(a)).count();
            (marked >= 1 && marked < f.accesses.len()).then(|| {
                let a = f.accesses.iter().find(|a| is_marked(a));
                format!(
                    "marked access: {}",
                    a.map(|a| a
                        .marker
                        .clone()
                        .unwrap_or_else(|| "(marked) in the report".into()))
                        .unwrap_or_default()
                )
            })
        },
    },
    Rule {
        name: "flag-or-small-change",
        detects: "value changed flips a single bit or moves a small integer by one step: a flag or counter, not a torn pointer",
        direction: Direction::Benign,
        check: |f| {
            let v = f.value.as_ref()?;
            (!v.pointer_like && (v.bits_changed == 1 || v.delta <= 4)).then(|| {
                format!(
                    "value changed {:#x} -> {:#x} ({} bit(s), delta {})",
                    v.old, v.new, v.bits_changed, v.delta
                )
            })
        },
    },
    Rule {
        name: "constant-store",
        detects: "the writer stores a constant (flag set/clear, NULL, 0): a reader sees either the old or the new value",
        direction: Direction::Benign,
        check: |f| {
            f.accesses.iter().find_map(|a| {
                a.stores_constant
                    .as_ref()
                    .map(|c| format!("{} stores `{c}`", loc_str(a)))
            })
        },
    },
    Rule {
        name: "rechecked-under-lock",
        detects: "the racy read is an optimistic check and the field is re-read after taking a lock (not when the tree now loads it with acquire/RCU ordering: then the fast path uses the value)",
        direction: Direction::Benign,
        check: |f| {
            located(f)
                .find(|a| a.rechecked_under_lock && !a.marker.as_deref().is_some_and(is_ordering))
                .map(|a| format!("{} is re-checked under a lock later", loc_str(a)))
        },
    },
    Rule {
        name: "lossy-read-modify-write",
        detects: "both sides write the field with a plain read-modify-write (x++, x |= y): concurrent updates can be lost",
        direction: Direction::Harmful,
        check: |f| {
            // KCSAN's own `read-write` (unmarked) says the reported kernel did a plain compound
            // update, even when the analysed tree has since changed the line.
            if let Some(a) = f
                .accesses
                .iter()
                .find(|a| a.operation == "read-write" && !a.marked_in_report)
            {
                return Some(format!(
                    "the report shows an unmarked read-write access ({} bytes){}",
                    a.size,
                    if a.location.is_some() {
                        format!(" at {}", loc_str(a))
                    } else {
                        String::new()
                    }
                ));
            }
            let rmw: Vec<_> = f
                .accesses
                .iter()
                .filter(|a| a.plain_rmw && a.marker.is_none() && !a.marked_in_report)
                .collect();
            let writers = f.accesses.iter().filter(|a| a.store).count();
            (!rmw.is_empty() && writers >= 2)
                .then(|| format!("plain read-modify-write at {}", loc_str(rmw[0])))
        },
    },
    Rule {
        name: "pointer-dereferenced",
        detects: "a pointer is read locklessly and dereferenced afterwards while another CPU changes it",
        direction: Direction::Harmful,
        check: |f| {
            let v = f.value.as_ref();
            let pointer_change = v.is_none_or(|v| v.pointer_like);
            // The local must be loaded from the racing member itself, not from a call that merely
            // takes it as an argument (`b = get_rsv(trans)` does not read `trans->...`).
            let loads_field = |a: &AccessFacts| {
                let (Some(field), Some(l)) = (f.field.as_deref(), a.location.as_ref()) else {
                    return false;
                };
                super::text::members(&l.text).iter().any(|m| m == field)
            };
            located(f)
                .find(|a| a.deref_after.is_some() && a.diagnostic.is_none() && loads_field(a))
                .filter(|_| pointer_change)
                .map(|a| {
                    format!(
                        "{} then {}",
                        loc_str(a),
                        a.deref_after.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "pointer-cleared-or-set",
        detects: "value changed switches a kernel pointer to or from NULL: lifetime/publication race unless the reader only compares it",
        direction: Direction::Harmful,
        check: |f| {
            let v = f.value.as_ref()?;
            // A reader that only tests the pointer (`if (p)`, `p == current`) sees old or new, both valid.
            let reader_only_tests =
                located(f).any(|a| !a.store && a.condition && a.deref_after.is_none());
            (v.pointer_like && v.to_or_from_zero && !reader_only_tests)
                .then(|| format!("value changed {:#x} -> {:#x}", v.old, v.new))
        },
    },
    Rule {
        name: "linked-structure",
        detects: "the racing access manipulates a list/tree/xarray/refcount member: structural corruption risk",
        direction: Direction::Harmful,
        check: |f| {
            located(f)
                .find(|a| a.container_op.is_some() && a.store)
                .map(|a| {
                    format!(
                        "{} uses {}",
                        loc_str(a),
                        a.container_op.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "unlocked-writer-vs-locked-reader",
        detects: "the reader holds a lock the writer does not take and the writer's store is a plain one-shot store (maintainers often add such locks only to silence KCSAN; a read-modify-write writer is `unlocked-rmw-writer`)",
        direction: Direction::Harmful,
        check: |f| {
            let w = f
                .accesses
                .iter()
                .find(|a| a.store && a.location.is_some())?;
            let r = f
                .accesses
                .iter()
                .find(|a| !a.store && a.location.is_some())?;
            (w.locks.is_empty()
                && !r.locks.is_empty()
                && w.marker.is_none()
                && !w.marked_in_report
                && !w.plain_rmw)
                .then(|| {
                    format!(
                        "reader holds {} at {}; writer at {} holds none",
                        r.locks.join(", "),
                        loc_str(r),
                        loc_str(w)
                    )
                })
        },
    },
    Rule {
        name: "control-dependency",
        detects: "the plain read decides control flow (if/loop/return condition) outside diagnostics",
        direction: Direction::Harmful,
        check: |f| {
            located(f)
                .find(|a| {
                    a.condition
                        && !a.store
                        && a.diagnostic.is_none()
                        && a.marker.is_none()
                        && !a.marked_in_report
                        && !a.rechecked_under_lock
                })
                .map(|a| format!("{} branches on the racy value", loc_str(a)))
        },
    },
    Rule {
        name: "state-field",
        detects: "the racing field is a state/mode/ops/callback field: a stale or mixed value changes behaviour",
        direction: Direction::Harmful,
        check: |f| {
            let field = f.field.as_deref()?;
            let n = field.to_ascii_lowercase();
            [
                "state", "status", "mode", "ops", "func", "handler", "callback", "cb", "owner",
                "net", "sk", "id",
            ]
            .iter()
            .any(|k| n == *k || n.ends_with(&format!("_{k}")) || n.starts_with(&format!("{k}_")))
            .then(|| format!("field `{field}`"))
        },
    },
    Rule {
        name: "documented-race",
        detects: "a comment next to the access says the race is intended (racy, stale, approximate, hint, harmless…)",
        direction: Direction::Benign,
        check: |f| {
            located(f).find_map(|a| {
                a.race_comment
                    .as_ref()
                    .map(|c| format!("near {}: `{c}`", loc_str(a)))
            })
        },
    },
    Rule {
        name: "annotated-since-report",
        detects: "the report shows plain accesses but the (newer) tree wraps the racing line in data_race()/READ_ONCE()/WRITE_ONCE(): maintainers annotated it as intended (not when the loaded value is dereferenced, called or used as an index, and not for a marked read-modify-write: there the marking is a fix)",
        direction: Direction::Benign,
        check: |f| {
            if !f.tree_newer || pointer_or_index_use(f).is_some() {
                return None;
            }
            located(f)
                .find(|a| {
                    !a.marked_in_report
                        && !a.marked_rmw
                        && matches!(
                            a.marker.as_deref(),
                            Some("data_race" | "READ_ONCE" | "WRITE_ONCE" | "__data_racy")
                        )
                })
                .map(|a| {
                    format!(
                        "{} uses {}",
                        loc_str(a),
                        a.marker.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "made-atomic-since-report",
        detects: "the report shows a plain access but the (newer) tree uses an atomic or release/acquire operation on that line: the race was fixed, not annotated",
        direction: Direction::Harmful,
        check: |f| {
            if !f.tree_newer {
                return None;
            }
            located(f)
                .find(|a| {
                    !a.marked_in_report
                        && a.marker.as_deref().is_some_and(|m| {
                            m.starts_with("atomic")
                                || m.contains("cmpxchg")
                                || m == "xchg"
                                || m.starts_with("smp_")
                                || m.starts_with("refcount")
                        })
                })
                .map(|a| {
                    format!(
                        "{} uses {}",
                        loc_str(a),
                        a.marker.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "common-lock-now",
        detects: "both racing lines now run under the same lock in the (newer) tree, which they cannot have done when KCSAN reported them: a lock was added to fix the race",
        direction: Direction::Harmful,
        check: |f| {
            if !f.tree_newer || f.accesses.len() != 2 {
                return None;
            }
            let (a, b) = (&f.accesses[0], &f.accesses[1]);
            a.lock_objects
                .iter()
                .find(|l| b.lock_objects.contains(l) && !l.starts_with("rcu"))
                .map(|l| format!("both {} and {} hold `{l}`", loc_str(a), loc_str(b)))
        },
    },
    Rule {
        name: "fixed-by-single-load",
        detects: "the report shows plain accesses; the (newer) tree loads the field once with READ_ONCE()/rcu_dereference() and then dereferences, calls or indexes with the loaded value: the reload race was fixed",
        direction: Direction::Harmful,
        check: |f| {
            if !f.tree_newer {
                return None;
            }
            located(f)
                .find(|a| {
                    !a.marked_in_report
                        && !a.store
                        && a.deref_after.is_some()
                        && matches!(
                            a.marker.as_deref(),
                            Some("READ_ONCE" | "rcu_dereference" | "smp_load_acquire")
                        )
                })
                .map(|a| {
                    format!(
                        "{} then {}",
                        loc_str(a),
                        a.deref_after.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "reloaded-after-check",
        detects: "the reader tests the field (NULL/zero check) and then reads it again to use it, while the writer clears or replaces it: the second load can see what the check excluded",
        direction: Direction::Harmful,
        check: |f| {
            let writer_clears = f.accesses.iter().any(|a| {
                a.stores_constant
                    .as_deref()
                    .is_some_and(|c| c == "NULL" || c == "0")
            }) || f.value.as_ref().is_some_and(|v| v.to_or_from_zero);
            if !writer_clears {
                return None;
            }
            located(f)
                .find(|a| a.reloaded_after_check.is_some())
                .map(|a| {
                    format!(
                        "checked near {} and reloaded at {}",
                        loc_str(a),
                        a.reloaded_after_check.as_deref().unwrap_or_default()
                    )
                })
        },
    },
    Rule {
        name: "unlocked-rmw-writer",
        detects: "the writer does a plain read-modify-write without the lock the reader holds: updates made under the lock can be lost",
        direction: Direction::Harmful,
        check: |f| {
            let w = located(f).find(|a| a.store && a.plain_rmw && a.marker.is_none())?;
            let r = located(f).find(|a| !a.store)?;
            (w.locks.is_empty() && !r.locks.is_empty()).then(|| {
                format!(
                    "writer {} holds no lock; reader holds {}",
                    loc_str(w),
                    r.locks.join(", ")
                )
            })
        },
    },
    Rule {
        name: "sentinel-not-rechecked",
        detects: "the writer stores a negative sentinel (-1, -EINVAL) and the reader uses the field without comparing it: the sentinel leaks into the reader's result",
        direction: Direction::Harmful,
        check: |f| {
            let w = located(f).find(|a| a.stores_sentinel.is_some())?;
            let r = located(f).find(|a| !a.store)?;
            (!r.condition && r.diagnostic.is_none()).then(|| {
                format!(
                    "{} stores {}; {} uses it unchecked",
                    loc_str(w),
                    w.stores_sentinel.as_deref().unwrap_or_default(),
                    loc_str(r)
                )
            })
        },
    },
    Rule {
        name: "initialised-while-visible",
        detects: "a plain store in an initialisation function (…_init, …_create, …_alloc, …_setup) races with a reader elsewhere: the object is reachable before it is initialised",
        direction: Direction::Harmful,
        check: |f| {
            let w = located(f).find(|a| {
                a.store
                    && a.marker.is_none()
                    && !a.marked_in_report
                    && a.location
                        .as_ref()
                        .is_some_and(|l| is_initialiser(&l.frame))
            })?;
            let r = located(f).find(|a| !a.store)?;
            let (wl, rl) = (w.location.as_ref()?, r.location.as_ref()?);
            (wl.frame != rl.frame).then(|| {
                format!(
                    "{} initialises the field while {} reads it",
                    wl.frame, rl.frame
                )
            })
        },
    },
    Rule {
        name: "enum-state-field",
        detects: "the field is stored or compared with an enumerator/named constant (checked in the index): a state machine, where a stale state changes behaviour",
        direction: Direction::Harmful,
        check: |f| {
            located(f).find(|a| a.enum_constant.is_some()).map(|a| {
                format!(
                    "{} uses `{}`",
                    loc_str(a),
                    a.enum_constant.as_deref().unwrap_or_default()
                )
            })
        },
    },
];

/// The loaded value of a racing read is dereferenced, called or used as an index, or the
/// value change is a pointer: marking such a load fixes a bug rather than documenting a race.
fn pointer_or_index_use(f: &RaceFacts) -> Option<&AccessFacts> {
    if f.value.as_ref().is_some_and(|v| v.pointer_like) || f.field_is_pointer == Some(true) {
        return f.accesses.iter().find(|a| a.location.is_some());
    }
    located(f).find(|a| a.deref_after.is_some())
}

/// Ordering primitives: a load or store with acquire/release or RCU semantics.
fn is_ordering(marker: &str) -> bool {
    marker.starts_with("smp_") || marker.starts_with("rcu_")
}

/// Function names that by kernel convention initialise an object.
fn is_initialiser(frame: &str) -> bool {
    let f = super::super::source::base_function_name(frame);
    ["_init", "_create", "_alloc", "_setup"]
        .iter()
        .any(|s| f.ends_with(s) || f.contains(&format!("{s}_")))
}

/// Fires every rule. Weights are filled in by the caller from the fitted table.
pub fn evaluate(facts: &RaceFacts) -> Vec<Fired> {
    RULES
        .iter()
        .filter_map(|r| {
            (r.check)(facts).map(|reason| Fired {
                rule: r.name,
                direction: r.direction,
                weight: 0.0,
                later_tree: is_later_tree(r.name),
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::facts::ValueFacts;
    use super::super::locate::{Location, Method};
    use super::*;

    fn access(text: &str, store: bool) -> AccessFacts {
        AccessFacts {
            operation: if store { "write" } else { "read" },
            size: 8,
            marked_in_report: false,
            location: Some(Location {
                frame: "f".into(),
                file: "k/a.c".into(),
                line: 10,
                text: text.into(),
                function: None,
                method: Method::Exact,
            }),
            marker: None,
            plain_rmw: false,
            store,
            diagnostic: None,
            condition: false,
            container_op: None,
            deref_after: None,
            stores_constant: None,
            locks: vec![],
            rechecked_under_lock: false,
            race_comment: None,
            lock_objects: vec![],
            reloaded_after_check: None,
            enum_constant: None,
            stores_sentinel: None,
            marked_rmw: false,
        }
    }

    fn facts(a: AccessFacts, b: AccessFacts) -> RaceFacts {
        RaceFacts {
            accesses: vec![a, b],
            field: None,
            field_kind: None,
            value: None,
            same_function: false,
            kernel_release: None,
            same_version: false,
            tree_newer: false,
            field_is_pointer: None,
        }
    }

    fn fires(name: &str, f: &RaceFacts) -> bool {
        let rule = RULES.iter().find(|r| r.name == name).unwrap();
        (rule.check)(f).is_some()
    }

    #[test]
    fn rule_names_are_unique() {
        let mut names: Vec<_> = RULES.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }

    #[test]
    fn diagnostic_read() {
        let mut r = access("WARN_ON(x->t == current);", false);
        r.diagnostic = Some("WARN_ON".into());
        assert!(fires(
            "diagnostic-read",
            &facts(access("x->t = NULL;", true), r)
        ));
        assert!(!fires(
            "diagnostic-read",
            &facts(access("x->t = NULL;", true), access("if (x->t)", false))
        ));
    }

    #[test]
    fn statistics_field() {
        let mut f = facts(access("a", true), access("b", false));
        assert!(!fires("statistics-field", &f));
        f.field = Some("failcnt".into());
        f.field_kind = Some("counter");
        assert!(fires("statistics-field", &f));
        f.value = Some(ValueFacts {
            old: 0,
            new: 0xffff_8881_0000_0000,
            bits_changed: 9,
            delta: 1,
            pointer_like: true,
            to_or_from_zero: true,
        });
        assert!(
            !fires("statistics-field", &f),
            "a pointer is not a statistic"
        );
    }

    #[test]
    fn one_side_marked_needs_exactly_one_unmarked() {
        let mut w = access("WRITE_ONCE(x->a, 1);", true);
        w.marker = Some("WRITE_ONCE".into());
        assert!(fires(
            "one-side-marked",
            &facts(w.clone(), access("if (x->a)", false))
        ));
        let mut r = access("READ_ONCE(x->a)", false);
        r.marked_in_report = true;
        assert!(!fires("one-side-marked", &facts(w, r)));
    }

    #[test]
    fn flag_or_small_change_and_pointer_rules() {
        let mut f = facts(access("a", true), access("b", false));
        f.value = Some(ValueFacts {
            old: 0,
            new: 1,
            bits_changed: 1,
            delta: 1,
            pointer_like: false,
            to_or_from_zero: true,
        });
        assert!(fires("flag-or-small-change", &f));
        assert!(!fires("pointer-cleared-or-set", &f));
        f.value = Some(ValueFacts {
            old: 0xffff_8881_223d_0000,
            new: 0,
            bits_changed: 20,
            delta: 1,
            pointer_like: true,
            to_or_from_zero: true,
        });
        assert!(!fires("flag-or-small-change", &f));
        assert!(fires("pointer-cleared-or-set", &f));
    }

    #[test]
    fn constant_store() {
        let mut w = access("x->a = NULL;", true);
        w.stores_constant = Some("NULL".into());
        assert!(fires("constant-store", &facts(w, access("b", false))));
    }

    #[test]
    fn rechecked_under_lock() {
        let mut r = access("if (x->a)", false);
        r.rechecked_under_lock = true;
        assert!(fires(
            "rechecked-under-lock",
            &facts(access("x->a = 1;", true), r.clone())
        ));
        // A re-checked read is not a harmful control dependency.
        r.condition = true;
        assert!(!fires(
            "control-dependency",
            &facts(access("x->a = 1;", true), r)
        ));
    }

    #[test]
    fn lossy_rmw_needs_two_writers() {
        let mut w = access("x->n++;", true);
        w.plain_rmw = true;
        assert!(fires(
            "lossy-read-modify-write",
            &facts(w.clone(), w.clone())
        ));
        assert!(!fires(
            "lossy-read-modify-write",
            &facts(w.clone(), access("v = x->n;", false))
        ));
        let mut rw = access("x->n++;", true);
        rw.operation = "read-write";
        assert!(fires(
            "lossy-read-modify-write",
            &facts(rw.clone(), access("v = x->n;", false))
        ));
        w.marker = Some("atomic_inc".into());
        assert!(!fires("lossy-read-modify-write", &facts(w.clone(), w)));
    }

    #[test]
    fn pointer_dereferenced() {
        let mut r = access("p = x->ptr;", false);
        r.deref_after = Some("k/a.c:12: p->ops->f(p);".into());
        let with_field = |w: AccessFacts, r: AccessFacts| {
            let mut f = facts(w, r);
            f.field = Some("ptr".into());
            f
        };
        assert!(fires(
            "pointer-dereferenced",
            &with_field(access("x->ptr = q;", true), r.clone())
        ));
        let mut call = access("b = get_rsv(ptr, root);", false);
        call.deref_after = r.deref_after.clone();
        assert!(
            !fires(
                "pointer-dereferenced",
                &with_field(access("x->ptr = q;", true), call)
            ),
            "a call taking the variable is not a load of the member"
        );
        r.diagnostic = Some("WARN_ON".into());
        assert!(!fires(
            "pointer-dereferenced",
            &with_field(access("x->ptr = q;", true), r)
        ));
    }

    #[test]
    fn linked_structure_needs_a_store() {
        let mut w = access("list_del(&e->node);", true);
        w.container_op = Some("list_del".into());
        assert!(fires("linked-structure", &facts(w, access("b", false))));
        let mut r = access("if (list_empty(&q))", false);
        r.container_op = Some("list_empty".into());
        assert!(!fires("linked-structure", &facts(access("a", true), r)));
    }

    #[test]
    fn unlocked_writer_vs_locked_reader() {
        let mut r = access("v = x->a;", false);
        r.locks = vec!["spin_lock(&x->lock)".into()];
        assert!(fires(
            "unlocked-writer-vs-locked-reader",
            &facts(access("x->a = 1;", true), r.clone())
        ));
        let mut w = access("x->a = 1;", true);
        w.locks = vec!["spin_lock(&x->lock)".into()];
        assert!(!fires("unlocked-writer-vs-locked-reader", &facts(w, r)));
    }

    #[test]
    fn control_dependency_and_state_field() {
        let mut r = access("if (x->state == RUNNING)", false);
        r.condition = true;
        let mut f = facts(access("x->state = DONE;", true), r);
        assert!(fires("control-dependency", &f));
        f.field = Some("state".into());
        assert!(fires("state-field", &f));
        f.field = Some("statement".into());
        assert!(!fires("state-field", &f));
    }

    #[test]
    fn documented_race() {
        let mut r = access("v = x->hint;", false);
        assert!(!fires(
            "documented-race",
            &facts(access("x->hint = 1;", true), r.clone())
        ));
        r.race_comment = Some("/* racy, but only a hint */".into());
        assert!(fires(
            "documented-race",
            &facts(access("x->hint = 1;", true), r)
        ));
    }

    #[test]
    fn changes_since_report_need_a_newer_tree() {
        let mut w = access("data_race(c->failcnt++);", true);
        w.marker = Some("data_race".into());
        let mut f = facts(w, access("v = c->failcnt;", false));
        assert!(!fires("annotated-since-report", &f));
        f.tree_newer = true;
        assert!(fires("annotated-since-report", &f));
        f.accesses[0].marked_in_report = true;
        assert!(
            !fires("annotated-since-report", &f),
            "marked in the report already: nothing changed"
        );
        let mut w = access("atomic_set(&x->id, v);", true);
        w.marker = Some("atomic_set".into());
        let mut f = facts(w, access("v = x->id;", false));
        f.tree_newer = true;
        assert!(fires("made-atomic-since-report", &f));
        assert!(!fires("annotated-since-report", &f));
    }

    #[test]
    fn common_lock_now() {
        let mut a = access("x->a = 1;", true);
        let mut b = access("v = x->a;", false);
        a.lock_objects = vec!["securetcp_lock".into()];
        b.lock_objects = vec!["securetcp_lock".into()];
        let mut f = facts(a, b);
        assert!(!fires("common-lock-now", &f));
        f.tree_newer = true;
        assert!(fires("common-lock-now", &f));
        f.accesses[1].lock_objects = vec!["other_lock".into()];
        assert!(!fires("common-lock-now", &f));
    }

    #[test]
    fn pointer_test_only_reader_does_not_fire_pointer_rule() {
        let mut r = access("if (po->fanout)", false);
        r.condition = true;
        let mut f = facts(access("po->fanout = match;", true), r);
        f.value = Some(ValueFacts {
            old: 0,
            new: 0xffff_8881_06f8_c000,
            bits_changed: 20,
            delta: 1,
            pointer_like: true,
            to_or_from_zero: true,
        });
        assert!(!fires("pointer-cleared-or-set", &f));
        f.accesses[1].condition = false;
        assert!(fires("pointer-cleared-or-set", &f));
    }

    #[test]
    fn later_tree_rules_are_rules() {
        for name in LATER_TREE_RULES {
            assert!(RULES.iter().any(|r| r.name == *name), "{name}");
        }
    }

    fn newer(mut f: RaceFacts) -> RaceFacts {
        f.tree_newer = true;
        f
    }

    #[test]
    fn annotated_since_report_is_not_credited_for_a_fixed_pointer_load() {
        let mut r = access("es = READ_ONCE(tree->cache_es);", false);
        r.marker = Some("READ_ONCE".into());
        let plain = newer(facts(access("tree->cache_es = es;", true), r.clone()));
        assert!(fires("annotated-since-report", &plain));
        assert!(!fires("fixed-by-single-load", &plain));
        r.deref_after = Some("k/a.c:12: if (es && es->len)".into());
        let deref = newer(facts(access("tree->cache_es = es;", true), r));
        assert!(!fires("annotated-since-report", &deref));
        assert!(fires("fixed-by-single-load", &deref));
        assert!(
            !fires("fixed-by-single-load", &{
                let mut f = deref.clone();
                f.tree_newer = false;
                f
            }),
            "only a newer tree can show the fix"
        );
    }

    #[test]
    fn marked_read_modify_write_is_not_an_annotation() {
        let mut w = access("WRITE_ONCE(rnp->expmask, rnp->expmask & ~mask);", true);
        w.marker = Some("WRITE_ONCE".into());
        let f = newer(facts(w.clone(), access("x = rnp->expmask;", false)));
        assert!(fires("annotated-since-report", &f));
        w.marked_rmw = true;
        let f = newer(facts(w, access("x = rnp->expmask;", false)));
        assert!(!fires("annotated-since-report", &f));
    }

    #[test]
    fn reloaded_after_check_needs_a_clearing_writer() {
        let mut r = access("if (!tctx || !tctx->io_wq)", false);
        r.reloaded_after_check = Some("k/a.c:12: cancel(tctx->io_wq);".into());
        let mut w = access("tctx->io_wq = NULL;", true);
        assert!(!fires("reloaded-after-check", &facts(w.clone(), r.clone())));
        w.stores_constant = Some("NULL".into());
        assert!(fires("reloaded-after-check", &facts(w, r)));
    }

    #[test]
    fn unlocked_writer_rules_split_on_read_modify_write() {
        let mut r = access("used = s->bytes;", false);
        r.locks = vec!["spin_lock(&s->lock)".into()];
        let w = access("s->bytes = 0;", true);
        let plain = facts(w.clone(), r.clone());
        assert!(fires("unlocked-writer-vs-locked-reader", &plain));
        assert!(!fires("unlocked-rmw-writer", &plain));
        let mut rmw = w;
        rmw.plain_rmw = true;
        let f = facts(rmw, r);
        assert!(fires("unlocked-rmw-writer", &f));
        assert!(!fires("unlocked-writer-vs-locked-reader", &f));
    }

    #[test]
    fn sentinel_not_rechecked() {
        let mut w = access("i_mark->wd = -1;", true);
        w.stores_sentinel = Some("-1".into());
        assert!(fires(
            "sentinel-not-rechecked",
            &facts(w.clone(), access("ev->wd = mark->wd;", false))
        ));
        let mut check = access("if (mark->wd == -1)", false);
        check.condition = true;
        assert!(!fires("sentinel-not-rechecked", &facts(w, check)));
    }

    #[test]
    fn initialised_while_visible_needs_an_initialiser_and_another_reader() {
        let mut w = access("sksec->sid = sid;", true);
        w.location.as_mut().unwrap().frame = "selinux_socket_post_create".into();
        let mut r = access("u32 s = sksec->sid;", false);
        r.location.as_mut().unwrap().frame = "sock_rcv".into();
        assert!(fires(
            "initialised-while-visible",
            &facts(w.clone(), r.clone())
        ));
        let mut marked = w.clone();
        marked.marker = Some("WRITE_ONCE".into());
        assert!(!fires(
            "initialised-while-visible",
            &facts(marked, r.clone())
        ));
        let mut other = w;
        other.location.as_mut().unwrap().frame = "sock_update".into();
        assert!(!fires("initialised-while-visible", &facts(other, r)));
    }

    #[test]
    fn enum_state_field_and_statistics_exclusions() {
        let mut r = access("if (rdp->defer_qs_pending != DEFER_QS_PENDING)", false);
        let mut f = facts(access("x", true), r.clone());
        f.field = Some("defer_qs_pending".into());
        f.field_kind = Some("counter");
        assert!(fires("statistics-field", &f));
        assert!(!fires("enum-state-field", &f));
        r.enum_constant = Some("DEFER_QS_PENDING".into());
        let mut g = facts(access("x", true), r);
        g.field = f.field.clone();
        g.field_kind = f.field_kind;
        assert!(fires("enum-state-field", &g));
        assert!(!fires("statistics-field", &g), "a state is not a statistic");
        f.field_is_pointer = Some(true);
        assert!(
            !fires("statistics-field", &f),
            "a pointer is never a statistic"
        );
    }

    #[test]
    fn rechecked_under_lock_ignores_acquire_loads() {
        let mut r = access("stats = smp_load_acquire(&sig->stats);", false);
        r.rechecked_under_lock = true;
        assert!(fires(
            "rechecked-under-lock",
            &facts(access("x", true), r.clone())
        ));
        r.marker = Some("smp_load_acquire".into());
        assert!(!fires("rechecked-under-lock", &facts(access("x", true), r)));
    }

    #[test]
    fn every_rule_is_exercised_by_a_test() {
        // Guards against a rule added without a test: the names below are the tested ones.
        let src = include_str!("rules.rs");
        let tests = &src[src.find("mod tests").unwrap_or(0)..];
        for r in RULES {
            assert!(
                tests.contains(&format!("\"{}\"", r.name)),
                "rule {} has no test",
                r.name
            );
        }
    }
}
