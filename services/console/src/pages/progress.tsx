// My progress: trend chart, weakest skills, recent results, assignments due and overdue,
// certifications.
import { analytics, config, daysAgo, fmtDay, me, org, timeZone, toDate } from "../api";
import { call } from "../api";
import { Bar, Loading, Page, Score, Table, TrendChart, useLoad } from "../ui";
import { MyCertifications } from "./certifications";

export function Progress() {
  const state = useLoad(async () => {
    const [sum, as, ss] = await Promise.all([
      analytics.getTraineeSummary({
        trainee: me(),
        startTime: daysAgo(30),
        timeZone: timeZone(),
        recentEvaluationsLimit: 10,
      }),
      config.listAssignments({ parent: org(), pageSize: 100 }),
      call.listSessions({ parent: org(), trainee: me(), pageSize: 200 }),
    ]);
    return { sum, assignments: as.assignments.filter((a) => a.assignees.includes(me())), sessions: ss.sessions };
  });
  return (
    <Page title="My progress">
      <Loading state={state}>
        {({ sum, assignments, sessions }) => {
          const s = sum.summary;
          const trend = s?.trend ?? [];
          return (
            <>
              <div class="summary-grid">
                <div class="stat">
                  <span class="label">Sessions (30 days)</span>
                  <strong>{s?.sessions ?? 0}</strong>
                </div>
                <div class="stat">
                  <span class="label">Average score</span>
                  <strong>{(s?.averageScore ?? 0).toFixed(0)}</strong>
                </div>
                <div class="stat">
                  <span class="label">Pass rate</span>
                  <strong>{((s?.passRate ?? 0) * 100).toFixed(0)}%</strong>
                </div>
                <div class="stat">
                  <span class="label">Close rate</span>
                  <strong>{((s?.closeRate ?? 0) * 100).toFixed(0)}%</strong>
                </div>
              </div>
              <h2>Score trend</h2>
              <TrendChart
                title="Average score per day"
                dates={trend.map((p) => p.date)}
                series={[{ label: "Average score", values: trend.map((p) => (p.graded ? p.averageScore : null)) }]}
              />
              <div class="two-col">
                <section>
                  <h2>Weakest skills</h2>
                  {sum.weakestSkills.length ? (
                    <ul class="skills">
                      {sum.weakestSkills.map((k) => (
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
                  <h2>Assignments</h2>
                  <Table
                    empty="No assignments."
                    head={["Scenario", "Due", "Attempts", "Status"]}
                    rows={assignments.map((a) => {
                      const mine = sessions.filter((x) => x.assignment === a.name);
                      const passed = mine.some((x) => x.passed);
                      const due = toDate(a.dueTime);
                      const overdue = !passed && !!due && due.getTime() < Date.now();
                      return [
                        a.scenario.split("/").pop(),
                        fmtDay(a.dueTime),
                        `${mine.length} / ${a.requiredAttempts || 1}`,
                        <span class={overdue ? "error" : passed ? "ok" : ""}>
                          {passed ? "passed" : overdue ? "overdue" : "due"}
                        </span>,
                      ];
                    })}
                  />
                </section>
              </div>
              <MyCertifications />
              <h2>Recent results</h2>
              <Table
                empty="No graded sessions yet."
                head={["When", "Scenario", "Score", ""]}
                rows={sum.recentEvaluations.map((e) => [
                  fmtDay(e.createTime),
                  e.scenario.split("/").pop(),
                  <Score value={e.overallScore} passed={e.passed} />,
                  <a href={`#/results/${e.session.split("/").pop()}`}>Open</a>,
                ])}
              />
            </>
          );
        }}
      </Loading>
    </Page>
  );
}
