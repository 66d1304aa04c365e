//! Time ranges and how a summary is assembled from day rows.

use std::collections::BTreeMap;

use super::{DayStats, MICROS_PER_DAY};

/// Why a requested range is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeError {
    Inverted,
    TooLong { max_days: i64 },
}

/// A half-open range `[start_us, end_us)` of session start times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub start_us: i64,
    pub end_us: i64,
}

/// Default length of a range without a start: 30 days.
pub const DEFAULT_DAYS: i64 = 30;

impl Range {
    /// Resolves optional bounds. An unset end is "now" rounded up to the next minute: the
    /// same data (nothing starts in the future) and a stable cache key for a minute.
    pub fn resolve(
        start_us: Option<i64>,
        end_us: Option<i64>,
        now_us: i64,
        max_days: i64,
    ) -> Result<Self, RangeError> {
        const MINUTE: i64 = 60_000_000;
        let end = end_us.unwrap_or_else(|| (now_us.div_euclid(MINUTE) + 1) * MINUTE);
        let start = start_us.unwrap_or(end - DEFAULT_DAYS * MICROS_PER_DAY);
        if start >= end {
            return Err(RangeError::Inverted);
        }
        if end - start > max_days.saturating_mul(MICROS_PER_DAY) {
            return Err(RangeError::TooLong { max_days });
        }
        Ok(Self {
            start_us: start,
            end_us: end,
        })
    }

    /// Whole UTC days inside the range, `[first, last)` (empty when first >= last).
    pub fn full_days(&self) -> (i64, i64) {
        let first = self.start_us.div_euclid(MICROS_PER_DAY)
            + i64::from(self.start_us.rem_euclid(MICROS_PER_DAY) != 0);
        let last = self.end_us.div_euclid(MICROS_PER_DAY);
        (first, last)
    }

    /// The partial-day pieces not covered by [`Range::full_days`]; answered from facts.
    pub fn edges(&self) -> Vec<Range> {
        let (first, last) = self.full_days();
        if first >= last {
            return vec![*self];
        }
        let mut out = Vec::new();
        if self.start_us < first * MICROS_PER_DAY {
            out.push(Range {
                start_us: self.start_us,
                end_us: first * MICROS_PER_DAY,
            });
        }
        if self.end_us > last * MICROS_PER_DAY {
            out.push(Range {
                start_us: last * MICROS_PER_DAY,
                end_us: self.end_us,
            });
        }
        out
    }

    /// Every day touched by the range, `[first, last)`: the trend's points.
    pub fn touched_days(&self) -> (i64, i64) {
        (
            self.start_us.div_euclid(MICROS_PER_DAY),
            (self.end_us - 1).div_euclid(MICROS_PER_DAY) + 1,
        )
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Range {
        Range {
            start_us: self.start_us - (self.end_us - self.start_us),
            end_us: self.start_us,
        }
    }
}

/// A skill's score sum (thousandths) and sample count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkillSum {
    pub skill: String,
    pub score_milli_sum: i64,
    pub samples: i64,
}

impl SkillSum {
    pub fn average(&self) -> f64 {
        super::ratio(self.score_milli_sum as f64 / 1000.0, self.samples)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub totals: DayStats,
    /// One point per touched day, oldest first.
    pub trend: Vec<(i64, DayStats)>,
    /// Highest average first.
    pub skills: Vec<SkillSum>,
}

/// Assembles a summary from per-day numbers and per-skill sums.
pub fn build(
    range: &Range,
    days: &BTreeMap<i64, DayStats>,
    skills: &BTreeMap<String, (i64, i64)>,
) -> Summary {
    let mut totals = DayStats::default();
    for s in days.values() {
        totals.add(s);
    }
    let (first, last) = range.touched_days();
    let trend = (first..last)
        .map(|d| (d, days.get(&d).copied().unwrap_or_default()))
        .collect();
    let mut skills: Vec<SkillSum> = skills
        .iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(skill, (sum, n))| SkillSum {
            skill: skill.clone(),
            score_milli_sum: *sum,
            samples: *n,
        })
        .collect();
    // Highest average first; compare exactly (sum_a/n_a vs sum_b/n_b) to keep ties stable.
    skills.sort_by(|a, b| {
        (i128::from(b.score_milli_sum) * i128::from(a.samples))
            .cmp(&(i128::from(a.score_milli_sum) * i128::from(b.samples)))
            .then_with(|| a.skill.cmp(&b.skill))
    });
    Summary {
        totals,
        trend,
        skills,
    }
}

/// "YYYY-MM-DD" of a day number.
pub fn date_string(day: i64) -> String {
    // 719_163 is 1970-01-01 counted from 0001-01-01.
    i32::try_from(day + 719_163)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Competition ranking ("1, 1, 3") of `(key, value)` pairs, best first; ties by key.
pub fn rank<T: Clone>(mut rows: Vec<(String, f64, T)>) -> Vec<(i32, String, f64, T)> {
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::with_capacity(rows.len());
    let mut rank = 0;
    let mut prev: Option<f64> = None;
    for (i, (key, value, extra)) in rows.into_iter().enumerate() {
        if prev != Some(value) {
            rank = i as i32 + 1;
            prev = Some(value);
        }
        out.push((rank, key, value, extra));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_full_days_and_edges() {
        let d = MICROS_PER_DAY;
        let r = Range {
            start_us: 10 * d + 5,
            end_us: 13 * d + 7,
        };
        assert_eq!(r.full_days(), (11, 13));
        assert_eq!(r.edges().len(), 2);
        assert_eq!(r.touched_days(), (10, 14));
        let aligned = Range {
            start_us: 10 * d,
            end_us: 12 * d,
        };
        assert!(aligned.edges().is_empty());
        assert_eq!(aligned.touched_days(), (10, 12));
    }

    #[test]
    fn bad_ranges_are_refused() {
        let d = MICROS_PER_DAY;
        assert_eq!(
            Range::resolve(Some(5 * d), Some(d), 0, 366),
            Err(RangeError::Inverted)
        );
        assert_eq!(
            Range::resolve(Some(0), Some(400 * d), 0, 366),
            Err(RangeError::TooLong { max_days: 366 })
        );
    }

    #[test]
    fn ties_share_a_rank() {
        let r = rank(vec![
            ("a".into(), 1.0, ()),
            ("b".into(), 3.0, ()),
            ("c".into(), 3.0, ()),
        ]);
        let ranks: Vec<i32> = r.iter().map(|x| x.0).collect();
        assert_eq!(ranks, vec![1, 1, 3]);
        assert_eq!(date_string(0), "1970-01-01");
    }
}
