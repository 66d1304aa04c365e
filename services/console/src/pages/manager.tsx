// Manager pages: the organization dashboard, sessions of any trainee, grading jobs and dead
// letters with Retry and Regrade.
import { useState } from "preact/hooks";
import { SessionSource as CallSource, SessionState } from "../gen/salestrainer/call/v1/resources_pb.js";
import { JobState } from "../gen/salestrainer/grading/v1/resources_pb.js";
import { DrillImpactBasis, LeaderboardMetric, SessionSource } from "../gen/salestrainer/analytics/v1/resources_pb.js";
import { analytics, call, config, currentUser, daysAgo, errorText, fmtDate, fmtDay, grading, newId, org, timeZone } from "../api";
import { Bar, ErrorBox, Field, Loading, Page, Score, Table, TrendChart, go, useLoad } from "../ui";

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(0)}`;

export function Dashboard() {
  // Practice and real calls are never mixed: one view or the other.
  const [source, setSource] = useState(String(SessionSource.PRACTICE));
  const state = useLoad(async () => {
    const src = Number(source) as SessionSource;
    const [sum, board, as, drills, coaching] = await Promise.all([
      analytics.getOrganizationSummary({ name: org(), startTime: daysAgo(30), timeZone: timeZone(), source: src }),
      analytics.getLeaderboard({
        organization: org(),
        metric: LeaderboardMetric.AVERAGE_SCORE,
        startTime: daysAgo(30),
        pageSize: 10,
        source: src,
      }),
      config.listAssignments({ parent: org(), pageSize: 50 }),
      analytics.getDrillImpact({ organization: org(), startTime: daysAgo(30) }),
      analytics.getCoachingActivity({ organization: org(), startTime: daysAgo(30) }),
    ]);
    const progress = await Promise.all(
      as.assignments.map((a) =>
        analytics
          .getAssignmentProgress({ assignment: a.name, pageSize: 100 })
          .then((p) => ({ a, p }))
          .catch(() => ({ a, p: undefined })),
      ),
    );
    return { sum: sum.summary, board: board.entries, progress, drills: drills.criteria, coaching };
  }, [source]);
  return (
    <Page title="Dashboard">
      <Field
        label="Calls"
        path="source"
        value={source}
        onInput={setSource}
        options={[
          [String(SessionSource.PRACTICE), "Practice calls"],
          [String(SessionSource.REAL_CALL), "Real calls"],
        ]}
      />
      <Loading state={state}>
        {({ sum, board, progress, drills, coaching }) => {
          const trend = sum?.trend ?? [];
          return (
            <>
              <div class="summary-grid">
                <div class="stat">
                  <span class="label">Sessions (30 days)</span>
                  <strong data-testid="org-sessions">{sum?.sessions ?? 0}</strong>
                </div>
                <div class="stat">
                  <span class="label">Graded</span>
                  <strong>{sum?.gradedSessions ?? 0}</strong>
                </div>
                <div class="stat">
                  <span class="label">Average score</span>
                  <strong>{(sum?.averageScore ?? 0).toFixed(0)}</strong>
                </div>
                <div class="stat">
                  <span class="label">Pass rate</span>
                  <strong>{((sum?.passRate ?? 0) * 100).toFixed(0)}%</strong>
                </div>
                <div class="stat">
                  <span class="label">Close rate</span>
                  <strong>{((sum?.closeRate ?? 0) * 100).toFixed(0)}%</strong>
                </div>
              </div>
              <h2>Daily trend</h2>
              <TrendChart
                title="Average score and pass rate per day"
                dates={trend.map((p) => p.date)}
                series={[
                  // Days without a graded session are gaps, not zeros.
                  { label: "Average score", values: trend.map((p) => (p.graded ? p.averageScore : null)) },
                  { label: "Pass rate %", values: trend.map((p) => (p.graded ? p.passRate * 100 : null)) },
                ]}
              />
              <div class="two-col">
                <section>
                  <h2>Skills</h2>
                  {sum?.skills.length ? (
                    <ul class="skills">
                      {sum.skills.map((k) => (
                        <li>
                          <span>{k.skill}</span>
                          <Bar value={k.averageScore} label={k.skill} />
                          <span>{k.averageScore.toFixed(0)}</span>
                        </li>
                      ))}
                    </ul>
                  ) : (
                    <p class="muted">Nothing graded yet.</p>
                  )}
                </section>
                <section>
                  <h2>Leaderboard</h2>
                  <Table
                    empty="No graded sessions yet."
                    head={["#", "Trainee", "Average", "Sessions"]}
                    rows={board.map((e) => [
                      e.rank,
                      <a href={`#/sessions/${e.trainee.split("/").pop()}`}>{e.displayName || e.trainee.split("/").pop()}</a>,
                      e.value.toFixed(0),
                      e.sessions,
                    ])}
                  />
                </section>
              </div>
              <h2>Drill impact</h2>
              <Table
                empty="No graded drills in the last 30 days."
                caption="Score on the drilled criterion before (in the drilled evaluation), in the drill, and in the trainee's next practice session of the scenario after it; by the criterion's skill for drills graded before criterion scores were kept"
                head={["Criterion", "Skill", "Compared by", "Drills", "Before", "In drill", "Lift", "Followed up", "Next practice", "Lift (next)"]}
                rows={drills.map((d) => [
                  d.criterion,
                  d.skill,
                  d.basis === DrillImpactBasis.SKILL ? "skill" : "criterion",
                  d.drills,
                  d.meanScoreBefore.toFixed(0),
                  d.meanScoreAfter.toFixed(0),
                  signed(d.lift),
                  d.nextPracticeSessions,
                  d.nextPracticeSessions ? d.meanScoreNextPractice.toFixed(0) : "—",
                  d.nextPracticeSessions ? signed(d.nextPracticeLift) : "—",
                ])}
              />
              <h2>Coaching</h2>
              <p class="muted" data-testid="coaching-total">
                {coaching.commentCount} comments on {coaching.commentedSessionCount} sessions (30 days)
              </p>
              <div class="two-col">
                <section>
                  <Table
                    empty="No comments in the last 30 days."
                    caption="Comments trainees received from coaches, and how many they answered"
                    head={["Trainee", "Received", "Answered", "Their comments"]}
                    rows={coaching.trainees.map((t) => [
                      t.displayName || t.trainee.split("/").pop(),
                      t.commentsReceived,
                      t.commentsAnswered,
                      t.repliesWritten,
                    ])}
                  />
                </section>
                <section>
                  <Table
                    empty="No coaching comments yet."
                    caption="Comments coaches wrote on trainees' sessions"
                    head={["Coach", "Comments", "Sessions", "Trainees"]}
                    rows={coaching.coaches.map((c) => [
                      c.displayName || c.author.split("/").pop(),
                      c.commentsWritten,
                      c.sessionsCoached,
                      c.traineesCoached,
                    ])}
                  />
                </section>
              </div>
              <h2>Assignments</h2>
              <Table
                empty="No assignments."
                head={["Assignment", "Scenario", "Due", "Passed", "Overdue"]}
                rows={progress.map(({ a, p }) => [
                  a.name.split("/").pop(),
                  a.scenario.split("/").pop(),
                  fmtDay(a.dueTime),
                  p ? `${p.passedCount} / ${p.assigneeCount}` : "—",
                  p ? p.overdueCount : "—",
                ])}
              />
            </>
          );
        }}
      </Loading>
    </Page>
  );
}

const STATES: Record<number, string> = {
  [SessionState.ACTIVE]: "active",
  [SessionState.ENDED]: "ended",
  [SessionState.GRADING]: "grading",
  [SessionState.GRADED]: "graded",
  [SessionState.FAILED]: "failed",
  [SessionState.CANCELLED]: "cancelled",
};

export function Sessions({ trainee }: { trainee?: string }) {
  const staff = currentUser()?.role !== "trainee";
  const members = useLoad(
    async () => (staff ? (await config.listMembers({ parent: org(), pageSize: 200 })).members : []),
    [],
  );
  const [source, setSource] = useState(String(CallSource.UNSPECIFIED));
  const state = useLoad(
    async () =>
      (
        await call.listSessions({
          parent: org(),
          trainee: trainee ? `${org()}/members/${trainee}` : "",
          pageSize: 100,
          source: Number(source) as CallSource,
        })
      ).sessions,
    [trainee, source],
  );
  const [error, setError] = useState("");
  return (
    <Page title={staff ? "Sessions" : "My sessions"}>
      {staff && (
        <Field
          label="Trainee"
          path="trainee"
          value={trainee ?? ""}
          onInput={(v) => go(v ? `sessions/${v}` : "sessions")}
          options={[
            ["", "All trainees"],
            ...(members.data ?? []).map((m) => [m.subject, m.displayName || m.subject] as [string, string]),
          ]}
        />
      )}
      <Field
        label="Kind"
        path="source"
        value={source}
        onInput={setSource}
        options={[
          [String(CallSource.UNSPECIFIED), "All calls"],
          [String(CallSource.PRACTICE), "Practice calls"],
          [String(CallSource.REAL_CALL), "Real calls"],
        ]}
      />
      <ErrorBox text={error} />
      <Loading state={state}>
        {(sessions) => (
          <Table
            empty="No sessions."
            head={["Started", "Kind", "Trainee", "Scenario", "State", "Score", ""]}
            rows={sessions.map((s) => [
              fmtDate(s.startTime),
              s.source === CallSource.REAL_CALL ? "real call" : s.drillOf ? "drill" : "practice",
              s.trainee.split("/").pop(),
              s.scenario.split("/").pop() || "—",
              STATES[s.state] ?? "?",
              s.state === SessionState.GRADED ? <Score value={s.overallScore} passed={s.passed} /> : "—",
              <span class="row">
                <a href={`#/results/${s.name.split("/").pop()}`}>Open</a>
                {staff && (s.state === SessionState.GRADED || s.state === SessionState.FAILED) && (
                  <button
                    type="button"
                    class="link"
                    onClick={async () => {
                      try {
                        await grading.regradeSession({ session: s.name, requestId: newId() });
                        state.reload();
                      } catch (e) {
                        setError(errorText(e));
                      }
                    }}
                  >
                    Regrade
                  </button>
                )}
              </span>,
            ])}
          />
        )}
      </Loading>
    </Page>
  );
}

const JOB: Record<number, string> = {
  [JobState.QUEUED]: "queued",
  [JobState.RUNNING]: "running",
  [JobState.RETRYING]: "retrying",
  [JobState.SUCCEEDED]: "succeeded",
  [JobState.DEAD]: "dead",
};

export function Jobs() {
  const [filter, setFilter] = useState("0");
  const state = useLoad(
    async () =>
      (await grading.listGradingJobs({ parent: org(), state: Number(filter) as JobState, pageSize: 100 })).gradingJobs,
    [filter],
  );
  const [error, setError] = useState("");
  const act = async (f: () => Promise<unknown>) => {
    setError("");
    try {
      await f();
      state.reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Page title="Grading jobs">
      <Field
        label="Show"
        path="state"
        value={filter}
        onInput={setFilter}
        options={[
          ["0", "All jobs"],
          [String(JobState.DEAD), "Dead letters"],
          [String(JobState.RETRYING), "Retrying"],
          [String(JobState.SUCCEEDED), "Succeeded"],
        ]}
      />
      <ErrorBox text={error} />
      <Loading state={state}>
        {(jobs) => (
          <Table
            empty="No grading jobs."
            head={["Updated", "Session", "State", "Attempts", "Last error", ""]}
            rows={jobs.map((j) => [
              fmtDate(j.updateTime),
              <a href={`#/results/${j.session.split("/").pop()}`}>{j.session.split("/").pop()}</a>,
              JOB[j.state] ?? "?",
              `${j.attempts} / ${j.maxAttempts}`,
              j.lastError || "—",
              <span class="row">
                {j.state === JobState.DEAD && (
                  <button type="button" class="link" onClick={() => act(() => grading.retryGradingJob({ name: j.name }))}>
                    Retry
                  </button>
                )}
                {j.state === JobState.SUCCEEDED && (
                  <button
                    type="button"
                    class="link"
                    onClick={() => act(() => grading.regradeSession({ session: j.session, requestId: newId() }))}
                  >
                    Regrade
                  </button>
                )}
              </span>,
            ])}
          />
        )}
      </Loading>
    </Page>
  );
}
