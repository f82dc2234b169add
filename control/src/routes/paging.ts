/**
 * Cursor pages of the lists ordered by one unique key (a name or an id): ask for `limit + 1` rows
 * after the cursor, answer `{items, nextCursor}` (`nextCursor` is the last item's key, or null at
 * the end).
 */
import { and, eq, gt, type SQL } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Db } from "../db";

export interface Page<Item> {
  items: Item[];
  nextCursor: string | null;
}

export function pageOf<Row, Item>(rows: Row[], limit: number, keyOf: (row: Row) => string, view: (row: Row) => Item): Page<Item> {
  const page = rows.slice(0, limit);
  return { items: page.map(view), nextCursor: rows.length > limit ? keyOf(page[page.length - 1]!) : null };
}

/** How a table is listed: its workspace column, and the unique string key it is ordered by. */
export interface ListOrder<Row> {
  workspace: SQLiteColumn;
  key: SQLiteColumn;
  keyOf: (row: Row) => string;
}

/** The page of a workspace's rows of `table` after `q.cursor`, ordered by the key. */
export async function listPage<T extends SQLiteTable, Item>(
  db: Db,
  table: T,
  order: ListOrder<T["$inferSelect"]>,
  workspaceId: string,
  q: { limit: number; cursor?: string | undefined },
  view: (row: T["$inferSelect"]) => Item,
): Promise<Page<Item>> {
  const where: SQL | undefined = and(eq(order.workspace, workspaceId), q.cursor ? gt(order.key, q.cursor) : undefined);
  const rows = (await db
    .select()
    .from(table as SQLiteTable)
    .where(where)
    .orderBy(order.key)
    .limit(q.limit + 1)) as T["$inferSelect"][];
  return pageOf(rows, q.limit, order.keyOf, view);
}
