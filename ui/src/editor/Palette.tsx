/**
 * The palette: kinds of step to drag onto the canvas (HTML drag and drop), or to add with Enter
 * from the keyboard. What each adds is a document fragment, the same either way.
 */
import type { JsonObject } from "./document";

export interface StepTemplate {
  key: string;
  label: string;
  description: string;
  step: JsonObject;
}

export const STEP_TEMPLATES: readonly StepTemplate[] = [
  { key: "project", label: "Step", description: "an MLflow Project: a git URI or a local path", step: { project: { uri: "" } } },
  {
    key: "partitioned",
    label: "Partitioned step",
    description: "one container per file of an input, 4 at a time",
    step: { project: { uri: "" }, partition: { by: "object", input: "" }, parallelism: 4 },
  },
];

export const DRAG_TYPE = "application/x-parallels-step";

export function Palette({ onAdd }: { onAdd: (template: StepTemplate) => void }) {
  return (
    <aside className="palette" aria-label="Palette">
      <h2>Palette</h2>
      <p className="hint">Drag onto the canvas, or press Enter to add.</p>
      <ul>
        {STEP_TEMPLATES.map((t) => (
          <li key={t.key}>
            <button
              type="button"
              draggable
              className="palette-item"
              aria-label={`${t.label}: ${t.description}`}
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_TYPE, t.key);
                e.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => onAdd(t)}
            >
              <strong>{t.label}</strong>
              <span className="muted">{t.description}</span>
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}
