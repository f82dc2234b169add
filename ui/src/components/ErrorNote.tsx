/** An error as a person reads it: the API's message, then each problem with its path. */
import { isParallelsError } from "../../../proto/client";

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const details = isParallelsError(error) ? error.details : [];
  return (
    <div role="alert" className="error-note">
      <p>{errorText(error)}</p>
      {details.length > 0 && (
        <ul>
          {details.map((d) => (
            <li key={`${d.path}:${d.message}`}>
              {d.path && <code>{d.path}</code>} {d.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
