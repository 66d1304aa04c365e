// Sign-in: redirect to the identity provider (OIDC, where configured), development (a demo
// member picked on `salestrainer up`) or a pasted bearer token. Either way the app then holds
// a token and nothing else.
import { useEffect, useState } from "preact/hooks";
import { signIn, type User } from "../api";
import { beginSignIn, completeSignIn, type OidcConfig } from "../oidc";
import { ErrorBox } from "../ui";

interface Info {
  dev_sign_in: boolean;
  oidc?: OidcConfig | null;
}

const host = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};

interface DemoUser {
  subject: string;
  display_name: string;
  role: string;
}

export function SignIn(props: { onSignedIn: (u: User) => void }) {
  const [dev, setDev] = useState<DemoUser[] | null>(null);
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [oidc, setOidc] = useState<OidcConfig | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = "Sign in · Salestrainer";
    // Back from the identity provider? Finish that first.
    completeSignIn()
      .then((t) => t && done(t))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
    fetch("/console/info")
      .then((r) => (r.ok ? r.json() : { dev_sign_in: false }))
      .then((info: Info) => {
        setOidc(info.oidc ?? null);
        // Only `salestrainer up` has development sign-in.
        return info.dev_sign_in ? fetch("/console/dev/users").then((r) => (r.ok ? r.json() : [])) : [];
      })
      .then((users: DemoUser[]) => setDev(users))
      .catch(() => setDev([]));
  }, []);

  const redirect = async () => {
    if (!oidc) return;
    setError("");
    setBusy(true);
    try {
      await beginSignIn(oidc);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  };

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
      {oidc && (
        <section aria-labelledby="oidc-h">
          <h2 id="oidc-h">Your organization's sign-in</h2>
          <button type="button" onClick={redirect} disabled={busy}>
            Sign in with {host(oidc.issuer)}
          </button>
        </section>
      )}
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
