// The Python values PyYAML's safe_load produces, modelled so that Python's str() can be reproduced:
// ints are bigint (never confused with floats: `1.0` must render "1.0"), floats are number,
// mappings are insertion-ordered Maps (Python dicts), and the few non-JSON types get small classes.

export type PyValue = null | boolean | string | bigint | number | PyDate | PyDateTime | PyBytes | PyTuple | PySet | PyValue[] | PyDict;

export type PyDict = Map<PyValue, PyValue>;

export class PyDate {
  constructor(
    readonly year: number,
    readonly month: number,
    readonly day: number,
  ) {}
}

export class PyDateTime {
  constructor(
    readonly date: PyDate,
    readonly hour: number,
    readonly minute: number,
    readonly second: number,
    readonly microsecond: number,
    /** UTC offset in minutes; null for a naive datetime. */
    readonly tzOffsetMinutes: number | null,
  ) {}
}

export class PyBytes {
  constructor(readonly bytes: Uint8Array) {}
}

/** `!!omap` / `!!pairs` entries are (key, value) tuples. */
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PySet {
  constructor(readonly items: readonly PyValue[]) {}
}

export const isPyDict = (v: unknown): v is PyDict => v instanceof Map;

/** Python's `type(v)` name, for messages like "<class 'float'>". */
export function pyTypeName(v: PyValue): string {
  if (v === null) return "NoneType";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "str";
  if (typeof v === "bigint") return "int";
  if (typeof v === "number") return "float";
  if (Array.isArray(v)) return "list";
  if (v instanceof Map) return "dict";
  if (v instanceof PyDateTime) return "datetime.datetime";
  if (v instanceof PyDate) return "datetime.date";
  if (v instanceof PyBytes) return "bytes";
  if (v instanceof PyTuple) return "tuple";
  return "set";
}

/** `str(type(v))`, e.g. "<class 'float'>". */
export const pyTypeRepr = (v: PyValue): string => `<class '${pyTypeName(v)}'>`;
