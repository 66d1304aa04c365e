// Sign-in: development (a demo member picked on `salestrainer up`) or a pasted bearer token
// from the identity provider. Either way the app then holds a token and nothing else.
import { useEffect, useState } from "preact/hooks";
import { signIn, type User } from "../api";
import { ErrorBox } from "../ui";

interface DemoUser {
  subject: string;
  display_name: string;
  role: string;
}

export function SignIn(props: { onSignedIn: (u: User) => void }) {
  const [dev, setDev] = useState<DemoUser[] | null>(null);
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    document.title = "Sign in · Salestrainer";
    // Only `salestrainer up` answers these; behind the gateway they are absent.
    fetch("/console/info")
      .then((r) => (r.ok ? r.json() : { dev_sign_in: false }))
      .then((info: { dev_sign_in: boolean }) =>
        info.dev_sign_in ? fetch("/console/dev/users").then((r) => (r.ok ? r.json() : [])) : [],
      )
      .then((users: DemoUser[]) => setDev(users))
      .catch(() => setDev([]));
  }, []);

  const done = (t: string) => {
    const u = signIn(t);
    if (u) props.onSignedIn(u);
    else setError("That is not a token with a subject, an organization and a role.");
  };

  const pick = async (subject: string) => {
    setError("");
    const r = await fetch("/console/dev/sign-in", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ subject }),
    });
    if (!r.ok) return setError(await r.text());
    done(((await r.json()) as { token: string }).token);
  };

  return (
    <main id="main" class="signin">
      <h1>Salestrainer</h1>
      <p class="muted">Practise sales calls against an AI customer, and see how you did.</p>
      {dev && dev.length > 0 && (
        <section aria-labelledby="demo-h">
          <h2 id="demo-h">Development sign-in</h2>
          <p class="muted">Pick a demo user (this server runs without an identity provider).</p>
          <ul class="users">
            {dev.map((u) => (
              <li>
                <button type="button" onClick={() => pick(u.subject)} data-subject={u.subject}>
                  <strong>{u.display_name || u.subject}</strong>
                  <span class="muted">{u.role}</span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="token-h">
        <h2 id="token-h">Sign in with a token</h2>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            done(token);
          }}
        >
          <div class="field">
            <label for="token">Bearer token from your identity provider</label>
            <textarea id="token" rows={3} value={token} onInput={(e) => setToken(e.currentTarget.value)} />
          </div>
          <button type="submit">Sign in</button>
        </form>
      </section>
      <ErrorBox text={error} />
    </main>
  );
}
