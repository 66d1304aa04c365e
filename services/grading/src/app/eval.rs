//! Measures a grader against the labelled set in `services/grading/eval/`: every call goes
//! through the grading pipeline's own steps (clean → summarise → grade → close decision) and
//! the scores are compared with what a sales manager labelled.
//!
//! The set: `rubric.json` (one realistic rubric), `scenarios.json` (goal, product brief and
//! persona per scenario) and `calls/*.txt`, one call per file: `key: value` labels, a `---`
//! line, then `rep:` / `customer:` turns. Reading those files' text and comparing scores with
//! labels are the domain's (`domain::eval`); this module reads the files and runs the pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use super::inputs::{Credential, ScenarioInputs};
use super::llm_provider::LlmClient;
use super::pipeline::{self, GradeDto};
use crate::domain::clean::clean;
use crate::domain::eval::{
    Graded, LabelledCall, Report, compare, parse_call, parse_rubric, parse_scenarios,
};
use crate::domain::llm::{parse_llm_answer, response_format};
use crate::domain::prompt::{PromptInputs, grading_messages};
use crate::domain::types::RawTurn;

/// The set shipped with the repository.
pub fn default_set_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval")
}

#[derive(Debug, Clone)]
pub struct EvalSet {
    pub scenarios: BTreeMap<String, ScenarioInputs>,
    pub calls: Vec<LabelledCall>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads the set from `dir`.
pub fn load_set(dir: &Path) -> anyhow::Result<EvalSet> {
    let (rubric_name, rubric) = parse_rubric(&read(&dir.join("rubric.json"))?)?;
    let specs = parse_scenarios(&read(&dir.join("scenarios.json"))?)?;
    let scenarios: BTreeMap<String, ScenarioInputs> = specs
        .into_iter()
        .map(|(id, s)| {
            let inputs = ScenarioInputs {
                rubric_name: rubric_name.clone(),
                rubric: rubric.clone(),
                goal: s.goal,
                product_brief: s.product_brief,
                persona_name: s.persona_name,
                persona_role: s.persona_role,
                persona_company: s.persona_company,
                template: None,
            };
            (id, inputs)
        })
        .collect();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("calls"))
        .with_context(|| format!("listing {}/calls", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    let mut calls = Vec::new();
    for p in paths {
        let id = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let call =
            parse_call(&id, &read(&p)?, &rubric).with_context(|| format!("{}", p.display()))?;
        if !scenarios.contains_key(&call.scenario) {
            bail!("{}: unknown scenario {:?}", p.display(), call.scenario);
        }
        calls.push(call);
    }
    if calls.is_empty() {
        bail!("no calls in {}/calls", dir.display());
    }
    Ok(EvalSet { scenarios, calls })
}

/// Which grader to measure.
pub enum Grader {
    BuiltIn,
    /// Any OpenAI-compatible server.
    Llm {
        client: LlmClient,
        credential: Credential,
    },
}

impl Grader {
    pub fn llm(base_url: &str, model: &str, api_key: &str) -> anyhow::Result<Grader> {
        Ok(Grader::Llm {
            client: LlmClient::new(Duration::from_secs(180), 4000)?,
            credential: Credential {
                name: "grader-eval".into(),
                base_url: base_url.to_string(),
                model: model.to_string(),
                api_key: api_key.to_string(),
                requests_per_minute: 0,
                tokens_per_minute: 0,
            },
        })
    }
}

/// Runs one call through the pipeline's steps, as a grading attempt does.
pub async fn grade_call(
    grader: &Grader,
    inputs: &ScenarioInputs,
    raw: &[RawTurn],
) -> anyhow::Result<Graded> {
    let transcript = clean(raw);
    let summary = pipeline::summarise(&transcript, inputs);
    let grade: GradeDto = match grader {
        Grader::BuiltIn => pipeline::grade_deterministic(inputs, &transcript)
            .map_err(|e| anyhow!("invalid rubric: {e}"))?,
        Grader::Llm { client, credential } => {
            let persona = inputs.persona_brief();
            let m = grading_messages(
                inputs.template.as_ref().map(|t| t.body.as_str()),
                &PromptInputs {
                    rubric_name: &inputs.rubric_name,
                    rubric: &inputs.rubric,
                    goal: &inputs.goal,
                    product_brief: &inputs.product_brief,
                    persona: &persona,
                    summary: &summary,
                },
                &transcript,
            );
            let format = response_format(&inputs.rubric);
            let (result, _) = client
                .complete(credential, &m.system, &m.user, &format)
                .await;
            let ok = result.map_err(|e| anyhow!("{e}"))?;
            let answer = parse_llm_answer(&inputs.rubric, &transcript, &ok.body)
                .map_err(|e| anyhow!("invalid model answer: {e}"))?;
            pipeline::grade_from_llm(inputs, &transcript, answer, &credential.model)
        }
    };
    let close = pipeline::close_decision(&inputs.goal, &transcript, &grade);
    Ok(Graded {
        overall: grade.overall,
        criteria: grade
            .criteria
            .iter()
            .map(|c| (c.id.clone(), c.score, c.normalized))
            .collect(),
        closed: close.closed,
        details: grade
            .criteria
            .iter()
            .map(|c| format!("{} {}/{}: {}", c.id, c.score, c.scale_max, c.rationale))
            .collect(),
    })
}

/// Grades every call of the set and compares with the labels.
pub async fn run(set: &EvalSet, grader: &Grader) -> Report {
    let mut graded: Vec<Option<Graded>> = Vec::with_capacity(set.calls.len());
    let mut failures = Vec::new();
    for call in &set.calls {
        let Some(inputs) = set.scenarios.get(&call.scenario) else {
            failures.push(format!("{}: unknown scenario", call.id));
            graded.push(None);
            continue;
        };
        match grade_call(grader, inputs, &call.turns).await {
            Ok(g) => graded.push(Some(g)),
            Err(e) => {
                failures.push(format!("{}: grading failed: {e:#}", call.id));
                graded.push(None);
            }
        }
    }
    compare(&set.calls, &graded, failures)
}
