/** Times as a person reads them: "12 s ago", and the exact time in a tooltip. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const localTime = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "—");

/** A duration between two instants (or until now), as "1 min 5 s". */
export function duration(from: string | null, to: string | null, now = Date.now()): string {
  if (!from) return "—";
  const s = Math.max(0, Math.round(((to ? Date.parse(to) : now) - Date.parse(from)) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
