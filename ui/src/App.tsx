/** The sign-in gate, then the shell: header with the workspace, navigation, and the routed page. */
import { useEffect } from "react";
import { useSession } from "./api/session";
import { SignIn } from "./SignIn";
import { ClustersPage } from "./clusters/ClustersPage";
import { DagsPage } from "./dags/DagsPage";
import { EditorPage } from "./editor/EditorPage";
import { href, type Route, useRoute } from "./router";
import { RunPage } from "./runs/RunPage";
import { RunsPage } from "./runs/RunsPage";

export function App() {
  const { session, restoring, restore, signOut } = useSession();
  const route = useRoute();
  useEffect(() => void restore(), [restore]);
  if (restoring) return <p className="centered">Signing in…</p>;
  if (!session) return <SignIn />;
  const section = route.segments[0] ?? "runs";
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">MLflow Parallels</span>
        <nav aria-label="Main">
          {(
            [
              ["runs", "Runs"],
              ["dags", "DAGs"],
              ["clusters", "Clusters"],
            ] as const
          ).map(([key, label]) => (
            <a key={key} href={href(key)} aria-current={section === key ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span className="who">
          workspace <strong data-testid="workspace">{session.workspace}</strong> · {session.scope}
          {session.root ? " (admin secret)" : ""}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        <Page route={route} />
      </main>
    </div>
  );
}

function Page({ route }: { route: Route }) {
  const [section = "runs", name, action] = route.segments;
  switch (section) {
    case "clusters":
      return <ClustersPage />;
    case "dags":
      if (name === "new") return <EditorPage key="new" />;
      if (name && action === "edit") return <EditorPage key={`${name}@${route.query.get("version") ?? ""}`} dagName={name} version={Number(route.query.get("version")) || undefined} />;
      return <DagsPage />;
    case "runs":
      if (name) return <RunPage key={name} runId={name} />;
      return <RunsPage query={route.query} />;
    default:
      return (
        <p>
          Nothing here. Go to the <a href={href("runs")}>runs</a>.
        </p>
      );
  }
}
