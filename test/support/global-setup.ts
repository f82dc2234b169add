/**
 * Runs once before every suite of `npm test`: the Python tools the tests start (`mlflow server`,
 * nats-server, PyYAML for the YAML 1.1 differential test) are installed on first use, before any
 * test file starts, so `npm ci && npm test` is the whole set-up.
 */
import { ensurePythonTools } from "../../scripts/local/python-tools";
import { ensureUiBuilt } from "../../scripts/local/ui-build";

export default async function setup(): Promise<void> {
  await ensurePythonTools((line) => console.log(line));
  // The control plane serves the web UI's bundle (wrangler.toml [assets]): current before any test starts one.
  await ensureUiBuilt((line) => console.log(line));
}
