// gRPC-Web clients generated from proto/ (buf generate), the signed-in user, and error helpers.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";
import { CallService } from "./gen/salestrainer/call/v1/call_service_pb.js";
import { ConfigService } from "./gen/salestrainer/config/v1/config_service_pb.js";
import { GradingService } from "./gen/salestrainer/grading/v1/grading_service_pb.js";
import { AnalyticsService } from "./gen/salestrainer/analytics/v1/analytics_service_pb.js";

const TOKEN_KEY = "salestrainer.token";

export type RoleName = "admin" | "manager" | "trainee";

export interface User {
  token: string;
  subject: string;
  organization: string;
  role: RoleName;
}

/** The claims of a bearer token, read (not verified: the server does that) for the UI. */
export function parseToken(token: string): User | null {
  const part = token.trim().split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const c = JSON.parse(json) as { sub?: string; org?: string; role?: string };
    const role = (c.role ?? "").toLowerCase();
    if (!c.sub || !c.org || !["admin", "manager", "trainee"].includes(role)) return null;
    return { token: token.trim(), subject: c.sub, organization: c.org, role: role as RoleName };
  } catch {
    return null;
  }
}

let current: User | null = parseToken(sessionStorage.getItem(TOKEN_KEY) ?? "");

export const currentUser = () => current;

export function signIn(token: string): User | null {
  const u = parseToken(token);
  if (u) {
    sessionStorage.setItem(TOKEN_KEY, u.token);
    current = u;
  }
  return u;
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  current = null;
}

const auth: Interceptor = (next) => async (req) => {
  if (current) req.header.set("authorization", `Bearer ${current.token}`);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  interceptors: [auth],
});

export const call = createClient(CallService, transport);
export const config = createClient(ConfigService, transport);
export const grading = createClient(GradingService, transport);
export const analytics = createClient(AnalyticsService, transport);

export const org = () => `organizations/${current?.organization ?? ""}`;
export const me = () => `${org()}/members/${current?.subject ?? ""}`;
export const lastSegment = (name: string) => name.split("/").pop() ?? "";

/** Field violations of an INVALID_ARGUMENT (google.rpc.BadRequest), keyed by field path. */
export function fieldErrors(e: unknown): Record<string, string> {
  const err = ConnectError.from(e);
  const out: Record<string, string> = {};
  for (const d of err.findDetails(BadRequestSchema)) {
    for (const v of d.fieldViolations) out[v.field] = v.description;
  }
  return out;
}

export function errorText(e: unknown): string {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.PermissionDenied:
      return `Not allowed: ${err.rawMessage}`;
    case Code.NotFound:
      return `Not found: ${err.rawMessage}`;
    case Code.Unauthenticated:
      return "Your sign-in has expired or is invalid: sign in again.";
    case Code.Unavailable:
      return `Unavailable: ${err.rawMessage}`;
    case Code.Aborted:
      return "This was changed by someone else since you loaded it: reload to see the latest version, then try again.";
    case Code.FailedPrecondition:
      return `Cannot do that: ${err.rawMessage}`;
    default:
      return err.rawMessage || String(e);
  }
}

export const isCode = (e: unknown, code: Code) => ConnectError.from(e).code === code;
export { Code };

export const toDate = (t?: Timestamp) => (t ? timestampDate(t) : undefined);
export const ts = (d: Date) => timestampFromDate(d);
export const fmtDate = (t?: Timestamp) => toDate(t)?.toLocaleString() ?? "—";
export const fmtDay = (t?: Timestamp) => toDate(t)?.toLocaleDateString() ?? "—";
export const daysAgo = (n: number) => ts(new Date(Date.now() - n * 86400_000));
export const timeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";

export function newId(): string {
  // randomUUID exists only in secure contexts; plain http on a LAN address is not one.
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
