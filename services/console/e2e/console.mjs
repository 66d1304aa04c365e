// End-to-end test of the console in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against a running `salestrainer up`:
//   an admin creates a rubric (after seeing a validation error on its field) and a scenario,
//   renames the scenario, and creates and deletes a persona that nothing uses;
//   a trainee practises it by text, ends the call, watches it get graded and sees the grade
//   with its evidence; a manager sees it on the dashboard, overrides the score (after a
//   refused one shown on its field) and tom sees the override; an admin defines a
//   certification that tom then holds; another trainee cannot open tom's result.
// Fails on any browser console error. Usage:
//   CONSOLE_URL=http://127.0.0.1:50051 [SCREENSHOTS=dir] [CHROMIUM=/usr/bin/chromium] node e2e/console.mjs
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_URL ?? "http://127.0.0.1:50051";
const SHOTS = process.env.SCREENSHOTS ?? "";
const EXE = process.env.CHROMIUM ?? "/usr/bin/chromium";
const T = 30_000;
// Behind the gateway there is no development sign-in: CONSOLE_TOKENS maps each user's subject
// to a bearer token, pasted on the sign-in page as a user of an identity provider would.
const TOKENS = process.env.CONSOLE_TOKENS ? JSON.parse(process.env.CONSOLE_TOKENS) : null;

const step = (s) => console.log(`[console e2e] ${s}`);
const fail = (s) => {
  throw new Error(s);
};

const profile = mkdtempSync(join(tmpdir(), "salestrainer-chromium-"));
// A fresh profile per run; each page has its own sessionStorage, so its own signed-in user.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: EXE,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const problems = [];
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

async function newPage(width = 1280, height = 860) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height });
  page.setDefaultTimeout(T);
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  return page;
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, subject) {
  await page.goto(`${BASE}/`);
  if (TOKENS) {
    await page.getByLabel("Bearer token from your identity provider").fill(TOKENS[subject]);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
  } else {
    await page.locator(`button[data-subject="${subject}"]`).click();
  }
  await page.locator("header.top").waitFor();
}

try {
  // ---- admin: rubric (with a validation error shown on its field) and scenario ----
  step("admin signs in");
  const admin = await newPage();
  await admin.goto(`${BASE}/`);
  if (!TOKENS) {
    await admin.getByRole("heading", { name: "Development sign-in" }).waitFor();
    await shot(admin, "sign-in");
  } else {
    await admin.getByRole("heading", { name: "Sign in with a token" }).waitFor();
    if ((await admin.getByRole("heading", { name: "Development sign-in" }).count()) > 0)
      fail("development sign-in must not exist behind the gateway");
  }
  await signIn(admin, "demo-admin");
  await admin.getByRole("heading", { name: "Dashboard" }).waitFor();

  step("admin creates a rubric; a zero weight is refused on its field");
  await admin.goto(`${BASE}/#/admin/rubrics/new`);
  await admin.getByLabel("Id", { exact: true }).first().fill("e2e-rubric");
  await admin.getByLabel("Name", { exact: true }).fill("E2E rubric");
  await admin.locator('[name="rubric.criteria[0].id"]').fill("discovery");
  await admin.locator('[name="rubric.criteria[0].skill"]').fill("Discovery");
  await admin.locator('[name="rubric.criteria[0].weight"]').fill("0");
  await admin.locator('[name="rubric.criteria[0].signal_phrases"]').fill("how do you, tell me about");
  await admin.getByRole("button", { name: "Create rubric" }).click();
  const weight = admin.locator('[name="rubric.criteria[0].weight"][aria-invalid="true"]');
  await weight.waitFor();
  const msg = await admin.locator(".field.invalid .field-error").first().textContent();
  if (!/greater than 0/.test(msg ?? "")) fail(`weight violation not shown on its field: ${msg}`);
  await shot(admin, "admin-rubric-validation");
  await admin.locator('[name="rubric.criteria[0].weight"]').fill("2");
  await admin.getByRole("button", { name: "Add criterion" }).click();
  await admin.locator('[name="rubric.criteria[1].id"]').fill("next-step");
  await admin.locator('[name="rubric.criteria[1].skill"]').fill("Next step");
  await admin.locator('[name="rubric.criteria[1].levels"]').fill("1: No next step\n5: A concrete meeting booked");
  await admin.locator('[name="rubric.criteria[1].signal_phrases"]').fill("schedule, demo, next week");
  await admin.getByRole("button", { name: "Create rubric" }).click();
  await admin.waitForURL(/#\/admin\/rubrics\/e2e-rubric$/);
  await admin.getByRole("heading", { name: "Edit E2E rubric" }).waitFor();
  await shot(admin, "admin-rubric");

  step("admin creates a scenario with that rubric");
  await admin.goto(`${BASE}/#/admin/scenarios`);
  await admin.getByRole("heading", { name: "New scenario" }).waitFor();
  await admin.getByLabel("Id", { exact: true }).fill("e2e-scenario");
  await admin.getByLabel("Name", { exact: true }).fill("E2E discovery draft");
  await admin.getByLabel("Rubric", { exact: true }).selectOption("organizations/demo/rubrics/e2e-rubric");
  await admin.getByLabel("Product brief").fill("RouteWise plans delivery routes automatically every morning.");
  await admin.getByRole("button", { name: "Create scenario" }).click();
  await admin.getByRole("cell", { name: "E2E discovery draft", exact: true }).waitFor();

  step("admin renames the scenario and sees the new name in the list");
  await admin.getByRole("button", { name: "Edit E2E discovery draft" }).click();
  await admin.getByRole("heading", { name: "Edit scenario E2E discovery draft" }).waitFor();
  await admin.getByLabel("Name", { exact: true }).fill("E2E discovery call");
  await shot(admin, "admin-scenario-edit");
  await admin.getByRole("button", { name: "Save changes" }).click();
  await admin.getByRole("status").filter({ hasText: "Scenario saved." }).waitFor();
  await admin.getByRole("cell", { name: "E2E discovery call", exact: true }).waitFor();
  if ((await admin.getByRole("cell", { name: "E2E discovery draft", exact: true }).count()) > 0) fail("the old scenario name is still listed");
  await admin.getByRole("heading", { name: "New scenario" }).waitFor();
  await shot(admin, "admin-scenarios");

  step("admin deletes a persona that no scenario uses");
  await admin.goto(`${BASE}/#/admin/personas`);
  await admin.getByRole("heading", { name: "New persona" }).waitFor();
  await admin.getByLabel("Id", { exact: true }).fill("e2e-spare");
  await admin.getByLabel("Name", { exact: true }).fill("E2E spare persona");
  await admin.getByRole("button", { name: "Create persona" }).click();
  await admin.getByRole("cell", { name: "E2E spare persona", exact: true }).waitFor();
  admin.once("dialog", (d) => d.accept());
  await admin.getByRole("button", { name: "Delete E2E spare persona" }).click();
  await admin.getByRole("status").filter({ hasText: "Deleted persona E2E spare persona." }).waitFor();
  await admin.getByRole("cell", { name: "E2E spare persona", exact: true }).waitFor({ state: "detached" });
  await shot(admin, "admin-personas");

  // ---- trainee: practise, end, watch it graded, see the result with evidence ----
  step("trainee tom practises the new scenario");
  const tom = await newPage();
  await signIn(tom, "tom");
  await tom.getByRole("heading", { name: "Practice" }).waitFor();
  await shot(tom, "trainee-practice-home");
  await tom
    .locator(".card", { has: tom.getByRole("heading", { name: "E2E discovery call" }) })
    .getByRole("button", { name: "Practise by text" })
    .click();
  await tom.waitForURL(/#\/practice\/[^/]+$/);
  const sessionId = tom.url().split("/").pop();
  await tom.locator('.bubble[data-speaker="persona"]').first().waitFor();
  const turns = [
    "How do you plan your routes today?",
    "RouteWise plans the routes automatically every morning and sends them to a driver app.",
    "I understand, price matters. Most customers your size recover the cost within three months.",
    "Can we schedule a 30 minute demo next week?",
  ];
  for (const [i, t] of turns.entries()) {
    await tom.getByLabel("What you say").fill(t);
    await tom.getByRole("button", { name: "Send" }).click();
    // The reply has arrived once the persona has i + 2 lines (greeting + one per turn) and
    // the composer is usable again.
    await tom.locator('.bubble[data-speaker="persona"]').nth(i + 1).waitFor();
    await tom.locator(".bubble .cursor").waitFor({ state: "detached" });
    await tom.getByLabel("What you say").waitFor();
  }
  await shot(tom, "trainee-practice");
  await tom.getByRole("button", { name: "End call" }).click();
  await tom.getByRole("link", { name: "See your result" }).waitFor({ timeout: 60_000 });
  const steps = await tom.locator(".steps li.done").allTextContents();
  if (!steps.includes("graded")) fail(`status steps: ${steps}`);
  await shot(tom, "trainee-graded");
  await tom.getByRole("link", { name: "See your result" }).click();
  await tom.getByText("Overall", { exact: true }).waitFor();
  await tom.locator(".criteria li").first().waitFor();
  const crits = await tom.locator(".criteria li strong").allTextContents();
  if (!crits.includes("Discovery") || !crits.includes("Next step")) fail(`criteria shown: ${crits}`);
  await tom.locator(".transcript mark").first().waitFor();
  const marked = await tom.locator(".transcript mark").count();
  if (marked < 1) fail("no evidence highlighted in the transcript");
  await tom.getByRole("cell", { name: "Talk ratio (you / total)" }).waitFor();
  await shot(tom, "trainee-result");
  step(`result shown with ${marked} highlighted quote(s)`);
  await tom.goto(`${BASE}/#/progress`);
  await tom.getByRole("heading", { name: "Weakest skills" }).waitFor();
  await tom.getByRole("heading", { name: "Score trend" }).waitFor();
  await shot(tom, "trainee-progress");

  // ---- trainee: drill the weakest moment of that result ----
  step("tom drills his result: the persona opens with the objection he handled worst");
  await tom.goto(`${BASE}/#/results/${sessionId}`);
  await tom.getByTestId("drill-this").click();
  await tom.waitForURL(/#\/practice\/[^/]+$/);
  if (tom.url().endsWith(`/${sessionId}`)) fail("the drill did not start a new session");
  const banner = tom.getByTestId("drill-banner");
  await banner.waitFor();
  const objection = await banner.getAttribute("data-objection");
  const opening = tom.locator('.bubble[data-speaker="persona"]').first();
  await opening.waitFor();
  await tom.locator(".bubble .cursor").waitFor({ state: "detached" });
  const openingText = ((await opening.textContent()) ?? "").replace(/^Customer: /, "").trim();
  if (!objection || openingText !== objection) fail(`drill opened with ${openingText}, objection ${objection}`);
  await shot(tom, "trainee-drill");
  // The drill is short: the persona ends it after drill_max_turns (4) turns.
  for (let i = 0; i < 4; i++) {
    await tom.getByLabel("What you say").fill(`I hear you. What would make it worth it? (${i})`);
    await tom.getByRole("button", { name: "Send" }).click();
    await tom.locator('.bubble[data-speaker="persona"]').nth(i + 1).waitFor();
    await tom.locator(".bubble .cursor").waitFor({ state: "detached" });
  }
  await tom.getByRole("link", { name: "See your result" }).waitFor({ timeout: 60_000 });

  // ---- manager: upload a real call; a bad line is named on the file field ----
  step("manager maria uploads a real call for tom");
  const uploader = await newPage();
  await signIn(uploader, "maria");
  await uploader.goto(`${BASE}/#/import`);
  await uploader.getByRole("heading", { name: "Upload a real call" }).waitFor();
  const upload = async (name, text) =>
    uploader.getByLabel("Transcript file").setInputFiles({ name, mimeType: "text/plain", buffer: Buffer.from(text) });
  await upload("call.txt", "Tom: Hi Dana, how do you plan routes today?\nDana: By hand.\nthis line names no speaker\n");
  await uploader.getByLabel("The rep's speaker label").fill("Tom");
  await uploader.getByLabel("Member").selectOption("organizations/demo/members/tom");
  // A real call with no scenario: graded on the rubric alone.
  await uploader.getByLabel("Rubric", { exact: true }).selectOption("organizations/demo/rubrics/e2e-rubric");
  await uploader.getByRole("button", { name: "Upload and grade" }).click();
  const fileError = uploader.getByTestId("content-error");
  await fileError.waitFor();
  if (!/^line 3:/.test((await fileError.textContent()) ?? "")) fail(`file error: ${await fileError.textContent()}`);
  await shot(uploader, "manager-import-error");
  await upload(
    "call.vtt",
    "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Tom>Hi Dana, how do you plan your routes today?\n\n00:00:04.500 --> 00:00:08.000\n<v Dana>By hand, and your price is too high.\n\n00:00:08.500 --> 00:00:12.000\n<v Tom>Can we schedule a demo next week?\n",
  );
  await uploader.getByRole("button", { name: "Upload and grade" }).click();
  await uploader.waitForURL(/#\/results\/[^/]+$/);
  await uploader.getByTestId("real-call").waitFor();
  await uploader.getByText("Overall", { exact: true }).waitFor({ timeout: 60_000 });
  await shot(uploader, "manager-real-call-result");

  // ---- manager: the dashboard shows it ----
  step("manager maria sees it on the dashboard");
  const maria = await newPage();
  await signIn(maria, "maria");
  let seen = false;
  for (let i = 0; i < 30 && !seen; i++) {
    await maria.goto(`${BASE}/#/dashboard`);
    await maria.reload();
    await maria.getByRole("heading", { name: "Leaderboard" }).waitFor();
    const sessions = Number(await maria.getByTestId("org-sessions").textContent());
    seen = sessions >= 1 && (await maria.getByRole("cell", { name: /tom|Tom Trainee/ }).count()) > 0;
    if (!seen) await maria.waitForTimeout(1000);
  }
  if (!seen) fail("the manager's dashboard never showed tom's graded session");
  await shot(maria, "manager-dashboard");
  step("the dashboard shows drill impact, and real calls apart from practice");
  let drilled = false;
  for (let i = 0; i < 30 && !drilled; i++) {
    await maria.reload();
    await maria.getByRole("heading", { name: "Drill impact" }).waitFor();
    drilled = (await maria.getByRole("columnheader", { name: "Lift" }).count()) > 0;
    if (!drilled) await maria.waitForTimeout(1000);
  }
  if (!drilled) fail("the dashboard never showed the drill's impact");
  await maria.getByLabel("Calls").selectOption({ label: "Real calls" });
  let real = false;
  for (let i = 0; i < 30 && !real; i++) {
    await maria.getByRole("heading", { name: "Leaderboard" }).waitFor();
    real = Number(await maria.getByTestId("org-sessions").textContent()) === 1;
    if (!real) {
      await maria.waitForTimeout(1000);
      await maria.getByLabel("Calls").selectOption({ label: "Practice calls" });
      await maria.getByLabel("Calls").selectOption({ label: "Real calls" });
    }
  }
  if (!real) fail("the real-calls view never counted the one uploaded call");
  await shot(maria, "manager-dashboard-real-calls");
  await maria.goto(`${BASE}/#/sessions/tom`);
  await maria.getByRole("link", { name: "Open" }).first().waitFor();
  await maria.goto(`${BASE}/#/jobs`);
  await maria.getByRole("columnheader", { name: "Attempts" }).waitFor();
  await shot(maria, "manager-jobs");

  // ---- manager: override tom's score (a bad one is refused on its field); tom sees it ----
  step("manager maria overrides tom's score; a criterion score off the scale is refused on its field");
  await maria.goto(`${BASE}/#/results/${sessionId}`);
  await maria.getByRole("heading", { name: "Overrides" }).waitFor();
  await maria.getByLabel("Criterion", { exact: true }).selectOption("discovery");
  await maria.getByLabel(/^Criterion score/).fill("99");
  await maria.getByLabel("Reason (shown to the trainee)").fill("Strong discovery questions");
  await maria.getByRole("button", { name: "Save override" }).click();
  await maria.locator('[name="criterion_overrides[0].score"][aria-invalid="true"]').waitFor();
  await maria.getByLabel("Criterion", { exact: true }).selectOption("");
  await maria.getByLabel(/^Overall score/).fill("88");
  await maria.getByRole("button", { name: "Save override" }).click();
  await maria.getByRole("status").filter({ hasText: "Override saved." }).waitFor();
  await maria.getByRole("cell", { name: "Strong discovery questions" }).waitFor();
  await maria.getByTestId("grader-score").waitFor();
  await shot(maria, "manager-override");

  step("tom sees the override and its reason, and no override form");
  await tom.goto(`${BASE}/#/results/${sessionId}`);
  await tom.reload();
  await tom.getByTestId("override-note").filter({ hasText: "Strong discovery questions" }).waitFor();
  const shown = await tom.locator(".stat.big .score").textContent();
  if (shown !== "88") fail(`tom's result shows ${shown}, not the override`);
  if ((await tom.getByRole("button", { name: "Save override" }).count()) > 0) fail("a trainee was offered the override form");
  await shot(tom, "trainee-result-override");

  // ---- certifications: the admin defines one; tom holds it with the overridden score ----
  step("admin defines a certification; tom holds it (the override counts); he sees it on his progress");
  await admin.goto(`${BASE}/#/certifications`);
  await admin.getByRole("heading", { name: "Define a certification" }).waitFor();
  await admin.getByLabel("Name", { exact: true }).fill("E2E certified");
  await admin.getByLabel("E2E discovery call", { exact: true }).fill("80");
  await admin.getByRole("button", { name: "Create certification" }).click();
  await admin.getByRole("heading", { name: "E2E certified" }).waitFor();
  let held = false;
  for (let i = 0; i < 20 && !held; i++) {
    const section = admin.locator("section", { has: admin.getByRole("heading", { name: "E2E certified" }) });
    held = (await section.getByRole("cell", { name: "held", exact: true }).count()) > 0;
    if (!held) {
      await admin.waitForTimeout(500);
      await admin.reload();
      await admin.getByRole("heading", { name: "E2E certified" }).waitFor();
    }
  }
  if (!held) fail("tom does not hold the certification his overridden score earns");
  await shot(admin, "manager-certifications");
  await tom.goto(`${BASE}/#/progress`);
  await tom.getByRole("heading", { name: "Certifications" }).waitFor();
  await tom.getByRole("cell", { name: "E2E certified" }).waitFor();
  await tom.getByRole("cell", { name: "held", exact: true }).waitFor();

  // ---- another trainee cannot open tom's result ----
  step("trainee tina cannot open tom's result");
  const tina = await newPage(390, 844);
  await signIn(tina, "tina");
  await tina.goto(`${BASE}/#/results/${sessionId}`);
  const alert = tina.getByRole("alert");
  await alert.waitFor();
  const text = (await alert.textContent()) ?? "";
  if (!/Not allowed|Not found/.test(text)) fail(`tina saw: ${text}`);
  if ((await tina.getByText("Overall", { exact: true }).count()) > 0) fail("tina saw tom's scores");
  await shot(tina, "trainee-denied-phone");
  await tina.goto(`${BASE}/#/practice`);
  await tina.getByRole("heading", { name: "Scenarios" }).waitFor();
  await shot(tina, "trainee-practice-phone");

  // The keyboard reaches the main navigation from the top of the page.
  await tina.keyboard.press("Tab");
  const focused = await tina.evaluate(() => document.activeElement?.textContent ?? "");
  if (!/Skip to content/.test(focused)) fail(`first Tab stop is ${focused}`);

  if (problems.length) fail(`browser reported errors:\n${problems.join("\n")}`);
  step("all passed");
} catch (e) {
  console.error(`[console e2e] FAILED: ${e instanceof Error ? e.stack : e}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
