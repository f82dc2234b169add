/**
 * @module
 * Images on this machine (the local executor's `--containers podman`): buildah builds the
 * generated Dockerfile — the same text a cluster's BuildKit builds — and pushes it to the
 * registry when there is one; podman runs it. Both read the machine's container configuration
 * from the environment they are given (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`,
 * `CONTAINERS_REGISTRIES_CONF`: the tests keep every piece of state in a folder of their own).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { CA_SECRET_ID, splitImageRef } from "../../../proto/images";
import { type Builder, BuildFailure, type BuildRequest, buildFailureMessage, type ImageStore } from "./service";
import { extractTo } from "./tar";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program; its output (both streams, as they come) to `onOutput`. Never rejects for a non-zero exit. */
export function runTool(bin: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; onOutput?: (text: string) => void; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (t: string) => {
      stdout += t;
      opts.onOutput?.(t);
    });
    child.stderr!.setEncoding("utf8").on("data", (t: string) => {
      stderr += t;
      opts.onOutput?.(t);
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

export interface BuildahOptions {
  /** Environment of buildah (and podman): the container configuration variables. Default: the agent's. */
  env?: NodeJS.ProcessEnv;
  /** The extra CA bundle given to the builds' RUN steps as the secret `parallels-ca` (a file on this machine). */
  caBundle?: string;
  /** Push built images (to the registry their reference names); false keeps them in local storage. */
  push: boolean;
  /** Registries reached over plain HTTP (`host:port`). */
  plainHttp?: readonly string[];
  buildahBin?: string;
  /** Folder for the build contexts (default the system's temp folder). */
  tmpDir?: string;
}

export class BuildahBuilder implements Builder {
  description = "buildah";

  constructor(private readonly o: BuildahOptions) {}

  /** `buildah --version`, for the heartbeat. */
  async describe(): Promise<string> {
    const r = await runTool(this.o.buildahBin ?? "buildah", ["--version"], { env: this.o.env ?? process.env }).catch(() => null);
    const v = r?.stdout.match(/buildah version (\S+)/)?.[1];
    this.description = v ? `buildah ${v}` : "buildah";
    return this.description;
  }

  async build(req: BuildRequest): Promise<void> {
    const env = this.o.env ?? process.env;
    const bin = this.o.buildahBin ?? "buildah";
    const dir = await mkdtemp(join(this.o.tmpDir ?? tmpdir(), "parallels-build-"));
    try {
      await extractTo(req.context, dir);
      const args = [
        "bud",
        // chroot isolation: the RUN steps share the host's network (the package index, as the host reaches it).
        "--isolation",
        "chroot",
        // Layers kept: a retry after a failure starts from the last step that succeeded.
        "--layers",
        ...(this.o.caBundle ? ["--secret", `id=${CA_SECRET_ID},src=${this.o.caBundle}`] : []),
        ...this.tlsFlags(req.ref),
        "-f",
        join(dir, "Dockerfile"),
        "-t",
        req.ref,
        dir,
      ];
      req.log(`$ ${bin} ${args.join(" ")}\n`);
      const built = await runTool(bin, args, { env, onOutput: req.log });
      if (built.code !== 0) throw new BuildFailure(buildFailureMessage(req.ref, built.stdout + built.stderr, `buildah exited with ${built.code}`), built.stdout + built.stderr);
      if (this.o.push) {
        const pushArgs = ["push", ...this.tlsFlags(req.ref), req.ref];
        req.log(`$ ${bin} ${pushArgs.join(" ")}\n`);
        const pushed = await runTool(bin, pushArgs, { env, onOutput: req.log });
        if (pushed.code !== 0) throw new BuildFailure(`pushing ${req.ref} failed (buildah exited with ${pushed.code}): ${pushed.stderr.trim().split("\n").slice(-5).join("\n")}`, pushed.stderr);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private tlsFlags(ref: string): string[] {
    return this.o.plainHttp?.includes(splitImageRef(ref).registry) ? ["--tls-verify=false"] : [];
  }
}

/** Images in this machine's container storage (no registry): their digest from podman. */
export class LocalImageStore implements ImageStore {
  readonly description = "this machine's container storage";
  constructor(private readonly o: { env?: NodeJS.ProcessEnv; podmanBin?: string } = {}) {}

  async digest(ref: string): Promise<string | null> {
    const r = await runTool(this.o.podmanBin ?? "podman", ["image", "inspect", "--format", "{{.Digest}}", ref], { env: this.o.env ?? process.env });
    if (r.code !== 0) return null;
    return r.stdout.trim() || null;
  }
}
