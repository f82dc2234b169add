/**
 * Routes live in the URL's hash (`#/runs/abc`): the Worker serves one static page, so no path of
 * the UI can ever shadow an API path, and a reload or a shared link opens the same view.
 */
import { useSyncExternalStore } from "react";

export interface Route {
  /** Path segments: `#/dags/wordcount/edit` → ["dags", "wordcount", "edit"]. */
  segments: string[];
  query: URLSearchParams;
}

const subscribe = (onChange: () => void) => {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
};

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  const [path = "", search = ""] = hash.replace(/^#/, "").split("?");
  return { segments: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search) };
}

/** `href("runs", id)` → `#/runs/<id>`, each segment encoded. */
export const href = (...segments: string[]) => `#/${segments.map(encodeURIComponent).join("/")}`;

export function navigate(to: string): void {
  window.location.hash = to.replace(/^#/, "");
}
