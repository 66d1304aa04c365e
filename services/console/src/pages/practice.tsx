// Practice: pick an assignment or a scenario, talk to the persona by text (SendTurn streams
// each reply), end the call and watch it move ended → grading → graded (WatchSession pushes).
import { useEffect, useRef, useState } from "preact/hooks";
import { SessionMode, SessionState, Speaker } from "../gen/salestrainer/call/v1/resources_pb.js";
import { call, config, errorText, fmtDay, me, newId, org, toDate } from "../api";
import { ErrorBox, Loading, Page, go, useLoad } from "../ui";
import { NO_VOICE_MESSAGE, VoiceCall, startVoice } from "./voice";

export function PracticeHome() {
  const state = useLoad(async () => {
    const [sc, as, vc] = await Promise.all([
      config.listScenarios({ parent: org(), pageSize: 100 }),
      config.listAssignments({ parent: org(), pageSize: 100 }),
      // Voice is an extra: the page works without knowing.
      call.getVoiceConfig({ name: `${org()}/voiceConfig` }).catch(() => null),
    ]);
    const mine = as.assignments.filter((a) => a.assignees.includes(me()) && a.state === 1);
    return { scenarios: sc.scenarios, assignments: mine, webCalls: !!vc?.voiceConfig?.webCalls };
  });
  const [error, setError] = useState("");
  const [voice, setVoice] = useState(false);
  const [busy, setBusy] = useState(false);

  const start = async (scenario: string, assignment = "") => {
    setBusy(true);
    setError("");
    try {
      const r = await call.startSession({
        parent: org(),
        scenario,
        assignment,
        mode: SessionMode.TEXT,
        requestId: newId(),
      });
      go(`practice/${r.session?.name.split("/").pop()}`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const voiceCall = async (scenario: string) => {
    setBusy(true);
    setError("");
    setVoice(false);
    try {
      const id = await startVoice(scenario);
      if (id === "no-key") setVoice(true);
      else go(`practice/${id}`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Practice">
      <ErrorBox text={error} />
      <Loading state={state}>
        {({ scenarios, assignments, webCalls }) => (
          <>
            <h2>Your assignments</h2>
            {assignments.length ? (
              <ul class="cards">
                {assignments.map((a) => {
                  const sc = scenarios.find((s) => s.name === a.scenario);
                  const due = toDate(a.dueTime);
                  const overdue = due && due.getTime() < Date.now();
                  return (
                    <li class="card">
                      <h3>{sc?.displayName ?? a.scenario}</h3>
                      <p class={overdue ? "error" : "muted"}>
                        {due ? `${overdue ? "Overdue since" : "Due"} ${fmtDay(a.dueTime)}` : "No due date"} ·{" "}
                        {a.requiredAttempts || 1} attempt(s), pass at {a.passingScore || 70}
                      </p>
                      <button type="button" disabled={busy} onClick={() => start(a.scenario, a.name)}>
                        Practise this assignment
                      </button>
                    </li>
                  );
                })}
              </ul>
            ) : (
              <p class="muted">No open assignments.</p>
            )}
            <h2>Scenarios</h2>
            <ul class="cards">
              {scenarios
                .filter((s) => s.openToAll)
                .map((s) => (
                  <li class="card">
                    <h3>{s.displayName}</h3>
                    <p class="muted">{s.goal?.description || s.productBrief}</p>
                    <div class="row">
                      <button type="button" disabled={busy} onClick={() => start(s.name)}>
                        Practise by text
                      </button>
                      {webCalls && (
                        <button type="button" class="secondary" disabled={busy} onClick={() => voiceCall(s.name)}>
                          Practise by voice
                        </button>
                      )}
                    </div>
                  </li>
                ))}
            </ul>
            {(voice || !webCalls) && (
              <p class="notice" role={voice ? "alert" : "note"}>
                {NO_VOICE_MESSAGE}
              </p>
            )}
          </>
        )}
      </Loading>
    </Page>
  );
}

interface Line {
  id: string;
  speaker: "trainee" | "persona";
  text: string;
  streaming?: boolean;
}

const STATE_LABEL: Record<number, string> = {
  [SessionState.ACTIVE]: "active",
  [SessionState.ENDED]: "ended",
  [SessionState.GRADING]: "grading",
  [SessionState.GRADED]: "graded",
  [SessionState.FAILED]: "failed",
  [SessionState.CANCELLED]: "cancelled",
};

export function Practice({ id }: { id: string }) {
  const name = `${org()}/sessions/${id}`;
  const [lines, setLines] = useState<Line[]>([]);
  const [text, setText] = useState("");
  const [state, setState] = useState<SessionState>(SessionState.ACTIVE);
  const [history, setHistory] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [title, setTitle] = useState("Practice call");
  const [mode, setMode] = useState<SessionMode>(SessionMode.TEXT);
  const [drill, setDrill] = useState<{ skill: string; objection: string } | null>(null);
  const log = useRef<HTMLOListElement>(null);
  // Ends the WatchSession stream when the page goes away.
  const watching = useRef<AbortController | null>(null);
  useEffect(() => () => watching.current?.abort(), []);
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    log.current?.scrollTo({ top: log.current.scrollHeight });
  }, [lines]);

  /** Streams one SendTurn; empty text only hears the opening message if not heard yet. */
  const send = async (said: string) => {
    setBusy(true);
    setError("");
    const turnId = newId();
    if (said) setLines((l) => [...l, { id: `t-${turnId}`, speaker: "trainee", text: said }]);
    try {
      for await (const r of call.sendTurn({ session: name, text: said, clientTurnId: said ? turnId : "" })) {
        const p = r.payload;
        if (p.case === "chunk") {
          const c = p.value;
          setLines((l) => {
            const i = l.findIndex((x) => x.id === c.turnId);
            if (i < 0) return [...l, { id: c.turnId, speaker: "persona", text: c.text, streaming: true }];
            const copy = l.slice();
            copy[i] = { ...copy[i], text: copy[i].text + c.text };
            return copy;
          });
        } else if (p.case === "done") {
          const d = p.value;
          setLines((l) => {
            const rest = l.filter((x) => x.id !== d.turnId);
            return [...rest, { id: d.turnId, speaker: "persona", text: d.fullText }];
          });
        }
      }
      // A drill ends itself after its last turn: follow it to grading.
      if (drill && said) {
        const s = (await call.getSession({ name })).session;
        if (s && s.state !== SessionState.ACTIVE) {
          setState(s.state);
          watch();
        }
      }
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
      input.current?.focus();
    }
  };

  const watch = async () => {
    watching.current?.abort();
    const abort = new AbortController();
    watching.current = abort;
    try {
      for await (const w of call.watchSession({ name }, { signal: abort.signal })) {
        setState(w.state);
        setHistory((h) => (h[h.length - 1] === STATE_LABEL[w.state] ? h : [...h, STATE_LABEL[w.state] ?? "?"]));
      }
    } catch (e) {
      if (!abort.signal.aborted) setError(errorText(e));
    }
  };

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const s = (await call.getSession({ name })).session;
        if (!s || !live) return;
        setState(s.state);
        setMode(s.mode);
        if (s.drillOf) setDrill({ skill: s.drillOf.skill || s.drillOf.criterion, objection: s.drillOf.objection });
        config
          .getScenario({ name: s.scenario })
          .then((r) => live && setTitle(r.scenario?.displayName ?? "Practice call"))
          .catch(() => {});
        const t = (await call.getTranscript({ name: `${name}/transcript` })).transcript;
        if (!live) return;
        setLines(
          (t?.segments ?? []).map((g) => ({
            id: g.segmentId,
            speaker: g.speaker === Speaker.TRAINEE ? "trainee" : "persona",
            text: g.text,
          })),
        );
        if (s.state === SessionState.ACTIVE) {
          // A voice call's customer speaks through the provider once the call starts.
          if (s.mode !== SessionMode.VOICE) await send("");
        }
        else watch();
      } catch (e) {
        if (live) setError(errorText(e));
      }
    })();
    return () => {
      live = false;
    };
  }, [id]);

  const end = async () => {
    setBusy(true);
    try {
      const r = await call.endSession({ name });
      setState(r.session?.state ?? SessionState.ENDED);
      watch();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const active = state === SessionState.ACTIVE;
  if (active && mode === SessionMode.VOICE)
    return (
      <Page title={title}>
        <ErrorBox text={error} />
        <VoiceCall
          name={name}
          onEnded={() => {
            setState(SessionState.ENDED);
            watch();
          }}
        />
      </Page>
    );
  return (
    <Page
      title={title}
      actions={
        active ? (
          <button type="button" class="danger" onClick={end} disabled={busy}>
            End call
          </button>
        ) : null
      }
    >
      {drill && (
        <p class="notice" data-testid="drill-banner" data-objection={drill.objection}>
          Drill: <strong>{drill.skill}</strong>. The customer raises again the objection you handled worst — handle it
          better in a few turns.
        </p>
      )}
      <ol class="chat" ref={log} aria-live="polite" aria-label="Conversation">
        {lines.map((l) => (
          <li class={`bubble ${l.speaker}`} data-speaker={l.speaker}>
            <span class="sr-only">{l.speaker === "trainee" ? "You" : "Customer"}: </span>
            {l.text}
            {l.streaming && <span class="cursor" aria-hidden="true" />}
          </li>
        ))}
      </ol>
      <ErrorBox text={error} />
      {active ? (
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            const t = text.trim();
            if (!t || busy) return;
            setText("");
            send(t);
          }}
        >
          <label for="say" class="sr-only">
            What you say
          </label>
          <textarea
            id="say"
            ref={input}
            rows={2}
            value={text}
            placeholder="Type what you say, Enter to send"
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                e.currentTarget.form?.requestSubmit();
              }
            }}
          />
          <button type="submit" disabled={busy || !text.trim()}>
            Send
          </button>
        </form>
      ) : (
        <section class="status" aria-live="polite">
          <h2>Call {STATE_LABEL[state]}</h2>
          <ol class="steps" aria-label="Progress">
            {["ended", "grading", "graded"].map((s) => (
              <li class={history.includes(s) || (s === "graded" && state === SessionState.GRADED) ? "done" : ""}>{s}</li>
            ))}
          </ol>
          {state === SessionState.GRADED && (
            <a class="button" href={`#/results/${id}`}>
              See your result
            </a>
          )}
          {state === SessionState.FAILED && <p class="error">Grading failed; a manager can retry it.</p>}
        </section>
      )}
    </Page>
  );
}
