/**
 * Form fields bound to one place of the document, each showing the validation problems whose path
 * is that place (or below it) right under it, and marked invalid for assistive technology.
 */
import { type ReactNode, useId } from "react";
import { formatPath, type Problem } from "../../../proto/dag";
import type { Json, JsonObject, Path } from "./document";

/** The problems at `path` or below it (`nodes[2].parameters.top` is below `nodes[2].parameters`). */
export function problemsAt(problems: readonly Problem[], path: Path): Problem[] {
  const at = formatPath(path);
  return problems.filter((p) => p.path === at || p.path.startsWith(`${at}.`) || p.path.startsWith(`${at}[`));
}

export function ProblemList({ id, problems }: { id: string; problems: readonly Problem[] }) {
  if (problems.length === 0) return null;
  return (
    <ul id={id} className="field-problems">
      {problems.map((p) => (
        <li key={`${p.path}:${p.message}`}>{p.message}</li>
      ))}
    </ul>
  );
}

interface TextFieldProps {
  label: string;
  value: Json | undefined;
  onChange: (text: string) => void;
  problems: readonly Problem[];
  placeholder?: string;
  hint?: ReactNode;
  list?: string;
}

/** A text input showing a value of any type as text (a number typed where text is expected stays visible). */
export function TextField({ label, value, onChange, problems, placeholder, hint, list }: TextFieldProps) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value)}
        onChange={(e) => onChange(e.target.value)}
        placeholder={placeholder}
        list={list}
        aria-invalid={problems.length > 0}
        aria-describedby={problems.length > 0 ? `${id}-problems` : undefined}
        spellCheck={false}
      />
      {hint && <p className="hint">{hint}</p>}
      <ProblemList id={`${id}-problems`} problems={problems} />
    </div>
  );
}

export function SelectField({
  label,
  value,
  options,
  onChange,
  problems,
}: {
  label: string;
  value: string;
  options: readonly (readonly [string, string])[];
  onChange: (v: string) => void;
  problems: readonly Problem[];
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={problems.length > 0} aria-describedby={problems.length > 0 ? `${id}-problems` : undefined}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
      <ProblemList id={`${id}-problems`} problems={problems} />
    </div>
  );
}

interface KeyValueProps {
  /** "parameter", "param", "label": names the rows' fields (`Value of parameter top`). */
  noun: string;
  entries: JsonObject;
  path: Path;
  problems: readonly Problem[];
  onRename: (from: string, to: string) => void;
  onValue: (key: string, text: string) => void;
  onRemove: (key: string) => void;
  onAdd: () => void;
}

/** Rows of name and value (step parameters, DAG params, label selectors), each row's problems under it. */
export function KeyValueRows({ noun, entries, path, problems, onRename, onValue, onRemove, onAdd }: KeyValueProps) {
  const baseId = useId();
  const keys = Object.keys(entries);
  return (
    <div className="kv">
      {keys.map((key, i) => {
        const rowProblems = problemsAt(problems, [...path, key]);
        const problemsId = `${baseId}-${i}-problems`;
        const describedBy = rowProblems.length > 0 ? problemsId : undefined;
        const value = entries[key];
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: by place, so renaming a key keeps its row (and the focus in it)
          <div key={i} className="kv-row">
            <input aria-label={`Name of ${noun} ${i + 1}`} value={key} onChange={(e) => onRename(key, e.target.value)} spellCheck={false} />
            <input
              aria-label={`Value of ${noun} ${key}`}
              value={value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value)}
              onChange={(e) => onValue(key, e.target.value)}
              aria-invalid={rowProblems.length > 0}
              aria-describedby={describedBy}
              spellCheck={false}
            />
            <button type="button" className="icon" aria-label={`Remove ${noun} ${key}`} onClick={() => onRemove(key)}>
              ×
            </button>
            <ProblemList id={problemsId} problems={rowProblems} />
          </div>
        );
      })}
      <button type="button" onClick={onAdd}>
        Add {noun}
      </button>
    </div>
  );
}
