/**
 * One list + watch of a kind of object for the whole agent (not one watch per Job), as
 * client-go's informers and kubernetes-client/javascript's `ListWatch` do: list (in pages), then
 * watch from the list's resourceVersion with bookmarks; a watch that ends is resumed from the
 * last version seen; 410 Gone (the version is too old) lists again; other failures back off
 * 1 s → 30 s. Objects are parsed into a compact form the caller chooses (`parse`): 10,000 pods
 * are kept as a few fields each, not as full objects.
 *
 * `onChange` is called for every change, and after each (re)list with what changed since the
 * last one — objects that vanished while the watch was down come as DELETED.
 */
import { Backoff, realSleep, type Sleep } from "../../backoff";
import { errInfo, type Logger } from "../../log";
import { isGone, type KubeApi } from "./api";

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface InformerOptions<T> {
  api: KubeApi;
  /** Collection path, e.g. `/apis/batch/v1/namespaces/work/jobs`. */
  path: string;
  labelSelector?: string;
  /**
   * E.g. `status.phase!=Running`. An object that stops matching comes as DELETED (the API
   * server's watch does so), one that starts matching as ADDED.
   */
  fieldSelector?: string;
  /** Raw object → compact form, or null to ignore it. */
  parse: (raw: unknown) => T | null;
  /** Identity of an object (its name within the namespace). */
  key: (obj: T) => string;
  onChange: (type: ChangeType, obj: T) => void;
  logger: Logger;
  /** Page size of lists (default 500). */
  pageSize?: number;
  sleep?: Sleep;
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

interface RawMeta {
  metadata?: { resourceVersion?: string };
}

export class Informer<T> {
  private readonly cache = new Map<string, T>();
  private resourceVersion = "";
  private syncedOnce = false;
  private readonly synced: Promise<void>;
  private markSynced!: () => void;

  constructor(private readonly o: InformerOptions<T>) {
    this.synced = new Promise((r) => (this.markSynced = r));
  }

  /** Resolves after the first complete list. */
  hasSynced(): Promise<void> {
    return this.synced;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  /** Lists and watches until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const sleep = this.o.sleep ?? realSleep;
    const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 });
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist(signal);
          needList = false;
        }
        // The server ends a watch after `timeoutSeconds`; a random one spreads reconnections.
        await this.o.api.watch<RawMeta>(
          this.o.path,
          { labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector, resourceVersion: this.resourceVersion, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
          (type, raw) => this.apply(type, raw),
          signal,
        );
        backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        if (isGone(err)) {
          this.o.logger.info({ path: this.o.path }, "watch resourceVersion too old; listing again");
          needList = true;
          continue;
        }
        this.o.logger.warn({ err: errInfo(err), path: this.o.path }, "list or watch failed; retrying");
        await sleep(backoff.next(), signal);
      }
    }
  }

  private apply(type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK", raw: RawMeta): void {
    const rv = raw.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (type === "BOOKMARK") return;
    const obj = this.o.parse(raw);
    if (!obj) return;
    const k = this.o.key(obj);
    if (type === "DELETED") {
      this.cache.delete(k);
      this.o.onChange("DELETED", obj);
      return;
    }
    const had = this.cache.has(k);
    this.cache.set(k, obj);
    this.o.onChange(had ? "MODIFIED" : "ADDED", obj);
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const seen = new Map<string, T>();
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.o.api.request<RawList>("GET", this.o.path, {
        query: { labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector, limit: this.o.pageSize ?? 500, continue: cont },
        signal,
      });
      for (const raw of page.items ?? []) {
        const obj = this.o.parse(raw);
        if (obj) seen.set(this.o.key(obj), obj);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    // What vanished while we were not watching is DELETED; the rest is ADDED or MODIFIED.
    for (const [k, old] of this.cache) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        this.o.onChange("DELETED", old);
      }
    }
    for (const [k, obj] of seen) {
      const had = this.cache.has(k);
      this.cache.set(k, obj);
      this.o.onChange(had ? "MODIFIED" : "ADDED", obj);
    }
    this.resourceVersion = rv;
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      this.markSynced();
    }
  }
}
