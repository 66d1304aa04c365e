// Admin: members and roles, personas, scenarios, the rubric editor, provider credentials
// (Test, masked key), prompt templates with revisions, assignments. Validation errors come
// back as google.rpc.BadRequest field violations and are shown on their field.
import { useRef, useState } from "preact/hooks";
import { ConnectError } from "@connectrpc/connect";
import { Difficulty, GoalKind, PromptPurpose, ProviderKind, Role, TestOutcome } from "../gen/salestrainer/config/v1/resources_pb.js";
import type { Criterion, Rubric } from "../gen/salestrainer/config/v1/resources_pb.js";
import { Code, config, errorText, fieldErrors, fmtDate, fmtDay, isCode, lastSegment, org, toDate, ts } from "../api";
import { ErrorBox, Field, Loading, OtherErrors, Page, Table, Tabs, go, useLoad } from "../ui";

const TABS: [string, string][] = [
  ["admin/members", "Members"],
  ["admin/personas", "Personas"],
  ["admin/scenarios", "Scenarios"],
  ["admin/rubrics", "Rubrics"],
  ["admin/credentials", "Credentials"],
  ["admin/templates", "Prompt templates"],
  ["admin/assignments", "Assignments"],
];

const ROLES: [string, string][] = [
  [String(Role.TRAINEE), "trainee"],
  [String(Role.MANAGER), "manager"],
  [String(Role.ADMIN), "admin"],
];

export function Admin({ section, id }: { section: string; id?: string }) {
  const body =
    section === "members" ? (
      <Members />
    ) : section === "personas" ? (
      <Personas />
    ) : section === "scenarios" ? (
      <Scenarios />
    ) : section === "rubrics" ? (
      id ? <RubricEditor id={id} /> : <Rubrics />
    ) : section === "credentials" ? (
      <Credentials />
    ) : section === "templates" ? (
      <Templates />
    ) : (
      <Assignments />
    );
  return (
    <Page title="Admin">
      <Tabs tabs={TABS} current={`admin/${section}`} />
      {body}
    </Page>
  );
}

/** Form state plus the submit that maps errors onto fields, and the resource being edited
 * (its name, its etag and the values it was loaded with) when the form edits one. */
function useForm<T extends Record<string, string>>(init: T) {
  const [v, setV] = useState(init);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [ok, setOk] = useState("");
  const [stale, setStale] = useState(false);
  const [editing, setEditing] = useState<{ name: string; etag: string; init: T } | null>(null);
  const ref = useRef<HTMLFormElement>(null);
  const set = (k: keyof T) => (x: string) => setV((s) => ({ ...s, [k]: x }));
  const clear = () => {
    setErrors({});
    setError("");
    setOk("");
    setStale(false);
  };
  const submit = async (f: () => Promise<unknown>, done = "Saved.") => {
    clear();
    try {
      await f();
      setOk(done);
      return true;
    } catch (e) {
      const fe = fieldErrors(e);
      setErrors(fe);
      setStale(isCode(e, Code.Aborted));
      if (!Object.keys(fe).length) setError(errorText(e));
      else setError("Please correct the highlighted fields.");
      return false;
    }
  };
  /** Loads a resource into the form and moves the focus there. */
  const edit = (name: string, etag: string, values: T) => {
    clear();
    setEditing({ name, etag, init: values });
    setV(values);
    setTimeout(() => {
      ref.current?.scrollIntoView({ block: "start" });
      ref.current?.querySelector<HTMLElement>("input, select, textarea")?.focus();
    });
  };
  const cancel = () => {
    setEditing(null);
    setV(init);
  };
  /** The update_mask paths of the fields whose value differs from the loaded one. */
  const changed = (paths: Partial<Record<keyof T, string>>) => {
    const out: string[] = [];
    for (const k of Object.keys(paths) as (keyof T)[]) {
      const p = paths[k] as string;
      if (editing && editing.init[k] !== v[k] && !out.includes(p)) out.push(p);
    }
    return out;
  };
  return { v, setV, set, errors, error, ok, stale, submit, editing, edit, cancel, changed, ref, setOk, clear };
}

function Status({ error, ok, stale, onReload }: { error: string; ok: string; stale?: boolean; onReload?: () => void }) {
  return (
    <>
      <ErrorBox text={error} />
      {stale && onReload && (
        <button type="button" class="secondary" onClick={onReload}>
          Reload
        </button>
      )}
      {ok && (
        <p class="ok" role="status">
          {ok}
        </p>
      )}
    </>
  );
}

/** Edit and Delete buttons for one row of a list. */
function RowActions(props: { label: string; onEdit: () => void; onDelete: () => void }) {
  return (
    <span class="row">
      <button type="button" class="link" aria-label={`Edit ${props.label}`} onClick={props.onEdit}>
        Edit
      </button>
      <button type="button" class="link danger" aria-label={`Delete ${props.label}`} onClick={props.onDelete}>
        Delete
      </button>
    </span>
  );
}

/** Deletes after a confirmation; an in-use resource (FAILED_PRECONDITION) or a stale etag
 * (ABORTED) is explained in the row status. */
function useDelete(reload: () => void) {
  const [error, setError] = useState("");
  const [ok, setOk] = useState("");
  const [stale, setStale] = useState(false);
  const run = async (what: string, del: () => Promise<unknown>) => {
    setError("");
    setOk("");
    setStale(false);
    if (!confirm(`Delete ${what}? This cannot be undone.`)) return false;
    try {
      await del();
      setOk(`Deleted ${what}.`);
      reload();
      return true;
    } catch (e) {
      setStale(isCode(e, Code.Aborted));
      setError(isCode(e, Code.FailedPrecondition) ? `Cannot delete ${what}: ${ConnectError.from(e).rawMessage}` : errorText(e));
      return false;
    }
  };
  const status = (
    <Status
      error={error}
      ok={ok}
      stale={stale}
      onReload={() => {
        setError("");
        setStale(false);
        reload();
      }}
    />
  );
  return { run, status };
}

/** The Submit and Cancel buttons of a create-or-edit form. */
function FormButtons({ editing, create, onCancel }: { editing: boolean; create: string; onCancel: () => void }) {
  return (
    <div class="row">
      <button type="submit">{editing ? "Save changes" : create}</button>
      {editing && (
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      )}
    </div>
  );
}

function Members() {
  const list = useLoad(async () => (await config.listMembers({ parent: org(), pageSize: 200 })).members);
  const f = useForm({ subject: "", displayName: "", email: "", role: String(Role.TRAINEE) });
  const [rowError, setRowError] = useState("");
  return (
    <>
      <Loading state={list}>
        {(members) => (
          <Table
            caption="Members"
            head={["Subject", "Name", "Email", "Role", ""]}
            rows={members.map((m) => [
              m.subject,
              m.displayName,
              m.email,
              <select
                aria-label={`Role of ${m.subject}`}
                value={String(m.role)}
                onChange={async (e) => {
                  try {
                    await config.updateMember({
                      member: { name: m.name, role: Number(e.currentTarget.value) as Role, etag: m.etag },
                      updateMask: { paths: ["role"] },
                    });
                    list.reload();
                  } catch (err) {
                    setRowError(errorText(err));
                  }
                }}
              >
                {ROLES.map(([v, l]) => (
                  <option value={v}>{l}</option>
                ))}
              </select>,
              <button
                type="button"
                class="link danger"
                onClick={async () => {
                  if (!confirm(`Remove ${m.subject}?`)) return;
                  try {
                    await config.deleteMember({ name: m.name });
                    list.reload();
                  } catch (err) {
                    setRowError(errorText(err));
                  }
                }}
              >
                Remove
              </button>,
            ])}
          />
        )}
      </Loading>
      <ErrorBox text={rowError} />
      <form
        class="panel"
        onSubmit={async (e) => {
          e.preventDefault();
          const ok = await f.submit(() =>
            config.createMember({
              parent: org(),
              memberId: f.v.subject,
              member: { subject: f.v.subject, displayName: f.v.displayName, email: f.v.email, role: Number(f.v.role) },
            }),
          );
          if (ok) list.reload();
        }}
      >
        <h2>Add a member</h2>
        <div class="grid">
          <Field label="Subject (user id at the identity provider)" path="member.subject" errors={f.errors} value={f.v.subject} onInput={f.set("subject")} />
          <Field label="Display name" path="member.display_name" errors={f.errors} value={f.v.displayName} onInput={f.set("displayName")} />
          <Field label="Email" path="member.email" type="email" errors={f.errors} value={f.v.email} onInput={f.set("email")} />
          <Field label="Role" path="member.role" errors={f.errors} value={f.v.role} onInput={f.set("role")} options={ROLES} />
        </div>
        <OtherErrors errors={f.errors} shown={(p) => p.startsWith("member.")} />
        <button type="submit">Add member</button>
        <Status error={f.error} ok={f.ok} />
      </form>
    </>
  );
}

const DIFFICULTY: [string, string][] = [
  [String(Difficulty.EASY), "easy"],
  [String(Difficulty.MEDIUM), "medium"],
  [String(Difficulty.HARD), "hard"],
];

const PERSONA_PATHS = {
  displayName: "display_name",
  role: "role",
  company: "company",
  background: "background",
  personality: "personality",
  objections: "objections",
  difficulty: "difficulty",
  firstMessage: "first_message",
};

function Personas() {
  const list = useLoad(async () => (await config.listPersonas({ parent: org(), pageSize: 100 })).personas);
  const f = useForm({
    id: "",
    displayName: "",
    role: "",
    company: "",
    background: "",
    personality: "",
    objections: "",
    difficulty: String(Difficulty.MEDIUM),
    firstMessage: "",
  });
  const del = useDelete(list.reload);
  const reload = () => {
    f.clear();
    f.cancel();
    list.reload();
  };
  return (
    <>
      <Loading state={list}>
        {(ps) => (
          <Table
            caption="Personas"
            head={["Name", "Role", "Company", "Difficulty", "Objections", ""]}
            rows={ps.map((p) => [
              p.displayName,
              p.role,
              p.company,
              DIFFICULTY.find(([v]) => v === String(p.difficulty))?.[1] ?? "—",
              p.objections.length,
              <RowActions
                label={p.displayName}
                onEdit={() =>
                  f.edit(p.name, p.etag, {
                    id: lastSegment(p.name),
                    displayName: p.displayName,
                    role: p.role,
                    company: p.company,
                    background: p.background,
                    personality: p.personality,
                    objections: p.objections.join("\n"),
                    difficulty: String(p.difficulty),
                    firstMessage: p.firstMessage,
                  })
                }
                onDelete={async () => {
                  if (await del.run(`persona ${p.displayName}`, () => config.deletePersona({ name: p.name, etag: p.etag })))
                    if (f.editing?.name === p.name) f.cancel();
                }}
              />,
            ])}
          />
        )}
      </Loading>
      {del.status}
      <form
        class="panel"
        ref={f.ref}
        onSubmit={async (e) => {
          e.preventDefault();
          const v = f.v;
          const persona = {
            displayName: v.displayName,
            role: v.role,
            company: v.company,
            background: v.background,
            personality: v.personality,
            objections: v.objections.split("\n").map((x) => x.trim()).filter(Boolean),
            difficulty: Number(v.difficulty),
            firstMessage: v.firstMessage,
          };
          const ed = f.editing;
          if (ed) {
            const paths = f.changed(PERSONA_PATHS);
            if (!paths.length) return f.setOk("Nothing changed.");
            if (
              await f.submit(
                () => config.updatePersona({ persona: { ...persona, name: ed.name, etag: ed.etag }, updateMask: { paths } }),
                "Persona saved.",
              )
            ) {
              f.cancel();
              list.reload();
            }
          } else if (await f.submit(() => config.createPersona({ parent: org(), personaId: v.id, persona }), "Persona created."))
            list.reload();
        }}
      >
        <h2>{f.editing ? `Edit persona ${f.editing.init.displayName}` : "New persona"}</h2>
        <div class="grid">
          {!f.editing && <Field label="Id" path="persona_id" errors={f.errors} value={f.v.id} onInput={f.set("id")} hint="Optional, e.g. dana" />}
          <Field label="Name" path="persona.display_name" errors={f.errors} value={f.v.displayName} onInput={f.set("displayName")} />
          <Field label="Job title" path="persona.role" errors={f.errors} value={f.v.role} onInput={f.set("role")} />
          <Field label="Company" path="persona.company" errors={f.errors} value={f.v.company} onInput={f.set("company")} />
          <Field label="Difficulty" path="persona.difficulty" errors={f.errors} value={f.v.difficulty} onInput={f.set("difficulty")} options={DIFFICULTY} />
          <Field label="Personality" path="persona.personality" errors={f.errors} value={f.v.personality} onInput={f.set("personality")} />
        </div>
        <Field label="Background" path="persona.background" multiline errors={f.errors} value={f.v.background} onInput={f.set("background")} />
        <Field label="Objections (one a line)" path="persona.objections" multiline errors={f.errors} value={f.v.objections} onInput={f.set("objections")} />
        <Field label="First message" path="persona.first_message" errors={f.errors} value={f.v.firstMessage} onInput={f.set("firstMessage")} />
        <OtherErrors errors={f.errors} shown={(p) => p.startsWith("persona.") || p === "persona_id"} />
        <FormButtons editing={!!f.editing} create="Create persona" onCancel={f.cancel} />
        <Status error={f.error} ok={f.ok} stale={f.stale} onReload={reload} />
      </form>
    </>
  );
}

const SCENARIO_PATHS = {
  displayName: "display_name",
  persona: "persona",
  rubric: "rubric",
  productBrief: "product_brief",
  goalKind: "goal",
  goal: "goal",
  openToAll: "open_to_all",
  minutes: "time_limit",
};

function Scenarios() {
  const list = useLoad(async () => {
    const [s, p, r] = await Promise.all([
      config.listScenarios({ parent: org(), pageSize: 100 }),
      config.listPersonas({ parent: org(), pageSize: 100 }),
      config.listRubrics({ parent: org(), pageSize: 100 }),
    ]);
    return { scenarios: s.scenarios, personas: p.personas, rubrics: r.rubrics };
  });
  const f = useForm({
    id: "",
    displayName: "",
    persona: "",
    rubric: "",
    productBrief: "",
    goalKind: String(GoalKind.BOOK_MEETING),
    goal: "",
    openToAll: "true",
    minutes: "10",
  });
  const del = useDelete(list.reload);
  const reload = () => {
    f.clear();
    f.cancel();
    list.reload();
  };
  return (
    <Loading state={list}>
      {({ scenarios, personas, rubrics }) => (
        <>
          <Table
            caption="Scenarios"
            head={["Name", "Persona", "Rubric", "Open to all", ""]}
            rows={scenarios.map((s) => [
              s.displayName,
              lastSegment(s.persona),
              lastSegment(s.rubric),
              s.openToAll ? "yes" : "no",
              <RowActions
                label={s.displayName}
                onEdit={() =>
                  f.edit(s.name, s.etag, {
                    id: lastSegment(s.name),
                    displayName: s.displayName,
                    persona: s.persona,
                    rubric: s.rubric,
                    productBrief: s.productBrief,
                    goalKind: String(s.goal?.kind ?? GoalKind.BOOK_MEETING),
                    goal: s.goal?.description ?? "",
                    openToAll: String(s.openToAll),
                    minutes: String(Number(s.timeLimit?.seconds ?? 0n) / 60),
                  })
                }
                onDelete={async () => {
                  if (await del.run(`scenario ${s.displayName}`, () => config.deleteScenario({ name: s.name, etag: s.etag })))
                    if (f.editing?.name === s.name) f.cancel();
                }}
              />,
            ])}
          />
          {del.status}
          <form
            class="panel"
            ref={f.ref}
            onSubmit={async (e) => {
              e.preventDefault();
              const v = f.v;
              const scenario = {
                displayName: v.displayName,
                persona: v.persona || personas[0]?.name || "",
                rubric: v.rubric || rubrics[0]?.name || "",
                productBrief: v.productBrief,
                goal: { kind: Number(v.goalKind), description: v.goal },
                openToAll: v.openToAll === "true",
                timeLimit: { seconds: BigInt(Math.round(Number(v.minutes || "0") * 60)) },
              };
              const ed = f.editing;
              if (ed) {
                const paths = f.changed(SCENARIO_PATHS);
                if (!paths.length) return f.setOk("Nothing changed.");
                if (
                  await f.submit(
                    () => config.updateScenario({ scenario: { ...scenario, name: ed.name, etag: ed.etag }, updateMask: { paths } }),
                    "Scenario saved.",
                  )
                ) {
                  f.cancel();
                  list.reload();
                }
              } else if (await f.submit(() => config.createScenario({ parent: org(), scenarioId: v.id, scenario }), "Scenario created."))
                list.reload();
            }}
          >
            <h2>{f.editing ? `Edit scenario ${f.editing.init.displayName}` : "New scenario"}</h2>
            <div class="grid">
              {!f.editing && <Field label="Id" path="scenario_id" errors={f.errors} value={f.v.id} onInput={f.set("id")} hint="Optional" />}
              <Field label="Name" path="scenario.display_name" errors={f.errors} value={f.v.displayName} onInput={f.set("displayName")} />
              <Field
                label="Persona"
                path="scenario.persona"
                errors={f.errors}
                value={f.v.persona || personas[0]?.name || ""}
                onInput={f.set("persona")}
                options={personas.map((p) => [p.name, p.displayName])}
              />
              <Field
                label="Rubric"
                path="scenario.rubric"
                errors={f.errors}
                value={f.v.rubric || rubrics[0]?.name || ""}
                onInput={f.set("rubric")}
                options={rubrics.map((r) => [r.name, r.displayName])}
              />
              <Field
                label="Goal"
                path="scenario.goal.kind"
                errors={f.errors}
                value={f.v.goalKind}
                onInput={f.set("goalKind")}
                options={[
                  [String(GoalKind.BOOK_MEETING), "book a meeting"],
                  [String(GoalKind.AGREE_PURCHASE), "agree a purchase"],
                  [String(GoalKind.CUSTOM), "custom"],
                ]}
              />
              <Field label="Goal description" path="scenario.goal.description" errors={f.errors} value={f.v.goal} onInput={f.set("goal")} />
              <Field label="Time limit (minutes)" path="scenario.time_limit" type="number" errors={f.errors} value={f.v.minutes} onInput={f.set("minutes")} />
              <Field
                label="Open to all trainees"
                path="scenario.open_to_all"
                errors={f.errors}
                value={f.v.openToAll}
                onInput={f.set("openToAll")}
                options={[
                  ["true", "yes"],
                  ["false", "no (assignments only)"],
                ]}
              />
            </div>
            <Field label="Product brief" path="scenario.product_brief" multiline errors={f.errors} value={f.v.productBrief} onInput={f.set("productBrief")} />
            <OtherErrors errors={f.errors} shown={(p) => p.startsWith("scenario.") || p === "scenario_id"} />
            <FormButtons editing={!!f.editing} create="Create scenario" onCancel={f.cancel} />
            <Status error={f.error} ok={f.ok} stale={f.stale} onReload={reload} />
          </form>
        </>
      )}
    </Loading>
  );
}

function Rubrics() {
  const list = useLoad(async () => (await config.listRubrics({ parent: org(), pageSize: 100 })).rubrics);
  return (
    <>
      <p>
        <a class="button" href="#/admin/rubrics/new">
          New rubric
        </a>
      </p>
      <Loading state={list}>
        {(rs) => (
          <Table
            caption="Rubrics"
            head={["Name", "Criteria", "Passing score", ""]}
            rows={rs.map((r) => [
              r.displayName,
              r.criteria.map((c) => c.skill).join(", "),
              r.passingScore,
              <a href={`#/admin/rubrics/${lastSegment(r.name)}`}>Edit</a>,
            ])}
          />
        )}
      </Loading>
    </>
  );
}

interface CritForm {
  id: string;
  skill: string;
  description: string;
  weight: string;
  scaleMin: string;
  scaleMax: string;
  levels: string;
  phrases: string;
}

const toForm = (c: Criterion): CritForm => ({
  id: c.id,
  skill: c.skill,
  description: c.description,
  weight: String(c.weight),
  scaleMin: String(c.scaleMin),
  scaleMax: String(c.scaleMax),
  levels: c.levels.map((l) => `${l.score}: ${l.description}`).join("\n"),
  phrases: c.signalPhrases.join(", "),
});

const blankCriterion = (): CritForm => ({
  id: "",
  skill: "",
  description: "",
  weight: "1",
  scaleMin: "1",
  scaleMax: "5",
  levels: "",
  phrases: "",
});

function RubricEditor({ id }: { id: string }) {
  const isNew = id === "new";
  const name = `${org()}/rubrics/${id}`;
  const loaded = useLoad(async () => (isNew ? undefined : (await config.getRubric({ name })).rubric) ?? null, [id]);
  return (
    <Loading state={loaded}>
      {(r) => <RubricForm key={id} isNew={isNew} rubric={r} />}
    </Loading>
  );
}

function RubricForm({ isNew, rubric }: { isNew: boolean; rubric: Rubric | null }) {
  const [rid, setRid] = useState("");
  const [displayName, setDisplayName] = useState(rubric?.displayName ?? "");
  const [passing, setPassing] = useState(String(rubric?.passingScore ?? 70));
  const [crits, setCrits] = useState<CritForm[]>(rubric ? rubric.criteria.map(toForm) : [blankCriterion()]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [ok, setOk] = useState("");

  const setC = (i: number, k: keyof CritForm) => (v: string) =>
    setCrits((cs) => cs.map((c, j) => (j === i ? { ...c, [k]: v } : c)));

  const build = () => ({
    name: rubric?.name ?? "",
    displayName,
    passingScore: Number(passing),
    etag: rubric?.etag ?? "",
    criteria: crits.map((c) => ({
      id: c.id.trim(),
      skill: c.skill.trim(),
      description: c.description,
      weight: c.weight.trim() === "" ? 0 : Number(c.weight),
      scaleMin: Number(c.scaleMin || "0"),
      scaleMax: Number(c.scaleMax || "0"),
      levels: c.levels
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => {
          const m = /^(-?\d+)\s*[:.-]\s*(.*)$/.exec(l);
          return m ? { score: Number(m[1]), description: m[2] } : { score: Number.NaN, description: l };
        })
        .map((l) => ({ score: Number.isFinite(l.score) ? l.score : -1, description: l.description })),
      signalPhrases: c.phrases
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
    })),
  });

  const save = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setError("");
    setOk("");
    try {
      if (isNew) {
        const r = await config.createRubric({ parent: org(), rubricId: rid, rubric: build() });
        setOk("Rubric created.");
        go(`admin/rubrics/${lastSegment(r.rubric?.name ?? "")}`);
      } else {
        await config.updateRubric({ rubric: build(), updateMask: { paths: ["display_name", "criteria", "passing_score"] } });
        setOk("Rubric saved.");
      }
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(Object.keys(fe).length ? "Please correct the highlighted fields." : errorText(err));
    }
  };

  // Level and phrase violations name one entry ("...levels[2].score"); show them on the box.
  const critErr = (i: number, k: string) => {
    const p = `rubric.criteria[${i}].${k}`;
    const hit = Object.entries(errors).find(([f]) => f === p || f.startsWith(`${p}[`));
    return hit ? { [p]: hit[1] } : {};
  };
  const shown = (p: string) =>
    ["rubric.display_name", "rubric.passing_score", "rubric_id"].includes(p) ||
    /^rubric\.criteria\[\d+\]\.(id|skill|description|weight|scale_min|scale_max|levels|signal_phrases)/.test(p);

  return (
    <form class="panel" onSubmit={save} noValidate>
      <h2>{isNew ? "New rubric" : `Edit ${rubric?.displayName}`}</h2>
      <div class="grid">
        {isNew && <Field label="Id" path="rubric_id" errors={errors} value={rid} onInput={setRid} hint="Optional" />}
        <Field label="Name" path="rubric.display_name" errors={errors} value={displayName} onInput={setDisplayName} />
        <Field label="Passing score (0–100)" path="rubric.passing_score" type="number" errors={errors} value={passing} onInput={setPassing} />
      </div>
      <ErrorBox text={errors["rubric.criteria"]} />
      {crits.map((c, i) => (
        <fieldset class="criterion">
          <legend>Criterion {i + 1}</legend>
          <div class="grid">
            <Field label="Id" path={`rubric.criteria[${i}].id`} errors={errors} value={c.id} onInput={setC(i, "id")} />
            <Field label="Skill" path={`rubric.criteria[${i}].skill`} errors={errors} value={c.skill} onInput={setC(i, "skill")} />
            <Field label="Weight" path={`rubric.criteria[${i}].weight`} type="number" step="any" errors={errors} value={c.weight} onInput={setC(i, "weight")} />
            <Field label="Scale min" path={`rubric.criteria[${i}].scale_min`} type="number" errors={errors} value={c.scaleMin} onInput={setC(i, "scaleMin")} />
            <Field label="Scale max" path={`rubric.criteria[${i}].scale_max`} type="number" errors={errors} value={c.scaleMax} onInput={setC(i, "scaleMax")} />
          </div>
          <Field label="Description" path={`rubric.criteria[${i}].description`} errors={errors} value={c.description} onInput={setC(i, "description")} />
          <Field
            label="Levels (one a line, score: description)"
            path={`rubric.criteria[${i}].levels`}
            multiline
            errors={critErr(i, "levels")}
            value={c.levels}
            onInput={setC(i, "levels")}
          />
          <Field
            label="Signal phrases (comma separated)"
            path={`rubric.criteria[${i}].signal_phrases`}
            errors={critErr(i, "signal_phrases")}
            value={c.phrases}
            onInput={setC(i, "phrases")}
          />
          <button type="button" class="link danger" onClick={() => setCrits((cs) => cs.filter((_, j) => j !== i))}>
            Remove criterion {i + 1}
          </button>
        </fieldset>
      ))}
      <OtherErrors errors={errors} shown={shown} />
      <div class="row">
        <button type="button" class="secondary" onClick={() => setCrits((cs) => [...cs, blankCriterion()])}>
          Add criterion
        </button>
        <button type="submit">{isNew ? "Create rubric" : "Save rubric"}</button>
      </div>
      <Status error={error} ok={ok} />
    </form>
  );
}

const KINDS: [string, string][] = [
  [String(ProviderKind.OPENAI_COMPATIBLE), "OpenAI-compatible LLM"],
  [String(ProviderKind.VAPI), "VAPI (voice)"],
  [String(ProviderKind.RETELL), "Retell (voice)"],
];

const OUTCOME: Record<number, string> = {
  [TestOutcome.OK]: "ok",
  [TestOutcome.UNAUTHORIZED]: "unauthorized",
  [TestOutcome.UNREACHABLE]: "unreachable",
  [TestOutcome.TIMEOUT]: "timed out",
  [TestOutcome.ERROR]: "error",
};

function Credentials() {
  const list = useLoad(async () => (await config.listProviderCredentials({ parent: org(), pageSize: 100 })).providerCredentials);
  const f = useForm({ id: "", kind: String(ProviderKind.OPENAI_COMPATIBLE), displayName: "", baseUrl: "", model: "", apiKey: "", webhookSecret: "", publicKey: "" });
  const [testing, setTesting] = useState("");
  const [rowError, setRowError] = useState("");
  const del = useDelete(list.reload);
  const reload = () => {
    f.clear();
    f.cancel();
    list.reload();
  };
  // The server clears the stored key (and a webhook secret) when the base URL changes
  // without a new key in the same request.
  const clearsKey = !!f.editing && f.v.baseUrl !== f.editing.init.baseUrl && !f.v.apiKey.trim();
  return (
    <>
      <Loading state={list}>
        {(cs) => (
          <Table
            caption="Provider credentials"
            head={["Name", "Kind", "Base URL / model", "Key", "Last test", "", ""]}
            rows={cs.map((c) => [
              c.displayName || lastSegment(c.name),
              KINDS.find(([v]) => v === String(c.kind))?.[1] ?? "?",
              [c.baseUrl, c.model].filter(Boolean).join(" · ") || "—",
              <code>{c.maskedApiKey || "—"}</code>,
              c.lastTestResult ? `${OUTCOME[c.lastTestResult.outcome] ?? "?"} ${fmtDate(c.lastTestResult.testTime)}` : "never",
              <button
                type="button"
                class="link"
                disabled={testing === c.name}
                onClick={async () => {
                  setTesting(c.name);
                  setRowError("");
                  try {
                    await config.testProviderCredential({ name: c.name, timeout: { seconds: 10n } });
                    list.reload();
                  } catch (e) {
                    setRowError(errorText(e));
                  } finally {
                    setTesting("");
                  }
                }}
              >
                {testing === c.name ? "Testing…" : "Test"}
              </button>,
              <RowActions
                label={c.displayName || lastSegment(c.name)}
                onEdit={() =>
                  f.edit(c.name, c.etag, {
                    id: lastSegment(c.name),
                    kind: String(c.kind),
                    displayName: c.displayName,
                    baseUrl: c.baseUrl,
                    model: c.model,
                    apiKey: "",
                    webhookSecret: "",
                    publicKey: c.publicKey,
                  })
                }
                onDelete={async () => {
                  const what = `credential ${c.displayName || lastSegment(c.name)}`;
                  if (await del.run(what, () => config.deleteProviderCredential({ name: c.name, etag: c.etag })))
                    if (f.editing?.name === c.name) f.cancel();
                }}
              />,
            ])}
          />
        )}
      </Loading>
      <ErrorBox text={rowError} />
      {del.status}
      <form
        class="panel"
        autocomplete="off"
        ref={f.ref}
        onSubmit={async (e) => {
          e.preventDefault();
          const v = f.v;
          const ed = f.editing;
          if (ed) {
            // Secrets change only when typed in: a blank key keeps the stored one.
            const paths = f.changed({ displayName: "display_name", baseUrl: "base_url", model: "model", publicKey: "public_key" });
            if (v.apiKey) paths.push("api_key");
            if (v.webhookSecret) paths.push("webhook_secret");
            if (!paths.length) return f.setOk("Nothing changed.");
            if (clearsKey && !confirm("The base URL changed and no new API key was entered: the stored key will be cleared. Save anyway?")) return;
            if (
              await f.submit(
                () =>
                  config.updateProviderCredential({
                    providerCredential: {
                      name: ed.name,
                      etag: ed.etag,
                      displayName: v.displayName,
                      baseUrl: v.baseUrl,
                      model: v.model,
                      apiKey: v.apiKey,
                      webhookSecret: v.webhookSecret,
                      publicKey: v.publicKey,
                    },
                    updateMask: { paths },
                  }),
                clearsKey ? "Credential saved; its stored key was cleared: enter a new API key before using it." : "Credential saved.",
              )
            ) {
              f.cancel();
              list.reload();
            }
            return;
          }
          if (
            await f.submit(() =>
              config.createProviderCredential({
                parent: org(),
                providerCredentialId: v.id,
                providerCredential: {
                  kind: Number(v.kind),
                  displayName: v.displayName,
                  baseUrl: v.baseUrl,
                  model: v.model,
                  apiKey: v.apiKey,
                  webhookSecret: v.webhookSecret,
                  publicKey: v.publicKey,
                },
              }),
            )
          ) {
            f.setV((s) => ({ ...s, apiKey: "", webhookSecret: "" }));
            list.reload();
          }
        }}
      >
        <h2>{f.editing ? `Edit credential ${f.editing.init.displayName || f.editing.init.id}` : "New credential"}</h2>
        <div class="grid">
          {!f.editing && (
            <>
              <Field label="Id" path="provider_credential_id" errors={f.errors} value={f.v.id} onInput={f.set("id")} hint="Optional" />
              <Field label="Kind" path="provider_credential.kind" errors={f.errors} value={f.v.kind} onInput={f.set("kind")} options={KINDS} />
            </>
          )}
          <Field label="Name" path="provider_credential.display_name" errors={f.errors} value={f.v.displayName} onInput={f.set("displayName")} />
          <Field label="Base URL" path="provider_credential.base_url" errors={f.errors} value={f.v.baseUrl} onInput={f.set("baseUrl")} />
          <Field label="Model" path="provider_credential.model" errors={f.errors} value={f.v.model} onInput={f.set("model")} />
          <Field
            label={f.editing ? "New API key" : "API key"}
            path="provider_credential.api_key"
            type="password"
            errors={f.errors}
            value={f.v.apiKey}
            onInput={f.set("apiKey")}
            hint={f.editing ? "Leave blank to keep the stored key" : undefined}
          />
          <Field
            label={f.editing ? "New webhook secret" : "Webhook secret"}
            path="provider_credential.webhook_secret"
            type="password"
            errors={f.errors}
            value={f.v.webhookSecret}
            onInput={f.set("webhookSecret")}
            hint={f.editing ? "Leave blank to keep the stored secret" : undefined}
          />
          {Number(f.editing ? f.editing.init.kind : f.v.kind) !== ProviderKind.OPENAI_COMPATIBLE && (
            <Field
              label="Public key"
              path="provider_credential.public_key"
              errors={f.errors}
              value={f.v.publicKey}
              onInput={f.set("publicKey")}
              hint="VAPI's public key for its web SDK (not secret): enables voice practice in the browser"
            />
          )}
        </div>
        {clearsKey && (
          <p class="notice" role="status">
            You changed the base URL without entering a new API key: saving will clear the stored key (and a Retell
            webhook secret), so the credential cannot be used until you enter a new key.
          </p>
        )}
        <OtherErrors errors={f.errors} shown={(p) => p.startsWith("provider_credential.") || p === "provider_credential_id"} />
        <FormButtons editing={!!f.editing} create="Save credential" onCancel={f.cancel} />
        <Status error={f.error} ok={f.ok} stale={f.stale} onReload={reload} />
      </form>
    </>
  );
}

function Templates() {
  const list = useLoad(async () => (await config.listPromptTemplates({ parent: org(), pageSize: 100 })).promptTemplates);
  const [sel, setSel] = useState("");
  return (
    <Loading state={list}>
      {(ts) => (
        <>
          <Table
            caption="Prompt templates"
            head={["Name", "Revision", "Variables", ""]}
            rows={ts.map((t) => [
              t.displayName || lastSegment(t.name),
              String(t.revision),
              t.variables.join(", "),
              <button type="button" class="link" onClick={() => setSel(t.name)}>
                Edit
              </button>,
            ])}
          />
          {sel && <TemplateEditor key={sel} name={sel} onSaved={list.reload} />}
          <NewTemplate onCreated={list.reload} />
        </>
      )}
    </Loading>
  );
}

function TemplateEditor({ name, onSaved }: { name: string; onSaved: () => void }) {
  const state = useLoad(async () => {
    const [t, revs] = await Promise.all([
      config.getPromptTemplate({ name }),
      config.listPromptTemplateRevisions({ name, pageSize: 20 }),
    ]);
    return { t: t.promptTemplate, revisions: revs.promptTemplates };
  }, [name]);
  const [body, setBody] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [msg, setMsg] = useState({ error: "", ok: "" });
  return (
    <Loading state={state}>
      {({ t, revisions }) => (
        <form
          class="panel"
          onSubmit={async (e) => {
            e.preventDefault();
            setErrors({});
            try {
              await config.updatePromptTemplate({
                promptTemplate: { name, body: body ?? t?.body ?? "", etag: t?.etag ?? "" },
                updateMask: { paths: ["body"] },
              });
              setMsg({ error: "", ok: "Saved as a new revision." });
              state.reload();
              onSaved();
            } catch (err) {
              setErrors(fieldErrors(err));
              setMsg({ error: errorText(err), ok: "" });
            }
          }}
        >
          <h2>{t?.displayName || lastSegment(name)}</h2>
          <Field label="Body" path="prompt_template.body" multiline errors={errors} value={body ?? t?.body ?? ""} onInput={setBody} />
          <button type="submit">Save new revision</button>
          <Status error={msg.error} ok={msg.ok} />
          <h3>Revisions</h3>
          <Table
            head={["Revision", "Saved", "Start of body"]}
            rows={revisions.map((r) => [
              String(r.revision),
              fmtDate(r.updateTime ?? r.createTime),
              <button type="button" class="link" onClick={() => setBody(r.body)}>
                {r.body.slice(0, 60)}…
              </button>,
            ])}
          />
        </form>
      )}
    </Loading>
  );
}

const PURPOSES: [string, string][] = [
  [String(PromptPurpose.PERSONA), "persona (system prompt)"],
  [String(PromptPurpose.CLEANUP), "transcript clean-up"],
  [String(PromptPurpose.SUMMARY), "call summary"],
  [String(PromptPurpose.GRADING), "grading"],
];

function NewTemplate({ onCreated }: { onCreated: () => void }) {
  const f = useForm({ id: "", purpose: String(PromptPurpose.PERSONA), displayName: "", body: "" });
  return (
    <form
      class="panel"
      onSubmit={async (e) => {
        e.preventDefault();
        const v = f.v;
        if (
          await f.submit(
            () =>
              config.createPromptTemplate({
                parent: org(),
                promptTemplateId: v.id,
                promptTemplate: { purpose: Number(v.purpose), displayName: v.displayName, body: v.body },
              }),
            "Prompt template created.",
          )
        ) {
          f.setV((s) => ({ ...s, id: "", displayName: "", body: "" }));
          onCreated();
        }
      }}
    >
      <h2>New prompt template</h2>
      <div class="grid">
        <Field label="Id" path="prompt_template_id" errors={f.errors} value={f.v.id} onInput={f.set("id")} hint="Optional" />
        <Field label="Purpose" path="prompt_template.purpose" errors={f.errors} value={f.v.purpose} onInput={f.set("purpose")} options={PURPOSES} />
        <Field label="Name" path="prompt_template.display_name" errors={f.errors} value={f.v.displayName} onInput={f.set("displayName")} />
      </div>
      <Field label="Template body" path="prompt_template.body" multiline errors={f.errors} value={f.v.body} onInput={f.set("body")} hint="Variables in {{braces}}" />
      <OtherErrors errors={f.errors} shown={(p) => p.startsWith("prompt_template.") || p === "prompt_template_id"} />
      <button type="submit">Create template</button>
      <Status error={f.error} ok={f.ok} />
    </form>
  );
}

const ASSIGNMENT_PATHS = {
  scenario: "scenario",
  due: "due_time",
  attempts: "required_attempts",
  passing: "passing_score",
  assignees: "assignees",
};

const dayInput = (d?: Date) =>
  d ? `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}` : "";

function Assignments() {
  const list = useLoad(async () => {
    const [a, s, m] = await Promise.all([
      config.listAssignments({ parent: org(), pageSize: 100 }),
      config.listScenarios({ parent: org(), pageSize: 100 }),
      config.listMembers({ parent: org(), pageSize: 200 }),
    ]);
    return { assignments: a.assignments, scenarios: s.scenarios, trainees: m.members.filter((x) => x.role === Role.TRAINEE) };
  });
  // assignees: the chosen trainees' names, joined by newlines (so the form can tell a change).
  const f = useForm({ id: "", scenario: "", due: "", attempts: "1", passing: "70", assignees: "" });
  const who = f.v.assignees ? f.v.assignees.split("\n") : [];
  const setWho = (g: (w: string[]) => string[]) => f.set("assignees")(g(who).join("\n"));
  const del = useDelete(list.reload);
  const reload = () => {
    f.clear();
    f.cancel();
    list.reload();
  };
  return (
    <Loading state={list}>
      {({ assignments, scenarios, trainees }) => (
        <>
          <Table
            caption="Assignments"
            head={["Id", "Scenario", "Assignees", "Due", "Attempts", "Pass at", ""]}
            rows={assignments.map((a) => [
              lastSegment(a.name),
              lastSegment(a.scenario),
              a.assignees.map(lastSegment).join(", "),
              fmtDay(a.dueTime),
              a.requiredAttempts,
              a.passingScore,
              <RowActions
                label={`assignment ${lastSegment(a.name)}`}
                onEdit={() =>
                  f.edit(a.name, a.etag, {
                    id: lastSegment(a.name),
                    scenario: a.scenario,
                    due: dayInput(toDate(a.dueTime)),
                    attempts: String(a.requiredAttempts),
                    passing: String(a.passingScore),
                    assignees: a.assignees.join("\n"),
                  })
                }
                onDelete={async () => {
                  if (await del.run(`assignment ${lastSegment(a.name)}`, () => config.deleteAssignment({ name: a.name, etag: a.etag })))
                    if (f.editing?.name === a.name) f.cancel();
                }}
              />,
            ])}
          />
          {del.status}
          <form
            class="panel"
            ref={f.ref}
            onSubmit={async (e) => {
              e.preventDefault();
              const v = f.v;
              const assignment = {
                scenario: v.scenario || scenarios[0]?.name || "",
                assignees: who,
                dueTime: v.due ? ts(new Date(`${v.due}T23:59:00`)) : undefined,
                requiredAttempts: Number(v.attempts),
                passingScore: Number(v.passing),
              };
              const ed = f.editing;
              if (ed) {
                const paths = f.changed(ASSIGNMENT_PATHS);
                if (!paths.length) return f.setOk("Nothing changed.");
                if (
                  await f.submit(
                    () =>
                      config.updateAssignment({ assignment: { ...assignment, name: ed.name, etag: ed.etag }, updateMask: { paths } }),
                    "Assignment saved.",
                  )
                ) {
                  f.cancel();
                  list.reload();
                }
              } else if (
                await f.submit(() => config.createAssignment({ parent: org(), assignmentId: v.id, assignment }), "Assignment created.")
              )
                list.reload();
            }}
          >
            <h2>{f.editing ? `Edit assignment ${f.editing.init.id}` : "New assignment"}</h2>
            <div class="grid">
              {!f.editing && <Field label="Id" path="assignment_id" errors={f.errors} value={f.v.id} onInput={f.set("id")} hint="Optional" />}
              <Field
                label="Scenario"
                path="assignment.scenario"
                errors={f.errors}
                value={f.v.scenario || scenarios[0]?.name || ""}
                onInput={f.set("scenario")}
                options={scenarios.map((s) => [s.name, s.displayName])}
              />
              <Field label="Due" path="assignment.due_time" type="date" errors={f.errors} value={f.v.due} onInput={f.set("due")} />
              <Field label="Required attempts" path="assignment.required_attempts" type="number" errors={f.errors} value={f.v.attempts} onInput={f.set("attempts")} />
              <Field label="Passing score" path="assignment.passing_score" type="number" errors={f.errors} value={f.v.passing} onInput={f.set("passing")} />
            </div>
            <fieldset>
              <legend>Assignees</legend>
              {trainees.map((t) => (
                <label class="check">
                  <input
                    type="checkbox"
                    checked={who.includes(t.name)}
                    onChange={(e) =>
                      setWho((w) => (e.currentTarget.checked ? [...w, t.name] : w.filter((x) => x !== t.name)))
                    }
                  />
                  {t.displayName || t.subject}
                </label>
              ))}
              {f.errors["assignment.assignees"] && <small class="field-error">{f.errors["assignment.assignees"]}</small>}
            </fieldset>
            <OtherErrors errors={f.errors} shown={(p) => p.startsWith("assignment.") || p === "assignment_id"} />
            <FormButtons editing={!!f.editing} create="Create assignment" onCancel={f.cancel} />
            <Status error={f.error} ok={f.ok} stale={f.stale} onReload={reload} />
          </form>
        </>
      )}
    </Loading>
  );
}
