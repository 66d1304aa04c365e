// Voice practice in the browser with VAPI's web SDK, where the organization has a VAPI
// credential with a public key (GetVoiceConfig says so; GetVoiceSetup hands over the key and
// the session's assistant). The SDK (with Daily's WebRTC client) is loaded only when a call starts, so the
// rest of the console does not carry it.
import { useEffect, useRef, useState } from "preact/hooks";
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { SessionMode } from "../gen/salestrainer/call/v1/resources_pb.js";
import type { VoiceSetup } from "../gen/salestrainer/call/v1/resources_pb.js";
import { call, errorText, newId, org } from "../api";
import { go } from "../ui";

export const NO_VOICE_MESSAGE =
  "Voice practice needs a VAPI credential with a public key for the web SDK, and your organization has none. " +
  "Ask an admin to add one, or practise by text.";

const reason = (e: unknown) => ConnectError.from(e).findDetails(ErrorInfoSchema)[0]?.reason ?? "";

/**
 * Starts a VOICE session and checks that it can be called from the browser. Should the key
 * have gone since the page learnt of it (GetVoiceConfig), the session is cancelled at once
 * (nothing was said) and `"no-key"` is returned.
 */
export async function startVoice(scenario: string, assignment = ""): Promise<"no-key" | string> {
  const r = await call.startSession({ parent: org(), scenario, assignment, mode: SessionMode.VOICE, requestId: newId() });
  const name = r.session?.name ?? "";
  try {
    await call.getVoiceSetup({ name: `${name}/voiceSetup` });
  } catch (e) {
    await call.cancelSession({ name }).catch(() => {});
    if (reason(e) === "NO_VOICE_PUBLIC_KEY") return "no-key";
    throw e;
  }
  return name.split("/").pop() ?? "";
}

type Phase = "loading" | "ready" | "connecting" | "live" | "failed" | "over";

interface Said {
  role: string;
  text: string;
}

/** The call itself: start, live transcript from the SDK's messages, hang up, then end. */
export function VoiceCall(props: { name: string; onEnded: () => void }) {
  const [setup, setSetup] = useState<VoiceSetup | null>(null);
  const [phase, setPhase] = useState<Phase>("loading");
  const [error, setError] = useState("");
  const [said, setSaid] = useState<Said[]>([]);
  // The SDK instance; typed loosely so its types stay in the lazily loaded chunk.
  const vapi = useRef<{ stop: () => void } | null>(null);

  useEffect(() => {
    call
      .getVoiceSetup({ name: `${props.name}/voiceSetup` })
      .then((r) => {
        setSetup(r.voiceSetup ?? null);
        setPhase("ready");
      })
      .catch((e) => {
        setError(reason(e) === "NO_VOICE_PUBLIC_KEY" ? NO_VOICE_MESSAGE : errorText(e));
        setPhase("failed");
      });
    return () => vapi.current?.stop();
  }, [props.name]);

  const fail = (what: string) => {
    setError(`The voice call could not connect: ${what}. You can try again, or cancel and practise by text.`);
    setPhase("failed");
  };

  const start = async () => {
    if (!setup) return;
    setError("");
    setPhase("connecting");
    try {
      const { default: Vapi } = await import("@vapi-ai/web");
      const v = new Vapi(setup.publicKey, setup.apiBaseUrl || undefined);
      vapi.current = v;
      v.on("call-start", () => setPhase("live"));
      v.on("call-end", () => {
        setPhase((p) => (p === "failed" ? p : "over"));
      });
      v.on("message", (m: { type?: string; transcriptType?: string; role?: string; transcript?: string }) => {
        if (m.type === "transcript" && m.transcriptType === "final" && m.transcript)
          setSaid((s) => [...s, { role: m.role ?? "", text: m.transcript ?? "" }]);
      });
      v.on("error", (e: { type?: string; error?: { message?: string; errorMsg?: string }; errorMsg?: string }) => {
        fail(e?.error?.message || e?.error?.errorMsg || e?.errorMsg || e?.type || "unknown error");
      });
      // The session name rides in the assistant's metadata and in the overrides' metadata,
      // which is how the call service matches every webhook of this call to the session.
      const assistant = setup.assistant as unknown as Parameters<typeof v.start>[0];
      const started = await v.start(assistant, { metadata: { session: props.name } } as Parameters<typeof v.start>[1]);
      if (!started) fail("the provider did not start the call");
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
  };

  const hangUp = async () => {
    vapi.current?.stop();
    try {
      await call.endSession({ name: props.name });
      props.onEnded();
    } catch (e) {
      setError(errorText(e));
    }
  };

  const cancel = async () => {
    vapi.current?.stop();
    await call.cancelSession({ name: props.name }).catch(() => {});
    go("practice");
  };

  return (
    <section class="voice" aria-labelledby="voice-h">
      <h2 id="voice-h">Voice call</h2>
      <p class="muted" aria-live="polite" data-phase={phase}>
        {phase === "loading" && "Getting the call ready…"}
        {phase === "ready" && "Your microphone is used once you start. The customer speaks first."}
        {phase === "connecting" && "Connecting…"}
        {phase === "live" && "You are on the call."}
        {phase === "over" && "The call is over."}
      </p>
      {error && (
        <div class="notice" role="alert">
          {error}
        </div>
      )}
      {said.length > 0 && (
        <ol class="chat" aria-label="Conversation">
          {said.map((l) => (
            <li class={`bubble ${l.role === "user" ? "trainee" : "persona"}`}>{l.text}</li>
          ))}
        </ol>
      )}
      <div class="row">
        {(phase === "ready" || (phase === "failed" && setup)) && (
          <button type="button" onClick={start}>
            {phase === "failed" ? "Try again" : "Start voice call"}
          </button>
        )}
        {(phase === "live" || phase === "over") && (
          <button type="button" class="danger" onClick={hangUp}>
            End call
          </button>
        )}
        {phase !== "live" && phase !== "over" && (
          <button type="button" class="secondary" onClick={cancel}>
            Cancel session
          </button>
        )}
      </div>
    </section>
  );
}
