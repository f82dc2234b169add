/**
 * The document as YAML: read it, copy or download it, or edit the text and apply it (one undo
 * step). What is shown is exactly what saving sends.
 */
import { useState } from "react";
import { CopyButton } from "../components/CopyButton";
import { Dialog } from "../components/Dialog";
import { useEditor } from "./store";
import { download, fromText, toYaml } from "./yaml";

export function YamlDialog({ onClose }: { onClose: () => void }) {
  const { doc, replace } = useEditor();
  const [text, setText] = useState(() => toYaml(doc));
  const [error, setError] = useState<string | null>(null);
  const apply = () => {
    const result = fromText(text);
    if ("error" in result) return setError(result.error);
    replace(result.doc);
    onClose();
  };
  const name = typeof doc.name === "string" && doc.name ? doc.name : "dag";
  return (
    <Dialog title="DAG document (YAML)" onClose={onClose} wide>
      <div className="stack">
        <textarea aria-label="DAG document in YAML" className="yaml" value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} rows={24} />
        {error && (
          <p role="alert" className="error-note">
            {error}
          </p>
        )}
        <div className="row">
          <button type="button" className="primary" onClick={apply}>
            Apply to the editor
          </button>
          <button type="button" onClick={() => download(text, `${name}.yaml`)}>
            Download {name}.yaml
          </button>
          <CopyButton text={text} label="Copy the YAML" />
        </div>
      </div>
    </Dialog>
  );
}
