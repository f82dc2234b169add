/**
 * @module
 * The API's lists answer `{items, nextCursor}` a page at a time. A `Paginator` walks them:
 * `for await (const run of client.runs.list({ dag }))` fetches page after page, following
 * `nextCursor`, only as far as the loop goes (a `break` fetches nothing more).
 */
import { ParallelsError } from "./errors";

export interface Page<T> {
  items: T[];
  /** Pass it as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

export class Paginator<T> implements AsyncIterable<T> {
  constructor(
    private readonly fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
    private readonly startCursor?: string,
  ) {}

  /** One page: the first one (or the one after the list's `cursor`), or the one after `cursor`. */
  page(cursor: string | undefined = this.startCursor): Promise<Page<T>> {
    return this.fetchPage(cursor);
  }

  /** Every page, in order. */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let cursor = this.startCursor;
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield page;
      if (page.nextCursor === null) return;
      // A cursor that does not move would loop for ever: say so instead.
      if (page.nextCursor === cursor) throw new ParallelsError({ code: "bad_response", status: 200, message: `the list answered the same cursor twice (${cursor})`, method: "GET", path: "" });
      cursor = page.nextCursor;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.items;
  }

  /** Every item, or the first `max` of them, as an array. */
  async toArray(max = Number.POSITIVE_INFINITY): Promise<T[]> {
    const out: T[] = [];
    if (max <= 0) return out;
    for await (const item of this) {
      out.push(item);
      if (out.length >= max) break;
    }
    return out;
  }
}
