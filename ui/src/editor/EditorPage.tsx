/**
 * The DAG editor: palette, canvas and the selected step's (or the DAG's) fields, under a toolbar
 * with undo/redo, auto-layout, YAML import/export and save. Opens the latest (or a given) version
 * of a DAG, or an empty document.
 */
import { ReactFlowProvider } from "@xyflow/react";
import { type ChangeEvent, useEffect, useRef, useState } from "react";
import type { DagView } from "../../../proto/client";
import { useClient } from "../api/session";
import { ErrorNote } from "../components/ErrorNote";
import { useAsync } from "../components/useAsync";
import { StartRunDialog } from "../runs/StartRunDialog";
import { Canvas, useAddStep } from "./Canvas";
import { DagPanel } from "./DagPanel";
import { emptyDag } from "./document";
import { Palette } from "./Palette";
import { SaveControls } from "./SaveControls";
import { StepPanel } from "./StepPanel";
import { useEditor } from "./store";
import { YamlDialog } from "./YamlDialog";
import { download, fromText, toYaml } from "./yaml";

export function EditorPage({ dagName, version }: { dagName?: string; version?: number }) {
  const client = useClient();
  const open = useEditor((s) => s.open);
  const loaded = useAsync(
    async (signal) => {
      if (!dagName) return open(emptyDag(), null);
      const dag = await client.dags.get(dagName, { version }, { signal });
      open(dag.spec, { name: dag.name, version: dag.version, latestVersion: dag.latestVersion });
    },
    [client, dagName, version],
  );
  if (loaded.error) return <ErrorNote error={loaded.error} />;
  if (loaded.loading && loaded.value === undefined) return <p>Loading…</p>;
  return (
    <ReactFlowProvider>
      <Editor />
    </ReactFlowProvider>
  );
}

function Editor() {
  const { doc, base, selected, past, future, undo, redo, requestLayout, replace } = useEditor();
  const addStep = useAddStep();
  const [yamlOpen, setYamlOpen] = useState(false);
  const [importError, setImportError] = useState<string | null>(null);
  const [startRun, setStartRun] = useState<DagView | null>(null);
  const [saved, setSaved] = useState<DagView | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  useUndoShortcuts(undo, redo);

  const importFile = async (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    e.target.value = "";
    if (!file) return;
    const result = fromText(await file.text(), file.name);
    if ("error" in result) setImportError(`${file.name}: ${result.error}`);
    else {
      setImportError(null);
      replace(result.doc);
    }
  };
  const name = typeof doc.name === "string" && doc.name ? doc.name : "dag";

  return (
    <div className="editor">
      <div className="toolbar" role="toolbar" aria-label="Editor">
        <h1 className="editor-title">{base ? `${base.name} · version ${base.version}` : "New DAG"}</h1>
        <button type="button" onClick={undo} disabled={past.length === 0} aria-keyshortcuts="Control+Z" title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button type="button" onClick={redo} disabled={future.length === 0} aria-keyshortcuts="Control+Shift+Z" title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <button type="button" onClick={requestLayout}>
          Auto-layout
        </button>
        <button type="button" onClick={() => setYamlOpen(true)}>
          YAML
        </button>
        <button type="button" onClick={() => fileInput.current?.click()}>
          Import…
        </button>
        <input ref={fileInput} type="file" accept=".yaml,.yml,.json" hidden onChange={importFile} aria-label="Import a DAG file" />
        <button type="button" onClick={() => download(toYaml(doc), `${name}.yaml`)}>
          Export YAML
        </button>
        <span className="spacer" />
        <SaveControls onSaved={setSaved} />
        <button type="button" onClick={() => setStartRun(saved)} disabled={!saved} title={saved ? undefined : "save a version first"}>
          Start run…
        </button>
      </div>
      {importError && (
        <p role="alert" className="error-note">
          {importError}
        </p>
      )}
      <div className="editor-body">
        <Palette onAdd={(t) => addStep(t, { x: 60 + doc.nodes.length * 30, y: 60 + doc.nodes.length * 30 })} />
        <Canvas />
        <div className="side">{selected === null ? <DagPanel /> : <StepPanel key={selected} index={selected} />}</div>
      </div>
      {yamlOpen && <YamlDialog onClose={() => setYamlOpen(false)} />}
      {startRun && <StartRunDialog dag={startRun} onClose={() => setStartRun(null)} />}
    </div>
  );
}

/** Ctrl/Cmd+Z undoes, Ctrl/Cmd+Shift+Z and Ctrl+Y redo, also while typing in a field (the document's history, not the field's). */
function useUndoShortcuts(undo: () => void, redo: () => void) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey) return;
      const key = e.key.toLowerCase();
      if (key === "z" && !e.shiftKey) undo();
      else if ((key === "z" && e.shiftKey) || key === "y") redo();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo]);
}
