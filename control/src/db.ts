/**
 * The one way handlers reach D1: a drizzle instance over a D1 binding that counts round trips,
 * so the cost of each request is visible (Server-Timing `d1;desc=...`) and benchmarked.
 */
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema";

export type Db = ReturnType<typeof drizzle<typeof schema>>;

const STATEMENT_CALLS = new Set(["run", "all", "first", "raw"]);

function countStatement(stmt: D1PreparedStatement, calls: { count: number }): D1PreparedStatement {
  return new Proxy(stmt, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "bind") return (...args: unknown[]) => countStatement(value.apply(target, args), calls);
      if (STATEMENT_CALLS.has(prop as string)) {
        return (...args: unknown[]) => {
          calls.count++;
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}

/** Wraps a D1 binding so every round trip (statement execution or batch) increments `calls`. */
export function countingD1(d1: D1Database, calls: { count: number }): D1Database {
  return new Proxy(d1, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "prepare") return (query: string) => countStatement(target.prepare(query), calls);
      if (prop === "batch" || prop === "exec") {
        return (...args: unknown[]) => {
          calls.count++;
          // Statements inside a batch are unwrapped by D1 itself; they travel in one round trip.
          return value.apply(target, args);
        };
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
