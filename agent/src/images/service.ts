/**
 * @module
 * Having a step's image: ask where images are kept (the cluster's registry, or this machine's
 * container storage) for each image of the plan, build only the missing ones, once: concurrent
 * attempts needing the same image join the one build under way (its log so far, then the rest),
 * never start another. A failed build fails every attempt waiting for it, with the failing
 * instruction and the last lines of the log.
 */
import type { TarEntry } from "./tar";
import type { ImagePlan, ImageStep } from "./plan";

/** Where built images are: their digest, or null when the image is not there. */
export interface ImageStore {
  digest(ref: string): Promise<string | null>;
  /** Said in the heartbeat and logs: where it looks. */
  readonly description: string;
}

export interface BuildRequest {
  ref: string;
  kind: ImageStep["kind"];
  context: TarEntry[];
  /** Output of the build, as it comes. */
  log: (text: string) => void;
  /** The MLflow run of the node that asked (a Kubernetes build fetches its context from its artifacts). */
  mlflowRunId?: string;
}

/** Makes an image and puts it where the {@link ImageStore} finds it. */
export interface Builder {
  /** What builds (the heartbeat reports it): `buildkit moby/buildkit:v0.34.2-rootless`, `buildah 1.28.2`… */
  readonly description: string;
  build(req: BuildRequest): Promise<void>;
}

/** A build that failed: `message` names the failing instruction and ends with the last lines of its log. */
export class BuildFailure extends Error {
  override name = "BuildFailure";
  constructor(
    message: string,
    readonly log: string,
  ) {
    super(message);
  }
}

export interface EnsureHooks {
  /** An image of the plan is being built (by this attempt or another): the node is `building`. */
  onBuilding?(step: ImageStep, since: number): void;
  /** Build output as it comes (of every build this attempt waits for). */
  onLog?(text: string): void;
  mlflowRunId?: string;
}

export interface EnsuredImage {
  /** The image to run: `<ref>@<digest>`. */
  ref: string;
  digest: string;
  /** The images of the plan that this call built or waited for. */
  built: string[];
}

interface Flight {
  started: number;
  log: string[];
  listeners: Set<(text: string) => void>;
  done: Promise<string>;
}

/** The most log kept per build (its end, where the failure is). */
const MAX_LOG_CHARS = 4 * 1024 * 1024;

export class ImageService {
  /** What was asked and done, since the start (the bench and the tests read it). */
  readonly stats = { checks: 0, hits: 0, builds: 0, joined: 0 };
  private readonly flights = new Map<string, Flight>();

  constructor(
    readonly store: ImageStore,
    readonly builder: Builder,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every image of the plan, in order: found, or built once. */
  async ensure(plan: ImagePlan, hooks: EnsureHooks = {}): Promise<EnsuredImage> {
    const built: string[] = [];
    let digest = "";
    for (const step of plan.steps) {
      const flight = this.flights.get(step.ref);
      if (flight) {
        this.stats.joined++;
        digest = await this.join(step, flight, hooks);
        built.push(step.ref);
        continue;
      }
      this.stats.checks++;
      const found = await this.store.digest(step.ref);
      if (found) {
        this.stats.hits++;
        digest = found;
        continue;
      }
      // Between the check and here another call may have started the build.
      const late = this.flights.get(step.ref);
      if (late) this.stats.joined++;
      digest = late ? await this.join(step, late, hooks) : await this.join(step, this.start(step, hooks.mlflowRunId), hooks);
      built.push(step.ref);
    }
    return { ref: `${plan.ref}@${digest}`, digest, built };
  }

  private join(step: ImageStep, flight: Flight, hooks: EnsureHooks): Promise<string> {
    hooks.onBuilding?.(step, flight.started);
    if (hooks.onLog) {
      const text = flight.log.join("");
      if (text) hooks.onLog(text);
      flight.listeners.add(hooks.onLog);
    }
    return flight.done.finally(() => {
      if (hooks.onLog) flight.listeners.delete(hooks.onLog);
    });
  }

  private start(step: ImageStep, mlflowRunId: string | undefined): Flight {
    this.stats.builds++;
    const flight: Flight = { started: this.now(), log: [], listeners: new Set(), done: Promise.resolve("") };
    let kept = 0;
    const log = (text: string) => {
      flight.log.push(text);
      kept += text.length;
      while (kept > MAX_LOG_CHARS && flight.log.length > 1) kept -= flight.log.shift()!.length;
      for (const l of flight.listeners) l(text);
    };
    flight.done = (async () => {
      try {
        log(`parallels: building ${step.ref} (${step.what}) with ${this.builder.description}\n`);
        await this.builder.build({ ref: step.ref, kind: step.kind, context: await step.context(), log, ...(mlflowRunId ? { mlflowRunId } : {}) });
        const digest = await this.store.digest(step.ref);
        if (!digest) throw new BuildFailure(`the build of ${step.ref} ended well, but ${this.store.description} does not have the image`, flight.log.join(""));
        log(`parallels: built ${step.ref}@${digest}\n`);
        return digest;
      } finally {
        this.flights.delete(step.ref);
      }
    })();
    // Nobody may be listening when it fails (all waiters gone): no unhandled rejection.
    flight.done.catch(() => undefined);
    this.flights.set(step.ref, flight);
    return flight;
  }

  /** Builds under way (for the heartbeat and tests). */
  building(): string[] {
    return [...this.flights.keys()];
  }
}

/**
 * The failing instruction and the last lines of a build log, as the node's message says it:
 * buildah (`STEP 5/9: RUN …`), BuildKit (`#9 [5/9] RUN …` … `#9 ERROR: …`) and Kaniko
 * (`INFO[0003] RUN …`) announce each instruction.
 */
export function summarizeBuildLog(log: string, lines = 20): { instruction: string | null; tail: string } {
  const all = log.replace(/\r/g, "").split("\n");
  let instruction: string | null = null;
  const failedStep = /^#(\d+) ERROR\b/m.exec(log)?.[1];
  for (const line of all) {
    const buildah = /^STEP \d+\/\d+: (.*)$/.exec(line);
    const buildkit = /^#(\d+) \[(?:[^\]]*\s)?\d+\/\d+\] (.*)$/.exec(line);
    const kaniko = /^INFO\[\d+\] ((?:RUN|COPY|ADD|FROM|WORKDIR|ENV|USER) .*)$/.exec(line);
    if (buildah) instruction = buildah[1]!;
    else if (buildkit && (failedStep === undefined || buildkit[1] === failedStep)) instruction = buildkit[2]!;
    else if (kaniko) instruction = kaniko[1]!;
  }
  const tail = all
    .filter((l) => l.trim() !== "")
    .slice(-lines)
    .join("\n");
  return { instruction, tail };
}

/** The message of a failed build: what failed, then the end of its log. */
export function buildFailureMessage(ref: string, log: string, cause: string): string {
  const { instruction, tail } = summarizeBuildLog(log);
  const head = `building the image ${ref} failed${instruction ? ` at ${instruction.length > 300 ? `${instruction.slice(0, 300)}…` : instruction}` : ""}: ${cause}`;
  return `${head}\nlast lines of the build log (parallels/build.log):\n${tail}`.slice(0, 3900);
}
