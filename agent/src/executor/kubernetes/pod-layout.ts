/**
 * The layout of a work pod, shared by the Job the agent makes and the programs that run in it
 * (`parallels-agent pod fetch` as an init container, `parallels-agent pod sidecar` as a native
 * sidecar, and the step's wrapper in the user's image): one emptyDir at {@link POD_DIR}.
 *
 * | path | written by | what |
 * |---|---|---|
 * | `inputs/<name>/` | fetch | the partition's slice of each input (`PARALLELS_INPUTS_DIR`) |
 * | `outputs/` | the step | uploaded as artifacts of the node's run (`PARALLELS_OUTPUTS_DIR`) |
 * | `project/` | fetch | the project at its commit (unless the image holds it) |
 * | `run/env` | fetch | `MLFLOW_RUN_ID`, `PARALLELS_PARTITION_*`: what differs per index |
 * | `run/manifest.json` | fetch | the partition's own files (`PARALLELS_PARTITION_MANIFEST`) |
 * | `run/metadata.json` | fetch | their metadata from the upstream steps (`PARALLELS_PARTITION_METADATA`) |
 * | `logs/stdout.log`, `logs/stderr.log` | the step | uploaded while it runs and at its end |
 * | `logs/exit-code` | the step's wrapper | the sidecar's cue that the step ended |
 * | `logs/metadata-verdict` | upload | after a step that succeeded and wrote a metadata sidecar: empty, or why the sidecar was refused |
 * | `run/ca-bundle.pem` | the step's wrapper | the image's CAs plus the site's, when the pod has a CA bundle (work-network.ts) |
 */
import { STEP_CA_LINES } from "./work-network";

export const POD_DIR = "/parallels";
/** The volume holding {@link POD_DIR}. */
export const POD_VOLUME = "parallels";

export const podPaths = (root = POD_DIR) => ({
  root,
  inputs: `${root}/inputs`,
  outputs: `${root}/outputs`,
  project: `${root}/project`,
  env: `${root}/run/env`,
  manifest: `${root}/run/manifest.json`,
  metadata: `${root}/run/metadata.json`,
  stdout: `${root}/logs/stdout.log`,
  stderr: `${root}/logs/stderr.log`,
  exitCode: `${root}/logs/exit-code`,
  metadataVerdict: `${root}/logs/metadata-verdict`,
});

/**
 * The step container's exit code when the step succeeded but its metadata sidecar was refused
 * (EX_DATAERR): the index fails as on the local executor, with the refusal as its last words.
 */
export const METADATA_REFUSED_EXIT = 65;

/** Environment variable carrying the attempt's {@link import("./pod-attempt").PodAttempt} (JSON) into the pod's containers. */
export const POD_ATTEMPT_ENV = "PARALLELS_POD_ATTEMPT";
/** The rendered command of the step, given to the wrapper. */
export const STEP_COMMAND_ENV = "PARALLELS_STEP_COMMAND";
/** Where the work dir is (tests run the pod's programs on a host with another folder). */
export const POD_DIR_ENV = "PARALLELS_POD_DIR";

/**
 * The step container's program (POSIX sh, in the user's image): write the CA bundle when the pod
 * has one (work-network.ts), read what fetch wrote for this
 * index, run the entry point's command in the project folder (bash when the image has it, as
 * `mlflow run` does), keep its output in files for the sidecar, put the end of stderr where
 * Kubernetes shows it (`terminated.message`), and write the exit code. A step that succeeded and
 * wrote a metadata sidecar then waits for the sidecar's verdict on it (`pod upload` checks it with
 * the local executor's rule): a refusal fails the index with {@link METADATA_REFUSED_EXIT} and the
 * refusal as its message — the step's exit code alone would let the node succeed without the
 * metadata its dependants partition on. Without an answer in about two minutes (no sidecar), the
 * step's own exit code stands.
 */
export const STEP_WRAPPER = [
  `root="\${${POD_DIR_ENV}:-${POD_DIR}}"`,
  ...STEP_CA_LINES,
  'set -a; . "$root/run/env"; set +a',
  'cd "$PARALLELS_PROJECT_DIR" || exit 127',
  "if command -v bash >/dev/null 2>&1; then sh=bash; else sh=sh; fi",
  `"$sh" -c "$${STEP_COMMAND_ENV}" >"$root/logs/stdout.log" 2>"$root/logs/stderr.log"`,
  "code=$?",
  'if [ "$code" -ne 0 ] && [ -w /dev/termination-log ]; then tail -c 2048 "$root/logs/stderr.log" >/dev/termination-log; fi',
  'echo "$code" >"$root/logs/exit-code"',
  'if [ "$code" -eq 0 ] && { [ -s "$root/outputs/.metadata.jsonl" ] || [ -n "$(ls -A "$root/outputs/.metadata" 2>/dev/null)" ]; }; then',
  "  n=0",
  '  while [ ! -e "$root/logs/metadata-verdict" ] && [ "$n" -lt 600 ]; do sleep 0.2 2>/dev/null || sleep 1; n=$((n + 1)); done',
  '  if [ -s "$root/logs/metadata-verdict" ]; then',
  '    cat "$root/logs/metadata-verdict" >&2',
  '    if [ -w /dev/termination-log ]; then head -c 2048 "$root/logs/metadata-verdict" >/dev/termination-log; fi',
  `    exit ${METADATA_REFUSED_EXIT}`,
  "  fi",
  "fi",
  'exit "$code"',
].join("\n");
