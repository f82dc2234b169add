/**
 * Starts a run of a DAG version with params: the DAG's params are shown with their defaults, and a
 * changed value is sent as the run's (`POST /v1/runs`), typed as the default is (a number stays a
 * number). Opens the run's live view.
 */
import { type FormEvent, useState } from "react";
import type { ParamValue } from "../../../proto/api";
import { useClient } from "../api/session";
import { Dialog } from "../components/Dialog";
import { ErrorNote } from "../components/ErrorNote";
import { href, navigate } from "../router";

export interface RunTarget {
  name: string;
  version: number;
  /** The DAG's params and their defaults. */
  params: Record<string, ParamValue>;
}

/** A typed value in the type of the param's default (the API checks what the MLproject needs). */
function asParam(text: string, fallback: ParamValue): ParamValue {
  if (typeof fallback === "number" && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (typeof fallback === "boolean" && (text === "true" || text === "false")) return text === "true";
  return text;
}

export function StartRunDialog({ dag, onClose }: { dag: { name: string; version: number; spec?: { params?: Record<string, ParamValue> | undefined } }; onClose: () => void }) {
  const client = useClient();
  const defaults = dag.spec?.params ?? {};
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, String(v)])));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    // Only params changed from their defaults are sent: the run's record says what was chosen.
    const params = Object.fromEntries(
      Object.entries(values)
        .filter(([k, v]) => String(defaults[k]) !== v)
        .map(([k, v]) => [k, asParam(v, defaults[k]!)]),
    );
    try {
      const run = await client.runs.submit({ dag: dag.name, version: dag.version, params });
      onClose();
      navigate(href("runs", run.id));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Start a run of ${dag.name} v${dag.version}`} onClose={onClose}>
      <form onSubmit={submit} className="stack">
        {Object.keys(defaults).length === 0 && <p className="muted">This DAG has no params.</p>}
        {Object.entries(defaults).map(([k, v]) => (
          <label key={k}>
            {k} <span className="muted">(default {JSON.stringify(v)})</span>
            <input aria-label={`Run param ${k}`} value={values[k] ?? ""} onChange={(e) => setValues({ ...values, [k]: e.target.value })} />
          </label>
        ))}
        <ErrorNote error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Starting…" : "Start run"}
        </button>
      </form>
    </Dialog>
  );
}
