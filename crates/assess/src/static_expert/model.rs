//! How the static expert weighs its evidence: a regularised logistic regression over the fired
//! rules and the location quality, fitted by `racejudge eval DIR --fit-weights FILE` and checked
//! in as a small table (`weights.tsv`), instead of weights tuned by hand per report.
//!
//! The score is the log-odds that the race is benign: `intercept + Σ weight(feature) · value`.
//! Rules that read the *newer* tree for evidence the report's own tree cannot hold ("annotated
//! since the report", "a lock was added since") are never features of the verdict: a production
//! report is assessed on the tree it was found on, where they cannot fire, so letting them decide
//! would only flatter an evaluation on a later tree (see [`super::rules::Rule::later_tree`]).
//! They stay in the explanation; `eval` reports a second figure with them, for comparison.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::rules::{self, Fired};

/// Feature name → value (0 or 1 for rules; absent means 0).
pub type Features = BTreeMap<String, f64>;

/// L2 penalty on the feature weights (not the intercept). Chosen before looking at any figure:
/// about one report's worth of evidence per unit of weight, so a rule seen on a handful of
/// reports cannot swing the verdict alone.
pub const L2: f64 = 1.0;

/// The probability from which a verdict is called confident. The fitted probability is
/// calibrated (see `eval`'s reliability table), so a confident verdict is right about this often.
pub const CONFIDENT_AT: f64 = 0.9;

const WEIGHTS_TSV: &str = include_str!("weights.tsv");

/// A fitted weight table.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub intercept: f64,
    pub by_feature: BTreeMap<String, f64>,
}

impl Weights {
    /// The checked-in table the expert uses.
    pub fn checked_in() -> &'static Weights {
        static W: OnceLock<Weights> = OnceLock::new();
        W.get_or_init(|| {
            // The file is checked by a unit test; an unparsable one falls back to the prior only.
            Weights::parse(WEIGHTS_TSV).unwrap_or(Weights {
                intercept: 0.0,
                by_feature: BTreeMap::new(),
            })
        })
    }

    /// Log-odds of benign.
    pub fn score(&self, features: &Features) -> f64 {
        self.intercept
            + features
                .iter()
                .map(|(name, value)| self.by_feature.get(name).copied().unwrap_or(0.0) * value)
                .sum::<f64>()
    }

    pub fn weight(&self, feature: &str) -> f64 {
        self.by_feature.get(feature).copied().unwrap_or(0.0)
    }

    /// `name<TAB>weight` lines; `#` comments; one `intercept` line.
    pub fn parse(text: &str) -> Result<Weights, String> {
        let mut intercept = None;
        let mut by_feature = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line
                .split_once('\t')
                .ok_or_else(|| format!("line {}: expected name<TAB>weight", n + 1))?;
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("line {}: {value:?} is not a number", n + 1))?;
            if name == "intercept" {
                intercept = Some(value);
            } else {
                by_feature.insert(name.to_string(), value);
            }
        }
        Ok(Weights {
            intercept: intercept.ok_or("no intercept line")?,
            by_feature,
        })
    }

    pub fn to_tsv(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("intercept\t{:.4}\n", self.intercept));
        for (name, w) in &self.by_feature {
            out.push_str(&format!("{name}\t{w:.4}\n"));
        }
        out
    }
}

/// Where the two accesses were found: the expert's rules on lines it did not find are guesses.
#[derive(Debug, Clone, Copy)]
pub struct LocationQuality {
    pub accesses: usize,
    pub located: usize,
    pub exact: usize,
}

/// The features of one assessment. `later_tree` adds the later-tree rules (evaluation only).
pub fn features(fired: &[Fired], quality: LocationQuality, later_tree: bool) -> Features {
    let mut out = Features::new();
    for f in fired {
        if later_tree || !rules::is_later_tree(f.rule) {
            out.insert(format!("rule:{}", f.rule), 1.0);
        }
    }
    if quality.located == 0 {
        out.insert("located:none".into(), 1.0);
    } else if quality.located < quality.accesses {
        out.insert("located:partly".into(), 1.0);
    } else if quality.exact == quality.accesses {
        out.insert("located:exact".into(), 1.0);
    }
    out
}

/// Every feature name the expert can produce, for checking a weight table.
pub fn known_features() -> Vec<String> {
    let mut names: Vec<String> = rules::RULES
        .iter()
        .map(|r| format!("rule:{}", r.name))
        .collect();
    names.extend(["located:none", "located:partly", "located:exact"].map(String::from));
    names
}

/// One labelled example.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    pub benign: bool,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Probability that the race is benign, from a score.
pub fn probability_benign(score: f64) -> f64 {
    sigmoid(score)
}

/// Fits L2-regularised logistic regression by Newton's method (the problem is tiny and convex:
/// a few dozen features, at most a few hundred reports), deterministic for a given input.
pub fn fit(examples: &[Example], l2: f64) -> Weights {
    let names: Vec<String> = {
        let mut set = std::collections::BTreeSet::new();
        for e in examples {
            set.extend(e.features.keys().cloned());
        }
        set.into_iter().collect()
    };
    let dim = names.len() + 1; // intercept last
    let rows: Vec<Vec<f64>> = examples
        .iter()
        .map(|e| {
            let mut x: Vec<f64> = names
                .iter()
                .map(|n| e.features.get(n).copied().unwrap_or(0.0))
                .collect();
            x.push(1.0);
            x
        })
        .collect();
    let y: Vec<f64> = examples
        .iter()
        .map(|e| if e.benign { 1.0 } else { 0.0 })
        .collect();
    let mut w = vec![0.0; dim];
    for _ in 0..50 {
        let mut grad = vec![0.0; dim];
        let mut hess = vec![vec![0.0; dim]; dim];
        for (x, &t) in rows.iter().zip(&y) {
            let p = sigmoid(dot(x, &w));
            let s = p * (1.0 - p);
            for i in 0..dim {
                grad[i] += (p - t) * x[i];
                for j in 0..dim {
                    hess[i][j] += s * x[i] * x[j];
                }
            }
        }
        for i in 0..dim - 1 {
            grad[i] += l2 * w[i];
            hess[i][i] += l2;
        }
        // A tiny ridge on the intercept keeps the system solvable when every label is equal.
        hess[dim - 1][dim - 1] += 1e-6;
        let Some(step) = solve(hess, grad) else { break };
        let mut moved = 0.0f64;
        for i in 0..dim {
            w[i] -= step[i];
            moved = moved.max(step[i].abs());
        }
        if moved < 1e-9 {
            break;
        }
    }
    Weights {
        intercept: w[dim - 1],
        by_feature: names.into_iter().zip(w).collect(),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / pivot_row[col];
            if factor == 0.0 {
                continue;
            }
            for (cell, above) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *cell -= factor * above;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(features: &[&str], benign: bool) -> Example {
        Example {
            features: features.iter().map(|f| (f.to_string(), 1.0)).collect(),
            benign,
        }
    }

    #[test]
    fn fitting_learns_the_direction_of_informative_features() {
        let mut data = Vec::new();
        for _ in 0..20 {
            data.push(ex(&["rule:statistics-field"], true));
            data.push(ex(&["rule:pointer-dereferenced"], false));
            data.push(ex(&[], true));
        }
        data.push(ex(&["rule:statistics-field"], false));
        let w = fit(&data, L2);
        assert!(w.weight("rule:statistics-field") > 0.5, "{w:?}");
        assert!(w.weight("rule:pointer-dereferenced") < -0.5, "{w:?}");
        assert!(w.score(&ex(&["rule:pointer-dereferenced"], false).features) < 0.0);
        assert!(w.score(&ex(&[], true).features) > 0.0);
    }

    #[test]
    fn regularisation_keeps_a_rare_feature_from_deciding_alone() {
        let mut data: Vec<Example> = (0..40).map(|_| ex(&[], true)).collect();
        data.push(ex(&["rule:linked-structure"], false));
        let w = fit(&data, L2);
        // Unregularised, one harmful example would drive this weight to minus infinity.
        assert!(w.weight("rule:linked-structure") > -3.0, "{w:?}");
    }

    #[test]
    fn the_table_round_trips_and_the_checked_in_one_is_valid() {
        let w = Weights {
            intercept: 1.25,
            by_feature: [("rule:a".to_string(), -0.5)].into(),
        };
        assert_eq!(Weights::parse(&w.to_tsv("header")).unwrap(), w);
        let checked = Weights::parse(WEIGHTS_TSV).expect("weights.tsv parses");
        let known = known_features();
        for name in checked.by_feature.keys() {
            assert!(
                known.contains(name),
                "weights.tsv names unknown feature {name}"
            );
            assert!(
                !rules::is_later_tree(name.trim_start_matches("rule:")),
                "weights.tsv weighs later-tree evidence: {name}"
            );
        }
    }
}
