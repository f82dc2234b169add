/**
 * A modal dialog on the native <dialog> element: the browser traps focus, closes it on Escape and
 * gives it the dialog role; `title` is its accessible name.
 */
import { type ReactNode, useEffect, useId, useRef } from "react";

export function Dialog({ title, onClose, children, wide = false }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  // No close() on cleanup: unmounting removes the element, which ends the modal without a
  // `close` event. A close() there would fire one, and under React's StrictMode (effects run,
  // cleaned up and run again on mount) that event's onClose shut the dialog as it opened.
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={titleId} className={wide ? "dialog wide" : "dialog"} onClose={onClose}>
      <header className="dialog-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}
