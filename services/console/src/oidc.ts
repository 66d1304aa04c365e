// Redirect sign-in with the organization's identity provider: OpenID Connect, authorization
// code with PKCE (S256), as a public client (the console has no secret to keep). The server
// says which issuer and client id (`/console/info`, from `[console] oidc_*`); the bearer the
// app then holds is verified by the services like any other token (RS256, issuer, audience).
//
// The token lives in sessionStorage (see api.ts): one tab, gone when the tab closes, never
// sent by the browser on its own (no CSRF); localStorage would keep it on disk beyond the
// visit and share it with every tab. The PKCE verifier, state and nonce sit there too for
// the one round trip to the provider, and are removed when the provider answers.

export interface OidcConfig {
  issuer: string;
  client_id: string;
  scopes: string;
  audience: string;
}

interface Pending {
  state: string;
  nonce: string;
  verifier: string;
  issuer: string;
  clientId: string;
  redirectUri: string;
  tokenEndpoint: string;
}

const PENDING_KEY = "salestrainer.oidc.pending";

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const random = (n = 32) => base64url(crypto.getRandomValues(new Uint8Array(n)));

/** The provider's metadata; its `issuer` must be the configured one (OIDC Discovery §4.3). */
async function discover(issuer: string) {
  const r = await fetch(`${issuer}/.well-known/openid-configuration`, { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`The identity provider's configuration could not be read (HTTP ${r.status}).`);
  const d = (await r.json()) as { issuer?: string; authorization_endpoint?: string; token_endpoint?: string };
  if (d.issuer?.replace(/\/$/, "") !== issuer) throw new Error("The identity provider names another issuer than the one configured.");
  if (!d.authorization_endpoint || !d.token_endpoint) throw new Error("The identity provider has no authorization or token endpoint.");
  return { authorization: d.authorization_endpoint, token: d.token_endpoint };
}

/** Leaves for the provider's authorization endpoint; it comes back to `/` with a code. */
export async function beginSignIn(cfg: OidcConfig): Promise<void> {
  if (!crypto.subtle) throw new Error("Sign-in with the identity provider needs HTTPS (or localhost).");
  const endpoints = await discover(cfg.issuer);
  const verifier = random(48);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const pending: Pending = {
    state: random(),
    nonce: random(),
    verifier,
    issuer: cfg.issuer,
    clientId: cfg.client_id,
    redirectUri: `${location.origin}/`,
    tokenEndpoint: endpoints.token,
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const u = new URL(endpoints.authorization);
  const q = u.searchParams;
  q.set("response_type", "code");
  q.set("client_id", cfg.client_id);
  q.set("redirect_uri", pending.redirectUri);
  q.set("scope", cfg.scopes || "openid");
  q.set("state", pending.state);
  q.set("nonce", pending.nonce);
  q.set("code_challenge", challenge);
  q.set("code_challenge_method", "S256");
  if (cfg.audience) q.set("audience", cfg.audience);
  location.assign(u.toString());
}

function claims(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
}

const isJwt = (t: unknown): t is string => typeof t === "string" && t.split(".").length === 3;

/**
 * On the way back from the provider (`/?code=…&state=…`): checks the state, clears the code
 * from the address bar and history, exchanges it (with the PKCE verifier) for tokens and
 * returns the bearer — the access token when it is a JWT (the token meant for APIs, with
 * `[auth] audience`), else the ID token. `null` when this page load is not such a return.
 */
export async function completeSignIn(): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  // The code is single-use and must not stay in the address bar, history or a bookmark.
  history.replaceState(null, "", `${location.pathname}${location.hash}`);
  const error = params.get("error");
  if (error) throw new Error(`The identity provider did not sign you in: ${params.get("error_description") || error}.`);
  const pending = raw ? (JSON.parse(raw) as Pending) : null;
  if (!pending || params.get("state") !== pending.state)
    throw new Error("This sign-in response does not belong to a sign-in started in this tab (state mismatch); it was ignored. Sign in again.");
  const iss = params.get("iss");
  if (iss && iss.replace(/\/$/, "") !== pending.issuer) throw new Error("The sign-in response came from another issuer; it was ignored.");
  const r = await fetch(pending.tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code") ?? "",
      redirect_uri: pending.redirectUri,
      client_id: pending.clientId,
      code_verifier: pending.verifier,
    }),
  });
  if (!r.ok) throw new Error(`The identity provider refused the sign-in code (HTTP ${r.status}). Sign in again.`);
  const t = (await r.json()) as { access_token?: unknown; id_token?: unknown };
  if (isJwt(t.id_token) && claims(t.id_token).nonce !== pending.nonce)
    throw new Error("The identity provider's ID token does not carry this sign-in's nonce; it was ignored.");
  const bearer = isJwt(t.access_token) ? t.access_token : isJwt(t.id_token) ? t.id_token : null;
  if (!bearer) throw new Error("The identity provider returned no token the services can verify.");
  return bearer;
}
