// Manager overrides on a result: the effective score beside the grader's with each
// override's reason, the form a manager or admin sets one with (the server's field errors
// under each field) or restores the grader's score with, and the audit of who changed what.
import { useState } from "preact/hooks";
import type { Evaluation, ScoreOverride } from "../gen/salestrainer/grading/v1/resources_pb.js";
import { Code, currentUser, errorText, fieldErrors, fmtDate, grading, isCode, lastSegment } from "../api";
import { ErrorBox, Field, OtherErrors, Table, useLoad } from "../ui";

const who = (member: string) => lastSegment(member) || "—";

/** One override as a sentence: the score, the grader's, the reason, who and when. */
export function OverrideNote({ o }: { o: ScoreOverride }) {
  return (
    <p class="override-note" data-testid="override-note">
      <strong>Override: {o.score.toFixed(1)}</strong> (grader: {o.graderScore.toFixed(1)}) — “{o.reason}” · {who(o.author)},{" "}
      {fmtDate(o.updateTime)}
      {o.onEarlierGrade && <em> · made on an earlier grade, not applied to this one</em>}
    </p>
  );
}

/** The evaluation's overrides from before a regrade. */
export function EarlierOverrides({ ev }: { ev: Evaluation }) {
  if (!ev.earlierOverrides.length) return null;
  return (
    <section>
      <h2>Overrides on the earlier grade</h2>
      <p class="muted">This session was graded again; these overrides were made on the previous grade.</p>
      {ev.earlierOverrides.map((o) => (
        <div>
          <span class="muted">{o.criterionId || "Overall"}</span>
          <OverrideNote o={o} />
        </div>
      ))}
    </section>
  );
}

/** The override form and the audit list; for managers and admins. */
export function OverridePanel({ ev, onChanged }: { ev: Evaluation; onChanged: (e: Evaluation) => void }) {
  const role = currentUser()?.role;
  const staff = role === "admin" || role === "manager";
  const audit = useLoad(
    () => grading.listEvaluationOverrides({ parent: ev.name, pageSize: 50 }),
    [ev.name, ev.etag],
  );
  const [overall, setOverall] = useState("");
  const [criterion, setCriterion] = useState("");
  const [score, setScore] = useState("");
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [ok, setOk] = useState("");
  const [stale, setStale] = useState(false);
  const superseded = !!ev.supersededBy;
  // Sends one change (an override or a restore); the evaluation it returns replaces ours.
  const send = async (call: () => Promise<{ evaluation?: Evaluation }>, done: string, reset: () => void) => {
    setErrors({});
    setError("");
    setOk("");
    setStale(false);
    try {
      const r = await call();
      setOk(done);
      reset();
      if (r.evaluation) onChanged(r.evaluation);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      // Someone else changed it meanwhile (or already removed that override): reload.
      setStale(isCode(err, Code.Aborted) || isCode(err, Code.FailedPrecondition));
      setError(Object.keys(fe).length ? "Please correct the highlighted fields." : errorText(err));
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    return send(
      () =>
        grading.overrideEvaluation({
          name: ev.name,
          overallScore: overall.trim() === "" ? undefined : Number(overall),
          criterionOverrides: criterion ? [{ criterionId: criterion, score: score.trim() === "" ? NaN : Number(score) }] : [],
          reason,
          etag: ev.etag,
        }),
      "Override saved.",
      () => {
        setOverall("");
        setScore("");
        setReason("");
      },
    );
  };
  // Restores the grader's score of one field (criterion id, or "" for the overall score),
  // with the reason typed in the form.
  const restore = (criterionId: string) =>
    send(
      () =>
        grading.clearEvaluationOverride({
          name: ev.name,
          criterionIds: criterionId ? [criterionId] : [],
          overall: !criterionId,
          reason,
          etag: ev.etag,
        }),
      "Grader's score restored.",
      () => setReason(""),
    );
  const overridden: [string, string][] = [
    ...(ev.overallOverride ? [["", "Overall"] as [string, string]] : []),
    ...ev.criterionScores.filter((c) => c.override).map((c) => [c.criterionId, `${c.skill} (${c.criterionId})`] as [string, string]),
  ];
  const shown = (p: string) => ["overall_score", "reason", "criterion_overrides", "criterion_overrides[0].score", "criterion_overrides[0].criterion_id"].includes(p);
  const crit = ev.criterionScores.find((c) => c.criterionId === criterion);
  return (
    <section aria-labelledby="override-h">
      <h2 id="override-h">Overrides</h2>
      {staff && !superseded && (
        <form class="form" onSubmit={submit} aria-label="Override the score">
          <Field
            label="Overall score (0–100, leave empty to follow the criteria)"
            path="overall_score"
            type="number"
            step="0.1"
            errors={errors}
            value={overall}
            onInput={setOverall}
          />
          <Field
            label="Criterion"
            path="criterion_overrides[0].criterion_id"
            errors={errors}
            value={criterion}
            onInput={setCriterion}
            options={[["", "— none —"], ...ev.criterionScores.map((c) => [c.criterionId, `${c.skill} (${c.criterionId})`] as [string, string])]}
          />
          {criterion && (
            <Field
              label={`Criterion score (${crit?.scaleMin ?? 0}–${crit?.scaleMax ?? 0})`}
              path="criterion_overrides[0].score"
              type="number"
              step="0.5"
              errors={errors}
              value={score}
              onInput={setScore}
            />
          )}
          <Field label="Reason (shown to the trainee)" path="reason" multiline required errors={errors} value={reason} onInput={setReason} />
          {errors["criterion_overrides"] && (
            <p class="field-error" role="alert">
              {errors["criterion_overrides"]}
            </p>
          )}
          <OtherErrors errors={errors} shown={shown} />
          <ErrorBox text={error} />
          {stale && <p class="muted">Reload the page to see the latest overrides.</p>}
          {ok && (
            <p class="ok" role="status">
              {ok}
            </p>
          )}
          <button type="submit">Save override</button>
          {overridden.length > 0 && (
            <div class="restore" aria-label="Restore the grader's score">
              <p class="muted">Or remove an override (the reason above is recorded in the audit):</p>
              {overridden.map(([id, label]) => (
                <button type="button" class="secondary" onClick={() => restore(id)}>
                  Restore grader's score: {label}
                </button>
              ))}
            </div>
          )}
        </form>
      )}
      {superseded && <p class="muted">A regrade replaced this evaluation; override the current one.</p>}
      <h3>Audit</h3>
      {audit.error ? (
        <ErrorBox text={audit.error} />
      ) : (
        <Table
          caption="Who changed which score, when, from what to what"
          empty="No overrides."
          head={["When", "Who", "Field", "From", "To", "Effective", "Reason"]}
          rows={(audit.data?.evaluationOverrides ?? []).map((a) => [
            fmtDate(a.createTime),
            who(a.author),
            a.criterionId || "overall",
            a.previousScore.toFixed(1),
            a.cleared ? `${a.score.toFixed(1)} (grader's, restored)` : a.score.toFixed(1),
            `${a.previousEffectiveScore.toFixed(1)} → ${a.effectiveScore.toFixed(1)}`,
            a.reason,
          ])}
        />
      )}
    </section>
  );
}
