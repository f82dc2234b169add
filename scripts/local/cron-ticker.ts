/**
 * The Cron Triggers of wrangler.toml, fired on the embedded default as Cloudflare fires them:
 * `wrangler dev` never runs a Worker's `scheduled` handler by itself, so schedules would never
 * create runs under `npm run dev`. At each minute boundary the ticker asks wrangler's local
 * trigger endpoint (`/cdn-cgi/local/scheduled`) to run the handler for every cron expression of
 * wrangler.toml that matches that minute, with `scheduledTime` = the boundary, as in production.
 *
 * A tick that fails (the control plane restarting) is logged and not retried: the next one
 * catches up, as the handler replays missed schedule occurrences itself.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cron } from "croner";
import { parse } from "smol-toml";

/** The `[triggers] crons` of a wrangler.toml. */
export function cronTriggersOf(wranglerToml: string): string[] {
  const config = parse(readFileSync(wranglerToml, "utf8")) as { triggers?: { crons?: unknown } };
  const crons = config.triggers?.crons ?? [];
  if (!Array.isArray(crons) || !crons.every((c) => typeof c === "string")) throw new Error(`${wranglerToml}: [triggers] crons must be a list of cron expressions`);
  return crons;
}

export interface CronTicker {
  /** Ticks fired so far (with the cron and the outcome), newest last. */
  readonly fired: { cron: string; scheduledTime: number; ok: boolean }[];
  stop(): void;
}

export interface CronTickerOptions {
  /** The control plane's base URL (wrangler dev). */
  url: string;
  /** Cron expressions to fire (UTC, as Cloudflare evaluates them). */
  crons: string[];
  log?: (line: string) => void;
  now?: () => number;
}

export function startCronTicker(o: CronTickerOptions): CronTicker {
  const now = o.now ?? Date.now;
  const crons = o.crons.map((expr) => ({ expr, cron: new Cron(expr, { paused: true, timezone: "UTC" }) }));
  const fired: CronTicker["fired"] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function fire(boundary: number): Promise<void> {
    for (const { expr, cron } of crons) {
      // Due at this minute: the first occurrence after the minute before it is this one.
      if (cron.nextRun(new Date(boundary - 1))?.getTime() !== boundary) continue;
      const query = new URLSearchParams({ cron: expr, time: String(boundary) });
      let ok = false;
      try {
        const res = await fetch(`${o.url}/cdn-cgi/local/scheduled?${query}`, { signal: AbortSignal.timeout(50_000) });
        ok = res.ok;
        if (!ok) o.log?.(`cron trigger "${expr}" at ${new Date(boundary).toISOString()}: the handler answered ${res.status} ${(await res.text()).slice(0, 200)}`);
      } catch (err) {
        o.log?.(`cron trigger "${expr}" at ${new Date(boundary).toISOString()} not delivered: ${(err as Error).message}`);
      }
      fired.push({ cron: expr, scheduledTime: boundary, ok });
      if (fired.length > 100) fired.shift();
    }
  }

  function arm(): void {
    if (stopped) return;
    const t = now();
    const boundary = Math.floor(t / 60_000) * 60_000 + 60_000;
    timer = setTimeout(() => {
      arm();
      void fire(boundary);
    }, boundary - t);
    timer.unref();
  }
  arm();
  return {
    fired,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** The Cron Triggers of this repository's Worker. */
export const workerCronTriggers = (root: string) => cronTriggersOf(join(root, "wrangler.toml"));
