/**
 * BuildKit on this machine for the tests and the bench: buildkitd and buildctl built from the Go
 * module proxy (scripts/images/build-buildkit.sh, cached by version outside the clone), buildkitd
 * started as a recorded process of a run dir — root, its state and socket in the run dir, the OCI
 * worker with runc and overlayfs, the host network (RUN steps reach the package index as the host
 * does), registries on 127.0.0.1 over HTTP.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launch, logTail, stopProcesses } from "../k8s/processes";

const HERE = dirname(fileURLToPath(import.meta.url));
export const BUILDKIT_SCRIPT = join(HERE, "build-buildkit.sh");

/** Runs the build script (instant when cached); resolves with the bin folder. */
export function ensureBuildkit(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn("bash", [BUILDKIT_SCRIPT], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let partial = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => {
      const lines = (partial + b.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) log(`[buildkit build] ${line}`);
    });
    child.once("error", (e) => fail(new Error(`cannot run ${BUILDKIT_SCRIPT}: ${e.message}`)));
    child.once("close", (code) => {
      if (code !== 0) return fail(new Error(`${BUILDKIT_SCRIPT} exited with ${code}`));
      const bin = resolve(stdout.trim().split("\n").pop() ?? "");
      if (!existsSync(join(bin, "buildctl")) || !existsSync(join(bin, "buildkitd"))) return fail(new Error(`${BUILDKIT_SCRIPT} printed ${bin}, which lacks buildctl or buildkitd`));
      ok(bin);
    });
  });
}

export interface Buildkitd {
  /** `unix://…/buildkitd.sock` */
  address: string;
  buildctl: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startBuildkitd(runDir: string, bin: string, plainHttpRegistries: readonly string[]): Promise<Buildkitd> {
  const dir = join(runDir, "buildkitd");
  mkdirSync(join(dir, "root"), { recursive: true });
  const socket = join(dir, "buildkitd.sock");
  const config = join(dir, "buildkitd.toml");
  writeFileSync(
    config,
    [
      `root = "${join(dir, "root")}"`,
      "[grpc]",
      `  address = ["unix://${socket}"]`,
      "[worker.oci]",
      "  enabled = true",
      '  binary = "runc"',
      '  snapshotter = "overlayfs"',
      '  networkMode = "host"',
      "[worker.containerd]",
      "  enabled = false",
      ...plainHttpRegistries.flatMap((r) => [`[registry."${r}"]`, "  http = true", "  insecure = true"]),
      "",
    ].join("\n"),
  );
  await launch(runDir, { name: "buildkitd", prefix: [], binary: join(bin, "buildkitd"), args: ["--config", config] });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (existsSync(socket)) return { address: `unix://${socket}`, buildctl: join(bin, "buildctl"), stop: async () => void (await stopProcesses(runDir, ["buildkitd"])) };
    await sleep(100);
  }
  await stopProcesses(runDir, ["buildkitd"]);
  throw new Error(`buildkitd did not listen on ${socket} within 30 s:\n${logTail(runDir, "buildkitd")}`);
}
