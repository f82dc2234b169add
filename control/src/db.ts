/**
 * The one way handlers reach D1: a drizzle instance over a D1 binding that counts round trips,
 * so the cost of each request is visible (Server-Timing `d1;desc=...`) and benchmarked.
 */
import { sql, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema";

export type Db = ReturnType<typeof drizzle<typeof schema>>;

const STATEMENT_CALLS = new Set(["run", "all", "first", "raw"]);

/** Round trips to D1 in one request, and the time spent waiting for them (ms). */
export interface D1Calls {
  count: number;
  waitMs: number;
}

async function timed<T>(calls: D1Calls, run: () => Promise<T>): Promise<T> {
  calls.count++;
  const start = performance.now();
  try {
    return await run();
  } finally {
    calls.waitMs += performance.now() - start;
  }
}

function countStatement(stmt: D1PreparedStatement, calls: D1Calls): D1PreparedStatement {
  return new Proxy(stmt, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "bind") return (...args: unknown[]) => countStatement(value.apply(target, args), calls);
      if (STATEMENT_CALLS.has(prop as string)) {
        return (...args: unknown[]) => timed(calls, () => value.apply(target, args));
      }
      return value.bind(target);
    },
  });
}

/** Wraps a D1 binding so every round trip (statement execution or batch) is counted and timed. */
export function countingD1(d1: D1Database, calls: D1Calls): D1Database {
  return new Proxy(d1, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "prepare") return (query: string) => countStatement(target.prepare(query), calls);
      if (prop === "batch" || prop === "exec") {
        // The statements of a batch travel together: one round trip.
        return (...args: unknown[]) => timed(calls, () => value.apply(target, args));
      }
      return value.bind(target);
    },
  });
}

export function getDb(d1: D1Database): Db {
  return drizzle(d1, { schema });
}

/** A statement for `writeBatch`: a drizzle query builder or a `db.run(sql\`...\`)`. */
export type Writable = { toSQL(): { sql: string; params: unknown[] } } | { getQuery(): { sql: string; params: unknown[] } };

/**
 * Runs statements in one D1 batch: one round trip, one transaction (all or nothing).
 * drizzle's own `batch` cannot bind parameters of raw `sql` statements on D1, which our
 * `json_each` bulk writes rely on, so writes go through here.
 */
export async function writeBatch(db: Db, statements: Writable[]): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  const d1 = db.$client;
  return d1.batch(
    statements.map((s) => {
      const q = "toSQL" in s ? s.toSQL() : s.getQuery();
      return d1.prepare(q.sql).bind(...q.params);
    }),
  );
}

/**
 * A list of our own constants as SQL string literals, `('a', 'b')`, for `status IN ${sqlList(…)}`:
 * the status sets keep their one home (proto/status.ts) in SQL too. Literals rather than bound
 * values, so a statement's parameters stay within D1's 100 and its text stays the same.
 */
export function sqlList(values: readonly string[]): SQL {
  for (const v of values) if (!/^[a-z_]+$/.test(v)) throw new Error(`sqlList takes plain words only, not ${JSON.stringify(v)}`);
  return sql.raw(`(${values.map((v) => `'${v}'`).join(", ")})`);
}
