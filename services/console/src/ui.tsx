// Small shared pieces: hash routing, async loading, form fields with their server-side
// validation errors, tables, charts (uPlot) and score badges.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { errorText } from "./api";

export function useRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return parts;
}

export const go = (path: string) => {
  location.hash = `#/${path}`;
};

/** Runs `load` on mount and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (e) => live && setState({ error: errorText(e), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Loading<T>(props: {
  state: { data?: T; error?: string; loading: boolean };
  children: (data: T) => ComponentChildren;
}) {
  const { state } = props;
  if (state.error) return <ErrorBox text={state.error} />;
  if (state.data === undefined) return <p class="muted" role="status">Loading…</p>;
  return <>{props.children(state.data)}</>;
}

export const ErrorBox = ({ text }: { text?: string }) =>
  text ? (
    <p class="error" role="alert">
      {text}
    </p>
  ) : null;

export function Page(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · Salestrainer`;
  }, [props.title]);
  return (
    <section class="page">
      <header class="page-head">
        <h1>{props.title}</h1>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

let fieldSeq = 0;

/** A labelled input whose server-side violation (by field path) is shown under it. */
export function Field(props: {
  label: string;
  path: string;
  errors?: Record<string, string>;
  value: string | number;
  onInput: (v: string) => void;
  type?: string;
  multiline?: boolean;
  options?: [string, string][];
  hint?: string;
  required?: boolean;
  step?: string;
}) {
  const id = useRef(`f${++fieldSeq}`).current;
  const err = props.errors?.[props.path];
  const common = {
    id,
    name: props.path,
    "aria-invalid": err ? ("true" as const) : undefined,
    "aria-describedby": err ? `${id}-err` : undefined,
    required: props.required,
  };
  const onInput = (e: Event) => props.onInput((e.currentTarget as HTMLInputElement).value);
  return (
    <div class={`field${err ? " invalid" : ""}`}>
      <label for={id}>{props.label}</label>
      {props.options ? (
        <select {...common} value={String(props.value)} onChange={onInput}>
          {props.options.map(([v, l]) => (
            <option value={v}>{l}</option>
          ))}
        </select>
      ) : props.multiline ? (
        <textarea {...common} value={String(props.value)} onInput={onInput} rows={3} />
      ) : (
        <input {...common} type={(props.type ?? "text") as "text"} step={props.step} value={String(props.value)} onInput={onInput} />
      )}
      {props.hint && <small class="muted">{props.hint}</small>}
      {err && (
        <small class="field-error" id={`${id}-err`} role="alert">
          {err}
        </small>
      )}
    </div>
  );
}

/** Violations that match no field on the form, so none is lost. */
export function OtherErrors(props: { errors: Record<string, string>; shown: (path: string) => boolean }) {
  const rest = Object.entries(props.errors).filter(([k]) => !props.shown(k));
  if (!rest.length) return null;
  return (
    <ul class="error" role="alert">
      {rest.map(([k, v]) => (
        <li>
          {k}: {v}
        </li>
      ))}
    </ul>
  );
}

export function Table(props: { head: string[]; rows: ComponentChildren[][]; empty?: string; caption?: string }) {
  if (!props.rows.length) return <p class="muted">{props.empty ?? "Nothing yet."}</p>;
  return (
    <div class="table-wrap">
      <table>
        {props.caption && <caption>{props.caption}</caption>}
        <thead>
          <tr>
            {props.head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr>
              {r.map((c) => (
                <td>{c}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export const Score = ({ value, passed }: { value: number; passed?: boolean }) => (
  <span class={`score ${passed === undefined ? "" : passed ? "pass" : "fail"}`}>{value.toFixed(0)}</span>
);

export const Bar = ({ value, label }: { value: number; label: string }) => (
  <div class="bar" role="img" aria-label={`${label}: ${value.toFixed(0)} of 100`}>
    <span style={{ width: `${Math.max(0, Math.min(100, value))}%` }} />
  </div>
);

/** A line chart of daily points; `dates` are YYYY-MM-DD. */
export function TrendChart(props: {
  dates: string[];
  series: { label: string; values: (number | null)[] }[];
  title: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || !props.dates.length) return;
    const xs = props.dates.map((d) => Date.parse(`${d}T12:00:00`) / 1000);
    const colors = ["#2563eb", "#16a34a", "#d97706"];
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 220,
        series: [{}, ...props.series.map((s, i) => ({ label: s.label, stroke: colors[i % 3], width: 2, points: { size: 6 }, spanGaps: true }))],
        scales: { y: { range: [0, 100] } },
        axes: [{}, { size: 40 }],
      },
      [xs, ...props.series.map((s) => s.values)],
      el,
    );
    const resize = () => plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 });
    addEventListener("resize", resize);
    return () => {
      removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [JSON.stringify(props)]);
  if (!props.dates.length) return <p class="muted">No graded sessions in this period yet.</p>;
  return <div class="chart" ref={box} role="img" aria-label={props.title} />;
}

export function Tabs(props: { tabs: [string, string][]; current: string }) {
  return (
    <nav class="tabs" aria-label="Sections">
      {props.tabs.map(([path, label]) => (
        <a href={`#/${path}`} aria-current={props.current === path ? "page" : undefined}>
          {label}
        </a>
      ))}
    </nav>
  );
}
