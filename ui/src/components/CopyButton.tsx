/** Copies a text to the clipboard and says so; where the clipboard is refused, selects it instead. */
import { useState } from "react";

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied("yes");
    } catch {
      // No clipboard access (an http page not on localhost, a denied permission): the text stays selectable.
      setCopied("no");
    }
  };
  return (
    <span className="copy">
      <button type="button" onClick={copy} aria-label={label}>
        Copy
      </button>
      <span role="status" className="muted">
        {copied === "yes" ? "copied" : copied === "no" ? "select the text to copy it" : ""}
      </span>
    </span>
  );
}
