/**
 * Cursor pages: a list query asks for `limit + 1` rows after the cursor; this turns them into the
 * `{items, nextCursor}` every list answers (`nextCursor` is the last item's key, or null at the end).
 */
export function pageOf<Row, Item>(rows: Row[], limit: number, keyOf: (row: Row) => string, view: (row: Row) => Item): { items: Item[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  return { items: page.map(view), nextCursor: rows.length > limit ? keyOf(page[page.length - 1]!) : null };
}
