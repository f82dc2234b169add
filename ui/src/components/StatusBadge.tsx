/** A run's, a step's or a cluster's status as a word with its colour (the word carries the meaning). */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status}`}>{status.replace(/_/g, " ")}</span>;
}
