// A session's result: overall and per-criterion scores, strengths and improvements, each
// criterion's evidence highlighted in the transcript, and conversation metrics against the
// ranges top performers show.
import { useEffect, useState } from "preact/hooks";
import { SessionMode, SessionSource, SessionState, Speaker } from "../gen/salestrainer/call/v1/resources_pb.js";
import type { Comment } from "../gen/salestrainer/call/v1/comments_pb.js";
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { Evaluation } from "../gen/salestrainer/grading/v1/resources_pb.js";
import { call, config, errorText, fmtDate, grading, me, newId, org } from "../api";
import { Bar, ErrorBox, Loading, Page, Score, Table, go, useLoad } from "../ui";
import { LineComments, withComment, withoutComment } from "./comments";
import { EarlierOverrides, OverrideNote, OverridePanel } from "./override";

const secs = (d?: Duration) => (d ? Number(d.seconds) + d.nanos / 1e9 : 0);

/** Guidance ranges typical of strong discovery calls, shown next to the trainee's figures. */
const TARGETS = {
  talk: [0.4, 0.6] as const,
  monologue: 90,
  questions: 6,
  fillers: 0.02,
};

export function Result({ id }: { id: string }) {
  const name = `${org()}/sessions/${id}`;
  const state = useLoad(async () => {
    const s = (await call.getSession({ name })).session;
    if (!s) throw new Error("no session");
    const [t, ev, sc, cs] = await Promise.all([
      call.getTranscript({ name: `${name}/transcript` }),
      s.evaluation ? grading.getEvaluation({ name: s.evaluation }) : Promise.resolve(undefined),
      // A real call uploaded without a scenario has none to show.
      s.scenario ? config.getScenario({ name: s.scenario }).catch(() => undefined) : Promise.resolve(undefined),
      // A session holds at most a few hundred comments (max_comments_per_session).
      call.listComments({ parent: name, pageSize: 1000 }),
    ]);
    return {
      session: s,
      transcript: t.transcript,
      evaluation: ev?.evaluation,
      scenario: sc?.scenario,
      comments: cs.comments,
    };
  }, [id]);
  const [comments, setComments] = useState<Comment[]>([]);
  useEffect(() => setComments(state.data?.comments ?? []), [state.data]);
  const [focus, setFocus] = useState<string | null>(null);
  const [drillError, setDrillError] = useState("");
  const [drilling, setDrilling] = useState(false);
  /** Starts a short practice session that reopens this evaluation's weakest moment. */
  const drill = async (evaluation: string) => {
    setDrilling(true);
    setDrillError("");
    try {
      const r = await call.startSession({ parent: org(), drill: evaluation, mode: SessionMode.TEXT, requestId: newId() });
      go(`practice/${r.session?.name.split("/").pop()}`);
    } catch (e) {
      setDrillError(errorText(e));
    } finally {
      setDrilling(false);
    }
  };
  // The evaluation as the last override returned it (until the page reloads).
  const [changed, setChanged] = useState<Evaluation | null>(null);
  // WatchSession pushes new and deleted comments, and the end of grading (then the page reloads). Its
  // first message is the state now, which may already be past the state the page loaded.
  const loaded = state.data?.session.state;
  useEffect(() => {
    if (loaded === undefined) return;
    const abort = new AbortController();
    (async () => {
      try {
        for await (const w of call.watchSession({ name, includeComments: true }, { signal: abort.signal })) {
          const c = w.comment;
          const gone = w.deletedComment;
          if (c) {
            setComments((list) => withComment(list, c));
          } else if (gone) {
            setComments((list) => withoutComment(list, gone));
          } else if (w.state !== loaded && (w.state === SessionState.GRADED || w.state === SessionState.FAILED)) {
            state.reload();
          }
        }
      } catch {
        // Leaving the page aborts the stream; nothing to report.
      }
    })();
    return () => abort.abort();
  }, [loaded, name]);

  if (state.error && !state.data) {
    return (
      <Page title="Result">
        <ErrorBox text={state.error} />
        <p>
          <a href="#/sessions">Back to sessions</a>
        </p>
      </Page>
    );
  }
  return (
    <Page title="Result">
      <Loading state={state}>
        {({ session, transcript, evaluation, scenario }) => {
          const loaded = evaluation as Evaluation | undefined;
          const ev = changed && loaded && changed.name === loaded.name ? changed : loaded;
          const quotes = new Map<string, { text: string; criteria: string[] }[]>();
          for (const c of ev?.criterionScores ?? []) {
            for (const q of c.evidence) {
              const list = quotes.get(q.segmentId) ?? [];
              list.push({ text: q.text, criteria: [c.criterionId] });
              quotes.set(q.segmentId, list);
            }
          }
          const m = ev?.metrics;
          return (
            <>
              <p class="muted">
                {session.source === SessionSource.REAL_CALL && (
                  <span class="badge" data-testid="real-call">
                    Real call{session.title ? `: ${session.title}` : ""}
                  </span>
                )}{" "}
                {scenario?.displayName ?? (session.scenario || "No scenario")} · {session.trainee.split("/").pop()} ·{" "}
                {fmtDate(session.startTime)}
              </p>
              {session.drillOf && (
                <p class="notice" data-testid="drill-of">
                  Drill of <strong>{session.drillOf.skill || session.drillOf.criterion}</strong> (scored{" "}
                  {session.drillOf.score.toFixed(0)} before): “{session.drillOf.objection}”
                </p>
              )}
              {/* A drill needs a persona: a call uploaded without a scenario has none. */}
              {ev && session.trainee === me() && session.scenario && (
                <div class="row">
                  <button type="button" disabled={drilling} onClick={() => drill(ev.name)} data-testid="drill-this">
                    Drill this
                  </button>
                  <span class="muted">A short practice call that opens with the objection you handled worst.</span>
                </div>
              )}
              <ErrorBox text={drillError} />
              {!ev ? (
                <p class="notice" role="status">
                  {session.state === SessionState.FAILED
                    ? "Grading failed for this session."
                    : "Not graded yet: the result appears here once grading finishes."}
                </p>
              ) : (
                <>
                  <div class="summary-grid">
                    <div class="stat big">
                      <span class="label">Overall</span>
                      <Score value={ev.effectiveScore} passed={ev.effectivePassed} />
                      <span>{ev.effectivePassed ? "Passed" : "Not passed"}</span>
                      {ev.overrideRevision > 0n && (
                        <small class="muted" data-testid="grader-score">
                          Grader's score: {ev.overallScore.toFixed(0)}
                        </small>
                      )}
                    </div>
                    <div class="stat">
                      <span class="label">Next step agreed</span>
                      <strong>{ev.closed ? "Yes" : "No"}</strong>
                    </div>
                    <div class="stat wide">
                      <span class="label">Summary</span>
                      <p>{ev.summary}</p>
                    </div>
                  </div>
                  {ev.overallOverride && <OverrideNote o={ev.overallOverride} />}
                  <EarlierOverrides ev={ev} />
                  <div class="two-col">
                    <section>
                      <h2>Strengths</h2>
                      <ul>{ev.strengths.map((s) => <li>{s}</li>)}</ul>
                    </section>
                    <section>
                      <h2>To improve</h2>
                      <ul>{ev.improvements.map((s) => <li>{s}</li>)}</ul>
                    </section>
                  </div>
                  <h2>Criteria</h2>
                  <ul class="criteria">
                    {ev.criterionScores.map((c) => (
                      <li class={focus === c.criterionId ? "focused" : ""}>
                        <div class="crit-head">
                          <strong>{c.skill}</strong>
                          <span>
                            {c.score.toFixed(1)} / {c.scaleMax}
                          </span>
                        </div>
                        <Bar value={c.normalizedScore * (c.normalizedScore <= 1 ? 100 : 1)} label={c.skill} />
                        {c.override && <OverrideNote o={c.override} />}
                        <p class="muted">{c.rationale}</p>
                        {c.evidence.length > 0 && (
                          <button
                            type="button"
                            class="link"
                            aria-pressed={focus === c.criterionId}
                            onClick={() => setFocus(focus === c.criterionId ? null : c.criterionId)}
                          >
                            {focus === c.criterionId ? "Hide" : "Show"} {c.evidence.length} quote(s) in the transcript
                          </button>
                        )}
                      </li>
                    ))}
                  </ul>
                  <OverridePanel ev={ev} onChanged={setChanged} />
                  {m && (
                    <>
                      <h2>Conversation metrics</h2>
                      <Table
                        head={["Metric", "You", "Top performers"]}
                        rows={[
                          [
                            "Talk ratio (you / total)",
                            `${(m.talkListenRatio * 100).toFixed(0)}%`,
                            `${TARGETS.talk[0] * 100}–${TARGETS.talk[1] * 100}%`,
                          ],
                          ["Longest monologue", `${secs(m.longestMonologue).toFixed(0)} s`, `under ${TARGETS.monologue} s`],
                          ["Questions asked", String(m.questionsAskedTrainee), `${TARGETS.questions} or more`],
                          ["Filler words", `${(m.fillerWordRate * 100).toFixed(1)}% of words`, `under ${TARGETS.fillers * 100}%`],
                          ["Next step set", m.nextStepSet ? "yes" : "no", "yes"],
                        ]}
                      />
                    </>
                  )}
                </>
              )}
              <h2>Transcript</h2>
              <ol class="chat transcript" aria-label="Transcript">
                {(transcript?.segments ?? []).map((g) => {
                  const qs = quotes.get(g.segmentId) ?? [];
                  const hit = qs.some((q) => focus === null || q.criteria.includes(focus));
                  return (
                    <>
                      <li
                        class={`bubble ${g.speaker === Speaker.TRAINEE ? "trainee" : "persona"}${qs.length && hit ? " evidence" : ""}`}
                        data-evidence={qs.length ? "true" : undefined}
                      >
                        {qs.length && hit ? <Highlight text={g.text} quotes={qs.map((q) => q.text)} /> : g.text}
                      </li>
                      <LineComments
                        session={name}
                        segmentId={g.segmentId}
                        comments={comments}
                        onChange={setComments}
                      />
                    </>
                  );
                })}
              </ol>
            </>
          );
        }}
      </Loading>
    </Page>
  );
}

/** Marks each quoted span inside a line (the whole line when the quote is not verbatim). */
function Highlight({ text, quotes }: { text: string; quotes: string[] }) {
  const q = quotes.find((x) => x && text.includes(x));
  if (!q) return <mark>{text}</mark>;
  const i = text.indexOf(q);
  return (
    <>
      {text.slice(0, i)}
      <mark>{q}</mark>
      {text.slice(i + q.length)}
    </>
  );
}
