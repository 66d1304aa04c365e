// Certifications: admins define them (scenarios with a passing score each, attempts within a
// window, validity); managers and admins see who holds each and who is close, and revoke an
// award; trainees see their own standings on their progress page (MyCertifications).
import { useState } from "preact/hooks";
import { CertificationState, type CertificationStanding } from "../gen/salestrainer/analytics/v1/resources_pb.js";
import type { Certification } from "../gen/salestrainer/config/v1/resources_pb.js";
import { analytics, config, currentUser, errorText, fieldErrors, fmtDay, lastSegment, me, org } from "../api";
import { ErrorBox, Field, Loading, OtherErrors, Page, Table, useLoad } from "../ui";

const DAY = 86_400;

export const stateText = (s: CertificationState) =>
  ({
    [CertificationState.HELD]: "held",
    [CertificationState.EXPIRED]: "expired",
    [CertificationState.REVOKED]: "revoked",
    [CertificationState.NOT_EARNED]: "in progress",
    [CertificationState.UNSPECIFIED]: "—",
  })[s];

const requirementsText = (s: CertificationStanding) =>
  s.requirements
    .map((r) => `${lastSegment(r.scenario)}: best ${r.bestScore.toFixed(0)} / ${r.passingScore.toFixed(0)} (${r.attempts}${r.attemptsAllowed ? ` of ${r.attemptsAllowed}` : ""} attempts)`)
    .join("; ");

export function Certifications() {
  const admin = currentUser()?.role === "admin";
  const state = useLoad(async () => {
    const [cs, ss] = await Promise.all([
      config.listCertifications({ parent: org(), pageSize: 100 }),
      config.listScenarios({ parent: org(), pageSize: 200 }),
    ]);
    return { certifications: cs.certifications, scenarios: ss.scenarios };
  });
  return (
    <Page title="Certifications">
      <Loading state={state}>
        {({ certifications, scenarios }) => (
          <>
            {!certifications.length && <p class="muted">No certifications defined yet.</p>}
            {certifications.map((c) => (
              <Holders c={c} admin={admin} onDeleted={state.reload} />
            ))}
            {admin && <Define scenarios={scenarios.map((s) => [s.name, s.displayName])} onCreated={state.reload} />}
          </>
        )}
      </Loading>
    </Page>
  );
}

/** Who holds one certification and who is close, with Revoke. */
function Holders({ c, admin, onDeleted }: { c: Certification; admin: boolean; onDeleted: () => void }) {
  const progress = useLoad(() => analytics.getCertificationProgress({ certification: c.name, pageSize: 100 }), [c.name]);
  const [error, setError] = useState("");
  const revoke = async (s: CertificationStanding) => {
    const reason = prompt(`Why revoke ${s.displayName || lastSegment(s.trainee)}'s award?`);
    if (!reason) return;
    setError("");
    try {
      await analytics.revokeCertificationAward({ certification: c.name, trainee: s.trainee, reason });
      progress.reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const remove = async () => {
    if (!confirm(`Delete the certification ${c.displayName}?`)) return;
    try {
      await config.deleteCertification({ name: c.name, etag: c.etag });
      onDeleted();
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <section>
      <h2>{c.displayName}</h2>
      <p class="muted">
        {c.requirements.map((r) => `${lastSegment(r.scenario)} ≥ ${r.passingScore}`).join(", ")}
        {c.maxAttempts ? ` · first ${c.maxAttempts} attempts count` : ""}
        {c.attemptWindow ? ` · within ${Number(c.attemptWindow.seconds) / DAY} days` : ""}
        {c.validity ? ` · valid ${Number(c.validity.seconds) / DAY} days` : " · never expires"}
      </p>
      <ErrorBox text={error} />
      <Loading state={progress}>
        {(p) => (
          <>
            <p>
              <strong>{p.holderCount}</strong> holder(s) of {p.standingCount} trainee(s) who tried.
            </p>
            <Table
              caption={`Holders of ${c.displayName}, then who is closest`}
              empty="Nobody has tried the required scenarios yet."
              head={["Trainee", "State", "Requirements met", "Progress", "Earned", "Expires", ""]}
              rows={p.standings.map((s) => [
                s.displayName || lastSegment(s.trainee),
                stateText(s.state) + (s.revokeReason ? ` (revoked: ${s.revokeReason})` : ""),
                `${s.requirementsMet} / ${s.requirementCount}`,
                requirementsText(s),
                fmtDay(s.earnTime),
                fmtDay(s.expireTime),
                s.state === CertificationState.HELD ? (
                  <button type="button" class="secondary" onClick={() => revoke(s)}>
                    Revoke
                  </button>
                ) : (
                  ""
                ),
              ])}
            />
          </>
        )}
      </Loading>
      {admin && (
        <button type="button" class="secondary" onClick={remove}>
          Delete {c.displayName}
        </button>
      )}
    </section>
  );
}

/** Admin: a new certification. */
function Define({ scenarios, onCreated }: { scenarios: [string, string][]; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [pass, setPass] = useState<Record<string, string>>({});
  const [attempts, setAttempts] = useState("3");
  const [windowDays, setWindowDays] = useState("30");
  const [validDays, setValidDays] = useState("365");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [ok, setOk] = useState("");
  const picked = scenarios.filter(([n]) => (pass[n] ?? "").trim() !== "");
  const secs = (days: string) => (days.trim() === "" || Number(days) === 0 ? undefined : { seconds: BigInt(Math.round(Number(days) * DAY)), nanos: 0 });
  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setError("");
    setOk("");
    try {
      await config.createCertification({
        parent: org(),
        certification: {
          displayName: name,
          requirements: picked.map(([scenario]) => ({ scenario, passingScore: Number(pass[scenario]) })),
          maxAttempts: Number(attempts || 0),
          attemptWindow: secs(windowDays),
          validity: secs(validDays),
        },
      });
      setOk("Certification created.");
      setName("");
      setPass({});
      onCreated();
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      setError(Object.keys(fe).length ? "Please correct the highlighted fields." : errorText(err));
    }
  };
  const paths = ["certification.display_name", "certification.max_attempts", "certification.attempt_window", "certification.validity"];
  return (
    <form class="form" onSubmit={submit} aria-label="Define a certification">
      <h2>Define a certification</h2>
      <Field label="Name" path="certification.display_name" required errors={errors} value={name} onInput={setName} />
      <fieldset>
        <legend>Required scenarios and their passing score (leave empty if not required)</legend>
        {scenarios.map(([n, label]) => (
          <Field
            label={label || lastSegment(n)}
            path={`certification.requirements[${picked.findIndex(([p]) => p === n)}].passing_score`}
            type="number"
            step="1"
            errors={errors}
            value={pass[n] ?? ""}
            onInput={(x) => setPass((s) => ({ ...s, [n]: x }))}
          />
        ))}
        {errors["certification.requirements"] && (
          <p class="field-error" role="alert">
            {errors["certification.requirements"]}
          </p>
        )}
      </fieldset>
      <Field label="Attempts that count per scenario (0: all)" path="certification.max_attempts" type="number" errors={errors} value={attempts} onInput={setAttempts} />
      <Field label="Within a window of (days, empty: any time)" path="certification.attempt_window" type="number" errors={errors} value={windowDays} onInput={setWindowDays} />
      <Field label="Valid for (days, empty: never expires)" path="certification.validity" type="number" errors={errors} value={validDays} onInput={setValidDays} />
      <OtherErrors errors={errors} shown={(p) => paths.includes(p) || p.startsWith("certification.requirements")} />
      <ErrorBox text={error} />
      {ok && (
        <p class="ok" role="status">
          {ok}
        </p>
      )}
      <button type="submit">Create certification</button>
    </form>
  );
}

/** The trainee's own standings, for the progress page. */
export function MyCertifications() {
  const state = useLoad(() => analytics.listTraineeCertifications({ trainee: me() }));
  return (
    <section>
      <h2>Certifications</h2>
      <Loading state={state}>
        {(r) => (
          <Table
            empty="No certifications in your organization yet."
            head={["Certification", "State", "Requirements met", "Progress", "Earned", "Expires"]}
            rows={r.standings.map((s) => [
              s.certificationDisplayName || lastSegment(s.certification),
              stateText(s.state) + (s.revokeReason ? ` (revoked: ${s.revokeReason})` : ""),
              `${s.requirementsMet} / ${s.requirementCount}`,
              requirementsText(s),
              fmtDay(s.earnTime),
              fmtDay(s.expireTime),
            ])}
          />
        )}
      </Loading>
    </section>
  );
}
