// Upload a real customer call: a transcript file (plain `Speaker: text` lines, WebVTT, SRT or
// JSON segments), who the rep is, the member it belongs to, the rubric to grade it with and,
// optionally, the scenario it matches (a real customer has no persona). A line the server
// cannot read comes back as a field error on the file naming it.
import { useState } from "preact/hooks";
import { TranscriptFormat } from "../gen/salestrainer/call/v1/resources_pb.js";
import { call, config, currentUser, errorText, fieldErrors, me, newId, org, ts } from "../api";
import { ErrorBox, Field, Loading, OtherErrors, Page, go, useLoad } from "../ui";

const FORMATS: [string, string][] = [
  [String(TranscriptFormat.UNSPECIFIED), "Detect from the file"],
  [String(TranscriptFormat.PLAIN), "Plain text (Speaker: text)"],
  [String(TranscriptFormat.WEBVTT), "WebVTT"],
  [String(TranscriptFormat.SRT), "SRT"],
  [String(TranscriptFormat.JSON), "JSON segments"],
];

const FIELDS = ["content", "format", "rep_speaker", "trainee", "scenario", "rubric", "title", "call_time"];

export function ImportCall() {
  const staff = currentUser()?.role !== "trainee";
  const state = useLoad(async () => {
    const [members, scenarios, rubrics] = await Promise.all([
      staff ? config.listMembers({ parent: org(), pageSize: 200 }).then((r) => r.members) : Promise.resolve([]),
      config.listScenarios({ parent: org(), pageSize: 100 }).then((r) => r.scenarios),
      config.listRubrics({ parent: org(), pageSize: 100 }).then((r) => r.rubrics),
    ]);
    return { members, scenarios, rubrics };
  });
  const [content, setContent] = useState("");
  const [fileName, setFileName] = useState("");
  const [format, setFormat] = useState(String(TranscriptFormat.UNSPECIFIED));
  const [rep, setRep] = useState("");
  const [trainee, setTrainee] = useState(staff ? "" : me());
  const [scenario, setScenario] = useState("");
  const [rubric, setRubric] = useState("");
  const [title, setTitle] = useState("");
  const [when, setWhen] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const pick = async (e: Event) => {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    setFileName(file.name);
    setContent(await file.text());
    const ext = file.name.split(".").pop()?.toLowerCase();
    const byExt: Record<string, TranscriptFormat> = {
      vtt: TranscriptFormat.WEBVTT,
      srt: TranscriptFormat.SRT,
      json: TranscriptFormat.JSON,
      txt: TranscriptFormat.PLAIN,
    };
    setFormat(String(byExt[ext ?? ""] ?? TranscriptFormat.UNSPECIFIED));
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setError("");
    try {
      const r = await call.importCall({
        parent: org(),
        trainee,
        scenario,
        rubric,
        format: Number(format) as TranscriptFormat,
        content,
        repSpeaker: rep,
        title,
        callTime: when ? ts(new Date(when)) : undefined,
        requestId: newId(),
      });
      go(`results/${r.session?.name.split("/").pop()}`);
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      if (!Object.keys(fe).length) setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Upload a real call">
      <p class="muted">
        The call is graded like a practice call and counted apart from practice (the dashboard's “Real calls” view).
      </p>
      <Loading state={state}>
        {({ members, scenarios, rubrics }) => (
          <form class="form" onSubmit={submit}>
            <div class={`field${errors.content ? " invalid" : ""}`}>
              <label for="call-file">Transcript file</label>
              <input
                id="call-file"
                type="file"
                accept=".txt,.vtt,.srt,.json,text/plain,text/vtt,application/json"
                onChange={pick}
                aria-invalid={errors.content ? "true" : undefined}
                aria-describedby={errors.content ? "call-file-err" : undefined}
                required
              />
              {fileName && (
                <small class="muted">
                  {fileName}: {content.length.toLocaleString()} characters
                </small>
              )}
              {errors.content && (
                <small class="field-error" id="call-file-err" role="alert" data-testid="content-error">
                  {errors.content}
                </small>
              )}
            </div>
            <Field label="Format" path="format" errors={errors} value={format} onInput={setFormat} options={FORMATS} />
            <Field
              label="The rep's speaker label"
              path="rep_speaker"
              errors={errors}
              value={rep}
              onInput={setRep}
              hint="As written in the file, e.g. “Dana”; every other speaker is the customer."
              required
            />
            {staff && (
              <Field
                label="Member"
                path="trainee"
                errors={errors}
                value={trainee}
                onInput={setTrainee}
                options={[
                  ["", "Choose a member"],
                  ...members.map((m) => [m.name, m.displayName || m.subject] as [string, string]),
                ]}
                required
              />
            )}
            <Field
              label="Rubric"
              path="rubric"
              errors={errors}
              value={rubric}
              onInput={setRubric}
              options={[["", "Choose a rubric"], ...rubrics.map((r) => [r.name, r.displayName] as [string, string])]}
              required
            />
            <Field
              label="Scenario (optional: what the call was about)"
              path="scenario"
              errors={errors}
              value={scenario}
              onInput={setScenario}
              options={[["", "No scenario"], ...scenarios.map((s) => [s.name, s.displayName] as [string, string])]}
              hint="Counts the call under that scenario and gives the grader its goal and product."
            />
            <Field label="Title" path="title" errors={errors} value={title} onInput={setTitle} />
            <Field label="When the call took place" path="call_time" errors={errors} value={when} onInput={setWhen} type="datetime-local" />
            <OtherErrors errors={errors} shown={(p) => FIELDS.includes(p)} />
            <ErrorBox text={error} />
            <button type="submit" disabled={busy || !content}>
              Upload and grade
            </button>
          </form>
        )}
      </Loading>
    </Page>
  );
}
