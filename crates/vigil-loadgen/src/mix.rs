//! Which kind of client each connection is: `--kind healthy` for all, or a
//! mix by weight (`healthy=90,silent=5,half-open=5`), spread evenly over
//! the ramp so that every kind meets the server at every load.

use anyhow::{Result, bail};

use crate::cli::Kind;

/// Kinds and their weights, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mix(Vec<(Kind, u32)>);

impl Mix {
    /// One kind for every connection.
    pub(crate) fn only(kind: Kind) -> Mix {
        Mix(vec![(kind, 1)])
    }

    /// `KIND` or `KIND=WEIGHT,KIND=WEIGHT,...` (weights are whole numbers,
    /// often percentages; a kind may appear once).
    pub(crate) fn parse(text: &str) -> Result<Mix> {
        let mut parts = Vec::new();
        for part in text.split(',') {
            let (name, weight) = match part.split_once('=') {
                Some((name, weight)) => {
                    let Ok(weight) = weight.trim().parse::<u32>() else {
                        bail!("`{part}`: the weight must be a whole number");
                    };
                    (name.trim(), weight)
                }
                None => (part.trim(), 1),
            };
            let Some(kind) = Kind::from_name(name) else {
                bail!(
                    "unknown kind `{name}` (known: {})",
                    Kind::ALL.map(Kind::name).join(", ")
                );
            };
            if parts.iter().any(|&(seen, _)| seen == kind) {
                bail!("kind `{name}` is given twice");
            }
            parts.push((kind, weight));
        }
        if parts.iter().all(|&(_, weight)| weight == 0) {
            bail!("`{text}`: at least one kind needs a weight above 0");
        }
        Ok(Mix(parts))
    }

    /// The kind of each of `n` connections: smooth weighted round-robin, so
    /// each kind's share holds over any stretch of the ramp and the counts
    /// are exact to within one.
    pub(crate) fn assign(&self, n: usize) -> Vec<Kind> {
        let total: i64 = self.0.iter().map(|&(_, weight)| i64::from(weight)).sum();
        let mut current: Vec<i64> = vec![0; self.0.len()];
        (0..n)
            .map(|_| {
                for (credit, &(_, weight)) in current.iter_mut().zip(&self.0) {
                    *credit += i64::from(weight);
                }
                let (best, _) = current
                    .iter()
                    .enumerate()
                    .max_by_key(|&(index, credit)| (*credit, std::cmp::Reverse(index)))
                    .expect("a mix has at least one kind");
                current[best] -= total;
                self.0[best].0
            })
            .collect()
    }

    /// Whether every connection is of `kind`.
    pub(crate) fn only_of(&self, kind: Kind) -> bool {
        self.0.iter().all(|&(k, weight)| k == kind || weight == 0)
    }

    /// Whether some connection will be of `kind`.
    pub(crate) fn has(&self, kind: Kind) -> bool {
        self.0.iter().any(|&(k, weight)| k == kind && weight > 0)
    }

    /// How the command line would write it.
    pub(crate) fn describe(&self) -> String {
        match self.0.as_slice() {
            [(kind, _)] => kind.name().to_owned(),
            parts => parts
                .iter()
                .map(|(kind, weight)| format!("{}={weight}", kind.name()))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_is_spread_evenly_with_exact_counts() {
        let mix = Mix::parse("healthy=90,silent=5,half-open=5").expect("valid");
        let kinds = mix.assign(1_000);
        let count = |kind| kinds.iter().filter(|&&k| k == kind).count();
        assert_eq!(count(Kind::Healthy), 900);
        assert_eq!(count(Kind::Silent), 50);
        assert_eq!(count(Kind::HalfOpen), 50);
        // Every stretch of 100 connections holds 5 silent ones, give or take one.
        for window in kinds.chunks(100) {
            let silent = window.iter().filter(|&&k| k == Kind::Silent).count();
            assert!((4..=6).contains(&silent), "{silent} silent in a window");
        }
    }

    #[test]
    fn one_kind_is_every_connection() {
        let kinds = Mix::parse("flapper").expect("valid").assign(7);
        assert_eq!(kinds, vec![Kind::Flapper; 7]);
        assert_eq!(Mix::only(Kind::Healthy).describe(), "healthy");
    }

    #[test]
    fn bad_mixes_say_what_is_wrong() {
        for (text, expected) in [
            ("sleepy", "unknown kind `sleepy`"),
            ("healthy=x", "weight must be a whole number"),
            ("healthy=1,healthy=2", "given twice"),
            ("healthy=0", "at least one kind needs a weight above 0"),
        ] {
            let error = Mix::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
