/** Sign in with an API token; the token stays in this tab's session storage. */
import { type FormEvent, useState } from "react";
import { useSession } from "./api/session";
import { ErrorNote } from "./components/ErrorNote";

export function SignIn() {
  const signIn = useSession((s) => s.signIn);
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    await signIn(token).catch(setError);
    setBusy(false);
  };
  return (
    <main className="sign-in">
      <h1>MLflow Parallels</h1>
      <form onSubmit={submit}>
        <label>
          API token
          <input type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} required />
        </label>
        <p className="muted">
          A token of your workspace (<code>POST /v1/tokens</code>), or the admin secret <code>PARALLELS_ADMIN_TOKEN</code> from <code>.dev.vars</code> on the embedded default. It is kept in this tab
          only.
        </p>
        <button type="submit" className="primary" disabled={busy || token.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}
