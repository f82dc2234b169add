/**
 * Runs once before every suite of `npm test`: the Python tools the tests start (`mlflow server`,
 * nats-server, PyYAML for the YAML 1.1 differential test) are installed on first use, before any
 * test file starts, so `npm ci && npm test` is the whole set-up.
 */
import { ensurePythonTools } from "../../scripts/local/python-tools";

export default async function setup(): Promise<void> {
  await ensurePythonTools((line) => console.log(line));
}
