//! The labelled set's rules, plain Rust: reading a call file, `rubric.json` and
//! `scenarios.json` from their text, the bands and labels a manager gives, and comparing what a
//! grader made of the calls with those labels. Running the calls through the pipeline is
//! `app::eval`'s.
//!
//! A call file: `key: value` labels, a `---` line, then `rep:` / `customer:` turns.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Deserialize;

use super::types::{Criterion, GoalKind, RawTurn, Rubric};

/// A file of the set that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError(pub String);

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetError {}

macro_rules! set_error {
    ($($arg:tt)*) => { SetError(format!($($arg)*)) };
}

/// A criterion's expected band, on the normalised 0–100 scale. Bands overlap by a level so a
/// defensible neighbouring score is not a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Low,
    Mid,
    High,
}

impl Band {
    fn parse(s: &str) -> Option<Band> {
        match s.trim() {
            "low" => Some(Band::Low),
            "mid" => Some(Band::Mid),
            "high" => Some(Band::High),
            _ => None,
        }
    }

    pub fn contains(self, normalised: f64) -> bool {
        match self {
            Band::Low => normalised <= 40.0,
            Band::Mid => (20.0..=80.0).contains(&normalised),
            Band::High => normalised >= 70.0,
        }
    }
}

/// The overall label, with the score range a manager reads it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Poor,
    Mediocre,
    Excellent,
}

impl Quality {
    fn parse(s: &str) -> Option<Quality> {
        match s.trim() {
            "poor" => Some(Quality::Poor),
            "mediocre" => Some(Quality::Mediocre),
            "excellent" => Some(Quality::Excellent),
            _ => None,
        }
    }

    pub fn contains(self, overall: f64) -> bool {
        match self {
            Quality::Poor => overall <= 35.0,
            Quality::Mediocre => overall > 35.0 && overall < 80.0,
            Quality::Excellent => overall >= 80.0,
        }
    }

    fn rank(self) -> f64 {
        match self {
            Quality::Poor => 0.0,
            Quality::Mediocre => 1.0,
            Quality::Excellent => 2.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabelledCall {
    /// The file name without `.txt`.
    pub id: String,
    pub scenario: String,
    /// (pair id, this is the better call of the pair).
    pub pair: Option<(String, bool)>,
    pub overall: Quality,
    pub closed: bool,
    pub bands: Vec<(String, Band)>,
    pub turns: Vec<RawTurn>,
}

/// What `scenarios.json` says of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    pub goal: GoalKind,
    pub product_brief: String,
    /// `None` when the file leaves it blank.
    pub persona_name: Option<String>,
    pub persona_role: String,
    pub persona_company: String,
}

#[derive(Deserialize)]
struct RubricFile {
    name: String,
    passing_score: f64,
    criteria: Vec<CriterionFile>,
}

#[derive(Deserialize)]
struct CriterionFile {
    id: String,
    skill: String,
    description: String,
    weight: f64,
    scale_min: i32,
    scale_max: i32,
    levels: Vec<(i32, String)>,
    #[serde(default)]
    signal_phrases: Vec<String>,
}

#[derive(Deserialize)]
struct ScenarioFile {
    goal: String,
    product_brief: String,
    persona: PersonaFile,
}

#[derive(Deserialize)]
struct PersonaFile {
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    company: String,
}

fn goal(s: &str) -> Result<GoalKind, SetError> {
    match s.trim() {
        "book_meeting" => Ok(GoalKind::BookMeeting),
        "agree_purchase" => Ok(GoalKind::AgreePurchase),
        other => match other.strip_prefix("custom:") {
            Some(text) if !text.trim().is_empty() => Ok(GoalKind::Custom(text.trim().into())),
            _ => Err(set_error!("unknown goal {other:?}")),
        },
    }
}

/// Reads `rubric.json`: the rubric's name and the rubric, validated.
pub fn parse_rubric(text: &str) -> Result<(String, Rubric), SetError> {
    let file: RubricFile =
        serde_json::from_str(text).map_err(|e| set_error!("parsing rubric.json: {e}"))?;
    let rubric = Rubric {
        passing_score: file.passing_score,
        criteria: file
            .criteria
            .into_iter()
            .map(|c| Criterion {
                id: c.id,
                skill: c.skill,
                description: c.description,
                weight: c.weight,
                scale_min: c.scale_min,
                scale_max: c.scale_max,
                levels: c.levels,
                signal_phrases: c.signal_phrases,
            })
            .collect(),
    };
    rubric
        .validate()
        .map_err(|e| set_error!("rubric.json: {e}"))?;
    Ok((file.name, rubric))
}

/// Reads `scenarios.json`: the scenarios by id.
pub fn parse_scenarios(text: &str) -> Result<BTreeMap<String, ScenarioSpec>, SetError> {
    let files: BTreeMap<String, ScenarioFile> =
        serde_json::from_str(text).map_err(|e| set_error!("parsing scenarios.json: {e}"))?;
    let mut scenarios = BTreeMap::new();
    for (id, s) in files {
        let goal = goal(&s.goal).map_err(|e| set_error!("scenario {id}: {e}"))?;
        scenarios.insert(
            id,
            ScenarioSpec {
                goal,
                product_brief: s.product_brief,
                persona_name: Some(s.persona.name).filter(|n| !n.trim().is_empty()),
                persona_role: s.persona.role,
                persona_company: s.persona.company,
            },
        );
    }
    Ok(scenarios)
}

/// Parses one call file.
pub fn parse_call(id: &str, text: &str, rubric: &Rubric) -> Result<LabelledCall, SetError> {
    let (head, body) = text
        .split_once("\n---\n")
        .ok_or_else(|| set_error!("no `---` line between labels and turns"))?;
    let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
    for line in head.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| set_error!("label line without `:`: {line:?}"))?;
        labels.insert(k.trim(), v.trim());
    }
    let label = |k: &str| {
        labels
            .get(k)
            .copied()
            .ok_or_else(|| set_error!("missing label `{k}`"))
    };
    let overall = Quality::parse(label("overall")?)
        .ok_or_else(|| set_error!("overall must be poor, mediocre or excellent"))?;
    let closed = match label("closed")? {
        "yes" => true,
        "no" => false,
        other => return Err(set_error!("closed must be yes or no, not {other:?}")),
    };
    let mut bands = Vec::new();
    for item in label("bands")?.split_whitespace() {
        let (c, b) = item
            .split_once('=')
            .ok_or_else(|| set_error!("band {item:?} is not criterion=band"))?;
        if rubric.criterion(c).is_none() {
            return Err(set_error!("band for unknown criterion {c:?}"));
        }
        let b = Band::parse(b).ok_or_else(|| set_error!("band {b:?} is not low, mid or high"))?;
        bands.push((c.to_string(), b));
    }
    let pair = match labels.get("pair") {
        Some(p) => {
            let (pid, side) = p
                .split_once(' ')
                .ok_or_else(|| set_error!("pair must be `<id> better|worse`"))?;
            let better = match side.trim() {
                "better" => true,
                "worse" => false,
                other => {
                    return Err(set_error!(
                        "pair side must be better or worse, not {other:?}"
                    ));
                }
            };
            Some((pid.to_string(), better))
        }
        None => None,
    };
    let mut turns: Vec<RawTurn> = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let (who, said) = line
            .split_once(':')
            .ok_or_else(|| set_error!("turn line without a speaker: {line:?}"))?;
        let who = who.trim();
        if !matches!(who, "rep" | "customer") {
            return Err(set_error!("speaker must be rep or customer, not {who:?}"));
        }
        turns.push(RawTurn {
            id: format!("t{}", turns.len() + 1),
            speaker_label: who.to_string(),
            text: said.trim().to_string(),
            start_ms: None,
            end_ms: None,
        });
    }
    Ok(LabelledCall {
        id: id.to_string(),
        scenario: label("scenario")?.to_string(),
        pair,
        overall,
        closed,
        bands,
        turns,
    })
}

/// What the pipeline made of one call.
#[derive(Debug, Clone)]
pub struct Graded {
    pub overall: f64,
    /// (criterion id, score, normalised 0–100).
    pub criteria: Vec<(String, i32, f64)>,
    pub closed: bool,
    /// One line per criterion with its rationale, for `--verbose`.
    pub details: Vec<String>,
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub calls: usize,
    pub failed: usize,
    /// Labelled pairs (better, worse) ranked right / in all.
    pub pairs_right: usize,
    pub pairs: usize,
    /// Every two calls of one scenario with different overall labels.
    pub band_pairs_right: usize,
    pub band_pairs: usize,
    pub spearman: f64,
    pub criteria_in_band: usize,
    pub criteria_labelled: usize,
    pub overall_in_band: usize,
    pub closed_right: usize,
    /// Mean overall score per label.
    pub mean_by_label: Vec<(Quality, f64)>,
    pub misses: Vec<String>,
    /// Per call: labels, scores and rationales.
    pub details: Vec<String>,
}

impl Report {
    fn share(a: usize, b: usize) -> f64 {
        if b == 0 { 1.0 } else { a as f64 / b as f64 }
    }

    pub fn pair_accuracy(&self) -> f64 {
        Self::share(self.pairs_right, self.pairs)
    }

    pub fn band_pair_accuracy(&self) -> f64 {
        Self::share(self.band_pairs_right, self.band_pairs)
    }

    pub fn band_share(&self) -> f64 {
        Self::share(self.criteria_in_band, self.criteria_labelled)
    }

    pub fn overall_band_share(&self) -> f64 {
        Self::share(self.overall_in_band, self.calls)
    }

    pub fn closed_accuracy(&self) -> f64 {
        Self::share(self.closed_right, self.calls)
    }

    /// The report as `grader-eval` prints it; `verbose` adds every call's scores and reasons.
    pub fn render_verbose(&self) -> String {
        let mut out = self.details.join("\n");
        out.push_str("\n\n");
        out.push_str(&self.render());
        out
    }

    /// The report as `grader-eval` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let _ = writeln!(out, "calls graded          {}", self.calls - self.failed);
        if self.failed > 0 {
            let _ = writeln!(out, "calls failed          {}", self.failed);
        }
        let _ = writeln!(
            out,
            "pairs ranked right    {}/{} ({})",
            self.pairs_right,
            self.pairs,
            pct(self.pair_accuracy())
        );
        let _ = writeln!(
            out,
            "label pairs right     {}/{} ({}) (every two calls of a scenario with different overall labels)",
            self.band_pairs_right,
            self.band_pairs,
            pct(self.band_pair_accuracy())
        );
        let _ = writeln!(out, "spearman              {:.3}", self.spearman);
        let _ = writeln!(
            out,
            "criteria in band      {}/{} ({})",
            self.criteria_in_band,
            self.criteria_labelled,
            pct(self.band_share())
        );
        let _ = writeln!(
            out,
            "overall in band       {}/{} ({}) (poor <= 35, excellent >= 80)",
            self.overall_in_band,
            self.calls,
            pct(self.overall_band_share())
        );
        let _ = writeln!(
            out,
            "closed right          {}/{} ({})",
            self.closed_right,
            self.calls,
            pct(self.closed_accuracy())
        );
        let means: Vec<String> = self
            .mean_by_label
            .iter()
            .map(|(q, m)| format!("{q:?} {m:.1}").to_lowercase())
            .collect();
        let _ = writeln!(out, "mean overall          {}", means.join(", "));
        for m in &self.misses {
            let _ = writeln!(out, "miss  {m}");
        }
        out
    }
}

/// Thresholds a grader must meet.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub pairs: f64,
    pub spearman: f64,
    pub band_share: f64,
    pub closed: f64,
}

impl Report {
    /// The figures below `t`, empty when all pass.
    pub fn shortfalls(&self, t: &Thresholds) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |name: &str, got: f64, want: f64| {
            if got < want {
                out.push(format!("{name} {got:.3} below {want:.3}"));
            }
        };
        check("pair accuracy", self.pair_accuracy(), t.pairs);
        check("label pair accuracy", self.band_pair_accuracy(), t.pairs);
        check("spearman", self.spearman, t.spearman);
        check("criteria in band", self.band_share(), t.band_share);
        check("closed accuracy", self.closed_accuracy(), t.closed);
        if self.failed > 0 {
            out.push(format!("{} call(s) failed to grade", self.failed));
        }
        out
    }
}

/// Compares what a grader made of `calls` (`graded[i]` for `calls[i]`, `None` when it failed)
/// with their labels. `failures` names the calls that failed, in order; they open the misses.
pub fn compare(calls: &[LabelledCall], graded: &[Option<Graded>], failures: Vec<String>) -> Report {
    let mut r = Report {
        calls: calls.len(),
        failed: failures.len(),
        misses: failures,
        ..Report::default()
    };
    let score = |i: usize| graded.get(i).and_then(|g| g.as_ref()).map(|g| g.overall);

    // Labelled pairs.
    let mut pair_ids: BTreeMap<&str, (Option<usize>, Option<usize>)> = BTreeMap::new();
    for (i, c) in calls.iter().enumerate() {
        if let Some((pid, better)) = &c.pair {
            let e = pair_ids.entry(pid.as_str()).or_default();
            if *better {
                e.0 = Some(i);
            } else {
                e.1 = Some(i);
            }
        }
    }
    for (pid, (b, w)) in &pair_ids {
        let (Some(b), Some(w)) = (b, w) else {
            r.misses
                .push(format!("pair {pid}: lacks a better or a worse call"));
            continue;
        };
        r.pairs += 1;
        match (score(*b), score(*w)) {
            (Some(sb), Some(sw)) if sb > sw => r.pairs_right += 1,
            (sb, sw) => r.misses.push(format!(
                "pair {pid}: {} {} not above {} {}",
                calls[*b].id,
                fmt_score(sb),
                calls[*w].id,
                fmt_score(sw)
            )),
        }
    }

    // Every two calls of a scenario with different labels.
    for i in 0..calls.len() {
        for j in i + 1..calls.len() {
            let (a, b) = (&calls[i], &calls[j]);
            if a.scenario != b.scenario || a.overall == b.overall {
                continue;
            }
            r.band_pairs += 1;
            let (hi, lo) = if a.overall > b.overall {
                (i, j)
            } else {
                (j, i)
            };
            if let (Some(sh), Some(sl)) = (score(hi), score(lo))
                && sh > sl
            {
                r.band_pairs_right += 1;
            }
        }
    }

    // Spearman over the graded calls.
    let ok: Vec<usize> = (0..calls.len()).filter(|&i| score(i).is_some()).collect();
    let xs: Vec<f64> = ok.iter().filter_map(|&i| score(i)).collect();
    let ys: Vec<f64> = ok.iter().map(|&i| calls[i].overall.rank()).collect();
    r.spearman = spearman(&xs, &ys);

    let mut sums: BTreeMap<Quality, (f64, usize)> = BTreeMap::new();
    for (c, g) in calls.iter().zip(graded) {
        let Some(g) = g else { continue };
        r.details.push(format!(
            "{} [{:?}, closed {}] overall {:.1}, closed {}\n    {}",
            c.id,
            c.overall,
            c.closed,
            g.overall,
            g.closed,
            g.details.join("\n    ")
        ));
        let e = sums.entry(c.overall).or_default();
        e.0 += g.overall;
        e.1 += 1;
        if c.overall.contains(g.overall) {
            r.overall_in_band += 1;
        } else {
            r.misses.push(format!(
                "{}: overall {:.1}, labelled {:?}",
                c.id, g.overall, c.overall
            ));
        }
        if g.closed == c.closed {
            r.closed_right += 1;
        } else {
            r.misses.push(format!(
                "{}: closed {}, labelled {}",
                c.id, g.closed, c.closed
            ));
        }
        for (cid, band) in &c.bands {
            r.criteria_labelled += 1;
            match g.criteria.iter().find(|(id, _, _)| id == cid) {
                Some((_, _, n)) if band.contains(*n) => r.criteria_in_band += 1,
                Some((_, s, _)) => r
                    .misses
                    .push(format!("{}: {cid} scored {s}, labelled {band:?}", c.id)),
                None => r.misses.push(format!("{}: {cid} not scored", c.id)),
            }
        }
    }
    r.mean_by_label = sums
        .into_iter()
        .map(|(q, (s, n))| (q, s / n.max(1) as f64))
        .collect();
    r
}

fn fmt_score(s: Option<f64>) -> String {
    s.map_or_else(|| "(failed)".to_string(), |s| format!("({s:.1})"))
}

/// Ranks with ties averaged, 1-based.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = avg;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation: Pearson's over the tie-averaged ranks.
pub fn spearman(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len());
    if n < 2 {
        return 0.0;
    }
    let (rx, ry) = (ranks(&xs[..n]), ranks(&ys[..n]));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let (mut cov, mut vx, mut vy) = (0.0, 0.0, 0.0);
    for k in 0..n {
        let (dx, dy) = (rx[k] - mx, ry[k] - my);
        cov += dx * dy;
        vx += dx * dx;
        vy += dy * dy;
    }
    if vx <= 0.0 || vy <= 0.0 {
        0.0
    } else {
        cov / (vx * vy).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_handles_ties() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[0.0, 1.0, 2.0]) - 1.0).abs() < 1e-9);
        assert!((spearman(&[3.0, 2.0, 1.0], &[0.0, 1.0, 2.0]) + 1.0).abs() < 1e-9);
        let s = spearman(&[10.0, 20.0, 30.0, 40.0], &[0.0, 0.0, 1.0, 1.0]);
        assert!(s > 0.85 && s < 1.0, "{s}");
        assert_eq!(spearman(&[1.0, 1.0], &[0.0, 1.0]), 0.0);
    }

    #[test]
    fn call_files_parse() {
        let r = Rubric {
            criteria: vec![Criterion {
                id: "discovery".into(),
                skill: "Discovery".into(),
                description: String::new(),
                weight: 1.0,
                scale_min: 1,
                scale_max: 5,
                levels: vec![],
                signal_phrases: vec![],
            }],
            passing_score: 70.0,
        };
        let text = "scenario: cold\npair: c1 better\noverall: excellent\nclosed: yes\nbands: discovery=high\n---\nrep: Hi: there.\ncustomer: Hello.\n";
        let c = parse_call("x", text, &r);
        let Ok(c) = c else { unreachable!("{c:?}") };
        assert_eq!(c.turns.len(), 2);
        assert_eq!(c.turns[0].text, "Hi: there.");
        assert_eq!(c.pair, Some(("c1".into(), true)));
        assert!(parse_call("x", "overall: great\n---\n", &r).is_err());
        assert!(Band::Mid.contains(50.0) && !Band::High.contains(50.0));
        assert!(Quality::Excellent.contains(80.0) && Quality::Poor.contains(35.0));
    }

    #[test]
    fn set_files_parse() {
        let rubric = r#"{"name": "Calls", "passing_score": 70, "criteria": [
            {"id": "discovery", "skill": "Discovery", "description": "asks", "weight": 1,
             "scale_min": 1, "scale_max": 5, "levels": [[1, "none"], [5, "deep"]]}]}"#;
        let Ok((name, r)) = parse_rubric(rubric) else {
            unreachable!()
        };
        assert_eq!(name, "Calls");
        assert_eq!(r.criteria.len(), 1);
        assert!(parse_rubric(r#"{"name": "x", "passing_score": 70, "criteria": []}"#).is_err());
        let scenarios = r#"{"cold": {"goal": "book_meeting", "product_brief": "p",
            "persona": {"name": " ", "role": "CFO"}}}"#;
        let Ok(s) = parse_scenarios(scenarios) else {
            unreachable!()
        };
        let cold = &s["cold"];
        assert_eq!(cold.goal, GoalKind::BookMeeting);
        assert_eq!(cold.persona_name, None);
        assert_eq!(cold.persona_role, "CFO");
        let bad = r#"{"x": {"goal": "win", "product_brief": "p", "persona": {"name": "A"}}}"#;
        assert_eq!(
            parse_scenarios(bad).map(|_| ()),
            Err(SetError("scenario x: unknown goal \"win\"".into()))
        );
    }
}
