/**
 * Saving adds a version (`PUT /v1/dags/{name}`). The API itself takes a PUT whatever version the
 * writer started from (it has no If-Match), so the editor checks first: it reads the DAG's
 * `latestVersion` and compares it with the one it opened. Someone else's save in between (or,
 * for a new document, a DAG of that name already there) is shown before anything is written, with
 * the choice to save on top of it or open theirs. A save landing between that read and the PUT is
 * not caught (the window is one request long).
 */
import { useState } from "react";
import type { DagView } from "../../../proto/client";
import { isParallelsError } from "../../../proto/client";
import { useClient } from "../api/session";
import { Dialog } from "../components/Dialog";
import { ErrorNote } from "../components/ErrorNote";
import { localTime } from "../components/time";
import { useEditor } from "./store";
import { toYaml } from "./yaml";

export function SaveControls({ onSaved }: { onSaved: (dag: DagView) => void }) {
  const client = useClient();
  const { doc, problems, base, setBase, open } = useEditor();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  const [conflict, setConflict] = useState<DagView | null>(null);
  const name = typeof doc.name === "string" ? doc.name : "";

  const save = async (force: boolean) => {
    setBusy(true);
    setError(null);
    setConflict(null);
    try {
      if (!force) {
        const current = await client.dags.get(name).catch((e: unknown) => {
          if (isParallelsError(e) && e.status === 404) return null;
          throw e;
        });
        const opened = base?.name === name ? base : null;
        if (current && (!opened || current.latestVersion !== opened.latestVersion)) {
          setConflict(current);
          return;
        }
      }
      // Sent as the YAML that export writes: what is saved is byte for byte what a person can export.
      const saved = await client.dags.apply(toYaml(doc));
      const unchanged = !saved.created && base?.name === saved.name && saved.version === base.version;
      setBase({ name: saved.name, version: saved.version, latestVersion: saved.latestVersion });
      setNote(unchanged ? `Unchanged: still version ${saved.version}` : `Saved as version ${saved.version}`);
      onSaved(saved);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <button type="button" className="primary" onClick={() => void save(false)} disabled={busy || problems.length > 0} title={problems.length ? "fix the problems first" : undefined}>
        {busy ? "Saving…" : "Save version"}
      </button>
      <span role="status" className="muted save-note">
        {problems.length > 0 ? `${problems.length} problem${problems.length > 1 ? "s" : ""} to fix before saving` : note}
      </span>
      {error !== null && (
        <Dialog title="Not saved" onClose={() => setError(null)}>
          <ErrorNote error={error} />
        </Dialog>
      )}
      {conflict && (
        <Dialog title="Someone saved this DAG meanwhile" onClose={() => setConflict(null)}>
          <div className="stack" role="alert">
            {base?.name === conflict.name ? (
              <p>
                You opened version {base.version} of <strong>{conflict.name}</strong>; version {conflict.latestVersion} was saved since ({localTime(conflict.updatedAt)}).
              </p>
            ) : (
              <p>
                A DAG named <strong>{conflict.name}</strong> already exists (version {conflict.latestVersion}, saved {localTime(conflict.updatedAt)}).
              </p>
            )}
            <p>Saving now makes your document version {conflict.latestVersion + 1}, on top of it: nothing of theirs is merged into yours.</p>
            <div className="row">
              <button type="button" className="danger" onClick={() => void save(true)}>
                Save mine as version {conflict.latestVersion + 1}
              </button>
              <button
                type="button"
                onClick={() => {
                  open(conflict.spec, { name: conflict.name, version: conflict.version, latestVersion: conflict.latestVersion });
                  setConflict(null);
                  setNote(`Opened version ${conflict.version}`);
                }}
              >
                Open version {conflict.latestVersion} (drop my changes)
              </button>
              <button type="button" onClick={() => setConflict(null)}>
                Cancel
              </button>
            </div>
          </div>
        </Dialog>
      )}
    </>
  );
}
