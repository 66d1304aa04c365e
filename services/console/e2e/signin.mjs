// Redirect sign-in and voice practice in real headless Chromium against `salestrainer up` in
// production mode (started by services/salestrainer/tests/console_signin.rs, which also runs
// the fake identity provider at IDP_URL):
//   a forged sign-in response (tampered state) is refused and its code never spent;
//   a trainee signs in with the identity provider and, with no VAPI public key, sees the
//   clear message; an admin signs in, saves a VAPI credential pointing at the fake VAPI API
//   below, edits it to add the public key and tests it; the trainee then starts a voice call:
//   the web SDK posts VAPI's `POST /call/web` with the public key and the session's assistant
//   (checked here), Daily's WebRTC join cannot happen offline and the page shows the error
//   state; the trainee sees the session in their list and signs out.
// Usage: CONSOLE_URL=… IDP_URL=… VAPI_PORT=… [CHROMIUM=/usr/bin/chromium] node e2e/signin.mjs
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_URL ?? fail("CONSOLE_URL is required");
const IDP = process.env.IDP_URL ?? fail("IDP_URL is required");
const VAPI_PORT = Number(process.env.VAPI_PORT ?? fail("VAPI_PORT is required"));
const VAPI = `http://127.0.0.1:${VAPI_PORT}`;
const EXE = process.env.CHROMIUM ?? "/usr/bin/chromium";
const PUBLIC_KEY = "5e1c7a0b-3f2d-4c6e-9a8b-1d2e3f4a5b6c";
const T = 30_000;

function fail(s) {
  throw new Error(s);
}
const step = (s) => console.log(`[signin e2e] ${s}`);

// ---- the fake VAPI API: what the web SDK and the credential test call ----
const vapiCalls = [];
const vapi = createServer((req, res) => {
  const cors = {
    "access-control-allow-origin": BASE,
    "access-control-allow-headers": "authorization, content-type",
    "access-control-allow-methods": "GET, POST, OPTIONS",
  };
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    if (req.method === "GET" && req.url?.startsWith("/assistant")) {
      // The config service's credential test (server to server, with the private key).
      const ok = req.headers.authorization === "Bearer vapi-private-test-key";
      return res.writeHead(ok ? 200 : 401, { "content-type": "application/json" }).end(ok ? "[]" : '{"message":"bad key"}');
    }
    if (req.method === "POST" && req.url === "/call/web") {
      vapiCalls.push({ authorization: req.headers.authorization, body: JSON.parse(body || "{}") });
      // VAPI's answer: a Daily room the SDK then joins (unreachable here).
      return res
        .writeHead(201, { ...cors, "content-type": "application/json" })
        .end(JSON.stringify({ id: "call-fake-1", webCallUrl: "https://salestrainer-test.daily.co/unreachable-room", assistant: body ? JSON.parse(body).assistant : {} }));
    }
    res.writeHead(404, cors).end();
  });
});
await new Promise((ok) => vapi.listen(VAPI_PORT, "127.0.0.1", ok));

const profile = mkdtempSync(join(tmpdir(), "salestrainer-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: EXE,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
});
const problems = [];
// While the voice call runs, the SDK's WebRTC client (Daily) fails to reach its servers:
// those errors are expected there, and only there.
let expectDailyErrors = false;
// Once Daily has run, it reports its failure to its Sentry project; the console's CSP refuses
// that (nothing leaves for a third party the policy does not name), which Chromium logs.
let dailyRan = false;

async function newPage() {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 860 });
  page.setDefaultTimeout(T);
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    const expected =
      (expectDailyErrors && /daily|call-machine|Failed to load resource|\[vapi\]|meeting|WebRTC/i.test(text)) ||
      (dailyRan && /^Fetch API cannot load https:\/\/[a-z0-9]+\.ingest\.sentry\.io\/.*Content Security Policy/.test(text));
    if (expected) return step(`expected console error: ${text.slice(0, 200)}`);
    problems.push(`console error on ${page.url()}: ${text}`);
  });
  page.on("pageerror", (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  return page;
}

async function nextLogin(subject, role, tamper = false, deny = false) {
  const r = await fetch(`${IDP}/test/next`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ subject, role, tamper, deny }),
  });
  if (!r.ok) fail(`the fake IdP refused /test/next: ${r.status}`);
}

async function signIn(page, subject, role) {
  await nextLogin(subject, role);
  await page.goto(`${BASE}/`);
  await page.getByRole("button", { name: /^Sign in with 127\.0\.0\.1:/ }).click();
  await page.locator("header.top").waitFor();
  if (page.url().includes("code=") || page.url().includes("state=")) fail(`the code stayed in the address bar: ${page.url()}`);
  const who = (await page.locator("header.top .who").textContent()) ?? "";
  if (!who.includes(subject)) fail(`signed in as ${who}, not ${subject}`);
  const token = await page.evaluate(() => sessionStorage.getItem("salestrainer.token") ?? "");
  const header = JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString());
  if (header.alg !== "RS256") fail(`the console holds a ${header.alg} token, not the IdP's`);
}

try {
  step("the sign-in page offers the identity provider and no development sign-in");
  const tom = await newPage();
  await tom.goto(`${BASE}/`);
  await tom.getByRole("button", { name: /^Sign in with 127\.0\.0\.1:/ }).waitFor();
  if ((await tom.getByRole("heading", { name: "Development sign-in" }).count()) > 0) fail("development sign-in is on in production");

  step("a response with a tampered state is refused");
  await nextLogin("tom", "trainee", true);
  await tom.getByRole("button", { name: /^Sign in with/ }).click();
  await tom.getByText(/state mismatch/).waitFor();
  if (tom.url().includes("code=")) fail(`the refused code stayed in the address bar: ${tom.url()}`);
  if ((await tom.locator("header.top").count()) > 0) fail("signed in despite a tampered state");

  step("a declined sign-in says so");
  await nextLogin("tom", "trainee", false, true);
  await tom.getByRole("button", { name: /^Sign in with/ }).click();
  await tom.getByText("The identity provider did not sign you in: the user declined.").waitFor();
  if (tom.url().includes("error=")) fail(`the error stayed in the address bar: ${tom.url()}`);

  step("trainee tom signs in; with no public key voice practice says why");
  await signIn(tom, "tom", "trainee");
  await tom.getByRole("heading", { name: "Scenarios" }).waitFor();
  await tom.getByRole("note").filter({ hasText: "needs a VAPI credential with a public key" }).waitFor();
  if ((await tom.getByRole("button", { name: "Practise by voice" }).count()) > 0) fail("voice is offered without a public key");

  step("admin signs in, saves a VAPI credential, adds its public key and tests it");
  const admin = await newPage();
  await signIn(admin, "demo-admin", "admin");
  await admin.goto(`${BASE}/#/admin/credentials`);
  await admin.getByRole("heading", { name: "New credential" }).waitFor();
  await admin.getByLabel("Id", { exact: true }).fill("vapi");
  await admin.getByLabel("Kind", { exact: true }).selectOption({ label: "VAPI (voice)" });
  await admin.getByLabel("Name", { exact: true }).fill("VAPI test");
  await admin.getByLabel("Base URL", { exact: true }).fill(VAPI);
  await admin.getByLabel("API key", { exact: true }).fill("vapi-private-test-key");
  await admin.getByRole("button", { name: "Save credential" }).click();
  await admin.getByRole("cell", { name: "VAPI test", exact: true }).waitFor();
  await admin.getByRole("button", { name: "Edit VAPI test" }).click();
  await admin.getByRole("heading", { name: "Edit credential VAPI test" }).waitFor();
  await admin.getByLabel("Public key", { exact: true }).fill("has a space");
  await admin.getByRole("button", { name: "Save changes" }).click();
  await admin.locator('[name="provider_credential.public_key"][aria-invalid="true"]').waitFor();
  await admin.getByLabel("Public key", { exact: true }).fill(PUBLIC_KEY);
  await admin.getByRole("button", { name: "Save changes" }).click();
  await admin.getByText("Credential saved.").waitFor();
  await admin.getByRole("button", { name: "Test", exact: true }).click();
  await admin.getByRole("cell", { name: /^ok / }).waitFor();

  step("tom starts a voice call: the SDK asks the (fake) VAPI API with the public key and the session's assistant");
  let offered = false;
  for (let i = 0; i < 20 && !offered; i++) {
    // Until the call service hears of the new key (ConfigChanged), it still has none.
    await tom.goto(`${BASE}/#/practice`);
    await tom.reload();
    await tom.getByRole("heading", { name: "Scenarios" }).waitFor();
    offered = (await tom.getByRole("button", { name: "Practise by voice" }).count()) > 0;
    if (!offered) await tom.waitForTimeout(500);
  }
  if (!offered) fail("voice was never offered after the key was saved");
  await tom.getByRole("button", { name: "Practise by voice" }).first().click();
  await tom.getByRole("heading", { name: "Voice call" }).waitFor();
  const session = `organizations/demo/sessions/${tom.url().split("/").pop()}`;
  expectDailyErrors = true;
  dailyRan = true;
  await tom.getByRole("button", { name: "Start voice call" }).click();
  const failed = tom.getByRole("alert").filter({ hasText: "The voice call could not connect" });
  await failed.waitFor({ timeout: 60_000 });
  step(`the page says: ${await failed.textContent()}`);
  expectDailyErrors = false;
  if (vapiCalls.length !== 1) fail(`the fake VAPI API got ${vapiCalls.length} web calls`);
  const [web] = vapiCalls;
  if (web.authorization !== `Bearer ${PUBLIC_KEY}`) fail(`the SDK authorised with ${web.authorization}`);
  const a = web.body.assistant ?? {};
  if (a.metadata?.session !== session) fail(`assistant.metadata.session is ${a.metadata?.session}, not ${session}`);
  if (web.body.assistantOverrides?.metadata?.session !== session) fail("assistantOverrides.metadata.session is not the session");
  if (!a.firstMessage || !a.model?.messages?.[0]?.content) fail(`the assistant lacks the persona: ${JSON.stringify(a).slice(0, 300)}`);
  if (a.serverUrl !== `${BASE}/webhooks/vapi`) fail(`assistant.serverUrl is ${a.serverUrl}`);
  if (JSON.stringify(web.body).includes("vapi-private-test-key")) fail("the private key reached the browser");
  await tom.getByRole("button", { name: "Try again" }).waitFor();

  step("tom cancels, sees his sessions, and signs out");
  await tom.getByRole("button", { name: "Cancel session" }).click();
  await tom.getByRole("heading", { name: "Scenarios" }).waitFor();
  await tom.goto(`${BASE}/#/sessions`);
  await tom.getByRole("link", { name: "Open" }).first().waitFor();
  await tom.getByRole("button", { name: "Sign out" }).click();
  await tom.getByRole("button", { name: /^Sign in with/ }).waitFor();
  if (await tom.evaluate(() => sessionStorage.getItem("salestrainer.token"))) fail("the token survived sign-out");
  await signIn(tom, "tom", "trainee");

  if (problems.length) fail(`browser reported errors:\n${problems.join("\n")}`);
  step("all passed");
} catch (e) {
  console.error(`[signin e2e] FAILED: ${e instanceof Error ? e.stack : e}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
  vapi.close();
  rmSync(profile, { recursive: true, force: true });
}
