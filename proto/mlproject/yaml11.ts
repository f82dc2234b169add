// YAML loading with PyYAML's `safe_load` semantics (YAML 1.1). The `yaml` package does the
// syntax; this file re-implements PyYAML's resolver (which plain scalars become int/float/bool/
// null/timestamp) and SafeConstructor, because YAML 1.2 rules would change rendered commands
// (`1e-3` stays a str, `010` is 8, `yes` is True, `1.0` is a float that prints "1.0").
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type Node, parseAllDocuments } from "yaml";
import { YamlError } from "./errors.js";
import { PyBytes, PyDate, PyDateTime, type PyDict, PySet, PyTuple, type PyValue } from "./pytypes.js";

const T = "tag:yaml.org,2002:";

// PyYAML resolver.py, in registration order (first match wins).
const RESOLVERS: ReadonlyArray<readonly [string, RegExp]> = [
  ["bool", /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/],
  ["float", /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/],
  ["int", /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/],
  ["merge", /^(?:<<)$/],
  ["null", /^(?:~|null|Null|NULL|)$/],
  [
    "timestamp",
    /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
  ],
  ["value", /^(?:=)$/],
];

/** PyYAML's implicit tag for a plain scalar (Python's `$` also matches before a final "\n"). */
export function resolvePlainTag(value: string): string {
  const candidates = value.endsWith("\n") ? [value, value.slice(0, -1)] : [value];
  for (const [name, re] of RESOLVERS) {
    if (candidates.some((v) => re.test(v))) return T + name;
  }
  return `${T}str`;
}

// PyYAML's Reader refuses these code points anywhere in the stream.
// biome-ignore lint/suspicious/noControlCharactersInRegex: PyYAML's `Reader.NON_PRINTABLE`, kept character for character: tab, LF and CR are the C0 controls YAML 1.1 allows.
const NON_PRINTABLE = /[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export interface LoadYamlOptions {
  /** Name used in error messages (e.g. "MLproject"). */
  source?: string;
}

/** `yaml.safe_load(text)`: None for an empty stream, error for more than one document. */
export function loadYaml(text: string, options: LoadYamlOptions = {}): PyValue {
  const where = options.source ? ` in ${options.source}` : "";
  const bad = NON_PRINTABLE.exec(text);
  if (bad) {
    const cp = bad[0].codePointAt(0) ?? 0;
    throw new YamlError(`unacceptable character #x${cp.toString(16).padStart(4, "0")}: special characters are not allowed${where} (position ${bad.index})`);
  }
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, {
      version: "1.1",
      schema: "failsafe", // every scalar stays a string; resolution happens below
      uniqueKeys: false, // PyYAML keeps the last value of a repeated key
      merge: false,
      prettyErrors: false,
      keepSourceTokens: true, // to tell `: x` (PyYAML error) from `? \n: x` (None key)
    }) as Document.Parsed[];
  } catch (cause) {
    throw new YamlError(`invalid YAML${where}: ${String(cause)}`, { cause });
  }
  if (!Array.isArray(docs)) {
    throw new YamlError(`invalid YAML${where}: unexpected stream structure`);
  }
  for (const d of docs) {
    const err = d.errors[0];
    if (err) throw new YamlError(`invalid YAML${where}: ${err.message}`, { cause: err });
  }
  if (docs.length === 0) return null;
  if (docs.length > 1) {
    throw new YamlError(`expected a single document in the stream${where}, but found another document`);
  }
  const doc = docs[0]!;
  return new Constructor(doc, text, where).construct(doc.contents as Node | null);
}

class Constructor {
  private readonly done = new Map<Node, PyValue>();
  private readonly inProgress = new Set<Node>();

  constructor(
    private readonly doc: Document.Parsed,
    private readonly text: string,
    private readonly where: string,
  ) {}

  private fail(msg: string): never {
    throw new YamlError(`${msg}${this.where}`);
  }

  private deref(n: unknown): Node | null {
    if (n === null || n === undefined) return null;
    if (isAlias(n)) {
      const target = n.resolve(this.doc);
      if (!target) this.fail(`found undefined alias '${n.source}'`);
      return target as Node;
    }
    return n as Node;
  }

  construct(raw: unknown): PyValue {
    const node = this.deref(raw);
    if (node === null) return null;
    const cached = this.done.get(node);
    if (cached !== undefined) return cached;
    if (this.inProgress.has(node)) {
      this.fail("found a recursive alias (a node that contains itself), which is not supported");
    }
    this.inProgress.add(node);
    try {
      const v = this.constructNode(node);
      this.done.set(node, v);
      return v;
    } finally {
      this.inProgress.delete(node);
    }
  }

  private constructNode(node: Node): PyValue {
    if (isScalar(node)) {
      let value = node.value as string;
      const type = node.type ?? "PLAIN";
      // PyYAML only keeps a block scalar's final line break if the source has one (not at EOF).
      if ((type === "BLOCK_LITERAL" || type === "BLOCK_FOLDED") && value.endsWith("\n") && node.range) {
        const src = this.text.slice(node.range[0], node.range[1]);
        if (!/[\n\r]$/.test(src)) value = value.slice(0, -1);
      }
      return this.scalar(value, type, node.tag);
    }
    if (isSeq(node)) {
      const tag = node.tag ?? `${T}seq`;
      if (tag === `${T}omap` || tag === `${T}pairs`) return this.pairs(node.items, tag);
      if (tag !== `${T}seq` && tag !== "!") this.noConstructor(tag);
      return node.items.map((i) => this.construct(i));
    }
    if (isMap(node)) {
      const tag = node.tag ?? `${T}map`;
      const dict = this.mapping(node);
      if (tag === `${T}set`) return new PySet([...dict.keys()]);
      if (tag !== `${T}map` && tag !== "!") this.noConstructor(tag);
      return dict;
    }
    return this.fail("unsupported YAML node");
  }

  private noConstructor(tag: string): never {
    return this.fail(`could not determine a constructor for the tag '${tag}'`);
  }

  private pairs(items: unknown[], tag: string): PyValue {
    const kind = tag.endsWith("omap") ? "an ordered map" : "pairs";
    return items.map((raw) => {
      const n = this.deref(raw);
      if (!n || !isMap(n) || n.items.length !== 1) {
        this.fail(`while constructing ${kind}: expected a single mapping item`);
      }
      const p = n.items[0]!;
      return new PyTuple([this.construct(p.key), this.construct(p.value)]);
    });
  }

  /** SafeConstructor.flatten_mapping: `<<` merges first, own keys after (and win). */
  private flatPairs(node: Node): Array<[unknown, unknown]> {
    if (!isMap(node)) return [];
    const merged: Array<[unknown, unknown]> = [];
    const own: Array<[unknown, unknown]> = [];
    for (const p of node.items) {
      if (!isPair(p)) continue;
      // A value indicator with no key at all (`: x`) is a PyYAML parse error; `? ` keys are fine.
      const st = p.srcToken as { key?: unknown; start?: Array<{ type: string }> } | undefined;
      if (st && !st.key && !st.start?.some((t) => ["explicit-key-ind", "anchor", "tag"].includes(t.type))) {
        this.fail("expected the node content, but found ':'");
      }
      const k = this.deref(p.key);
      if (k && isScalar(k) && this.scalarTag(k.value as string, k.type ?? "PLAIN", k.tag) === `${T}merge`) {
        const v = this.deref(p.value);
        if (v && isMap(v)) merged.push(...this.flatPairs(v));
        else if (v && isSeq(v)) {
          const subs = v.items.map((s) => {
            const m = this.deref(s);
            if (!m || !isMap(m)) {
              this.fail("while constructing a mapping: expected a mapping for merging");
            }
            return this.flatPairs(m);
          });
          for (const sub of subs.reverse()) merged.push(...sub);
        } else {
          this.fail("while constructing a mapping: expected a mapping or list of mappings for merging");
        }
      } else own.push([p.key, p.value]);
    }
    return [...merged, ...own];
  }

  private mapping(node: Node): PyDict {
    const dict: PyDict = new Map();
    for (const [rk, rv] of this.flatPairs(node)) {
      const kn = this.deref(rk);
      // A `=` key is a plain str (PyYAML re-tags value keys), elsewhere `=` has no constructor.
      const key = kn && isScalar(kn) && this.scalarTag(kn.value as string, kn.type ?? "PLAIN", kn.tag) === `${T}value` ? (kn.value as string) : this.construct(rk);
      if (Array.isArray(key) || key instanceof Map || key instanceof PySet) {
        this.fail("while constructing a mapping: found unhashable key");
      }
      dictSet(dict, key, this.construct(rv));
    }
    return dict;
  }

  private scalarTag(value: string, type: string, tag: string | undefined): string {
    // Plain scalars and the non-specific `!` tag are resolved implicitly (PyYAML parser sets
    // implicit=(True, False) for `!`); quoted/block scalars without a tag are str.
    if (tag === undefined || tag === "!") {
      return type === "PLAIN" || tag === "!" ? resolvePlainTag(value) : `${T}str`;
    }
    return tag;
  }

  private scalar(value: string, type: string, explicitTag: string | undefined): PyValue {
    const tag = this.scalarTag(value, type, explicitTag);
    switch (tag) {
      case `${T}str`:
        return value;
      case `${T}null`:
        return null;
      case `${T}bool`: {
        const b = BOOL_VALUES[value.toLowerCase()];
        if (b === undefined) this.fail(`invalid boolean ${JSON.stringify(value)}`);
        return b;
      }
      case `${T}int`:
        return constructInt(value, (m) => this.fail(m));
      case `${T}float`:
        return constructFloat(value, (m) => this.fail(m));
      case `${T}timestamp`:
        return constructTimestamp(value, (m) => this.fail(m));
      case `${T}binary`:
        return constructBinary(value, (m) => this.fail(m));
      default:
        return this.noConstructor(tag);
    }
  }
}

const BOOL_VALUES: Readonly<Record<string, boolean>> = {
  yes: true,
  no: false,
  true: true,
  false: false,
  on: true,
  off: false,
};

type Fail = (msg: string) => never;

/** Python `int(text, base)` after PyYAML removed underscores (whitespace tolerated as in int()). */
function parseBigInt(text: string, base: 2 | 8 | 10 | 16, fail: Fail): bigint {
  const t = text.trim();
  const digits = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]+$/ }[base];
  if (!digits.test(t)) fail(`invalid literal for int() with base ${base}: ${JSON.stringify(text)}`);
  const prefix = { 2: "0b", 8: "0o", 10: "", 16: "0x" }[base];
  return BigInt(prefix + t);
}

/** SafeConstructor.construct_yaml_int. */
function constructInt(raw: string, fail: Fail): bigint {
  let value = raw.replaceAll("_", "");
  if (value === "") fail("invalid int: empty value");
  let sign = 1n;
  if (value[0] === "-") sign = -1n;
  if (value[0] === "+" || value[0] === "-") value = value.slice(1);
  if (value === "0") return 0n;
  if (value.startsWith("0b")) return sign * parseBigInt(value.slice(2), 2, fail);
  if (value.startsWith("0x")) return sign * parseBigInt(value.slice(2), 16, fail);
  if (value[0] === "0") return sign * parseBigInt(value, 8, fail);
  if (value.includes(":")) {
    let total = 0n;
    let base = 1n;
    for (const part of value.split(":").reverse()) {
      total += parseBigInt(part, 10, fail) * base;
      base *= 60n;
    }
    return sign * total;
  }
  return sign * parseBigInt(value, 10, fail);
}

const PY_FLOAT = /^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)$/;

/** Python `float(text)` on an already lower-cased, underscore-free string. */
function pyFloat(text: string, fail: Fail): number {
  const t = text.trim();
  if (!PY_FLOAT.test(t)) fail(`could not convert string to float: ${JSON.stringify(text)}`);
  const body = t.replace(/^[+-]/, "");
  const neg = t.startsWith("-");
  if (body === "inf" || body === "infinity") return neg ? -Infinity : Infinity;
  if (body === "nan") return NaN;
  return Number(t);
}

/** SafeConstructor.construct_yaml_float. */
function constructFloat(raw: string, fail: Fail): number {
  let value = raw.replaceAll("_", "").toLowerCase();
  if (value === "") fail("invalid float: empty value");
  let sign = 1;
  if (value[0] === "-") sign = -1;
  if (value[0] === "+" || value[0] === "-") value = value.slice(1);
  if (value === ".inf") return sign * Infinity;
  if (value === ".nan") return NaN;
  if (value.includes(":")) {
    let total = 0;
    let base = 1;
    for (const part of value.split(":").reverse()) {
      total += pyFloat(part, fail) * base;
      base *= 60;
    }
    return sign * total;
  }
  return sign * pyFloat(value, fail);
}

const TIMESTAMP =
  /^([0-9][0-9][0-9][0-9])-([0-9][0-9]?)-([0-9][0-9]?)(?:(?:[Tt]|[ \t]+)([0-9][0-9]?):([0-9][0-9]):([0-9][0-9])(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9][0-9]?)(?::([0-9][0-9]))?))?)?\n?$/;

const daysIn = (y: number, m: number) => (m === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31);

/** SafeConstructor.construct_yaml_timestamp, with datetime's range checks. */
function constructTimestamp(value: string, fail: Fail): PyDate | PyDateTime {
  const m = TIMESTAMP.exec(value);
  if (!m) return fail(`invalid timestamp ${JSON.stringify(value)}`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year < 1) fail(`year ${year} is out of range`);
  if (month < 1 || month > 12) fail("month must be in 1..12");
  if (day < 1 || day > daysIn(year, month)) fail("day is out of range for month");
  const date = new PyDate(year, month, day);
  if (!m[4]) return date;
  const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (hour > 23) fail("hour must be in 0..23");
  if (minute > 59) fail("minute must be in 0..59");
  if (second > 59) fail("second must be in 0..59");
  const micro = m[7] ? Number(m[7].slice(0, 6).padEnd(6, "0")) : 0;
  let tz: number | null = null;
  if (m[9]) {
    tz = Number(m[10]) * 60 + Number(m[11] ?? 0);
    if (m[9] === "-") tz = -tz;
    if (Math.abs(tz) >= 24 * 60) {
      fail("offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24).");
    }
  } else if (m[8]) tz = 0;
  return new PyDateTime(date, hour, minute, second, micro, tz);
}

function constructBinary(value: string, fail: Fail): PyBytes {
  // base64.decodebytes ignores characters outside the alphabet (binascii non-strict mode).
  const clean = value.replace(/[^A-Za-z0-9+/=]/g, "").replace(/=+.*$/, "");
  if (clean.length % 4 === 1) fail("failed to convert base64 data: Incorrect padding");
  try {
    const bin = atob(clean + "=".repeat((4 - (clean.length % 4)) % 4));
    return new PyBytes(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return fail("failed to convert base64 data");
  }
}

/** Python dict assignment: equal keys (1 == 1.0 == True) share one slot, which keeps its place. */
export function dictSet(d: PyDict, key: PyValue, value: PyValue): void {
  if (typeof key === "string" || key === null || d.has(key)) {
    d.set(key, value);
    return;
  }
  for (const existing of d.keys()) {
    if (pyKeyEquals(existing, key)) {
      d.set(existing, value);
      return;
    }
  }
  d.set(key, value);
}

function numericValue(v: PyValue): number | bigint | undefined {
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "bigint" || typeof v === "number") return v;
  return undefined;
}

function pyKeyEquals(a: PyValue, b: PyValue): boolean {
  const na = numericValue(a);
  const nb = numericValue(b);
  // biome-ignore lint/suspicious/noDoubleEquals: on purpose: a bigint and a number compared by value (1n == 1 is true, as the keys 1, 1.0 and True are one key in Python); both sides are number | bigint, so nothing else is coerced.
  if (na !== undefined && nb !== undefined) return na == nb;
  if (a instanceof PyDateTime && b instanceof PyDateTime) return JSON.stringify(a) === JSON.stringify(b);
  if (a instanceof PyDate && b instanceof PyDate) {
    return a.year === b.year && a.month === b.month && a.day === b.day;
  }
  if (a instanceof PyTuple && b instanceof PyTuple) {
    return a.items.length === b.items.length && a.items.every((x, i) => pyKeyEquals(x, b.items[i]!));
  }
  if (a instanceof PyBytes && b instanceof PyBytes) {
    return a.bytes.length === b.bytes.length && a.bytes.every((x, i) => x === b.bytes[i]);
  }
  return a === b;
}
