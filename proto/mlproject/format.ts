// Python `str.format(**kwargs)` for MLproject command templates, following CPython's
// Objects/stringlib/unicode_format.h: fields are rendered left to right, so the first failing
// field decides the error, as in MLflow. Only keyword arguments exist (MLflow passes **params),
// and every value is a (shell-quoted) str, so only str's __format__ is needed.
import { strRepr } from "./pystr.js";

/** A str.format failure, with the Python exception type and CPython's message. */
export class FormatFailure {
  constructor(
    readonly pythonType: "KeyError" | "ValueError" | "IndexError" | "AttributeError" | "TypeError",
    readonly pythonMessage: string,
    /** The replacement field text (between the braces) that failed, when there is one. */
    readonly field: string | undefined,
    /** For KeyError: the missing name. */
    readonly key?: string,
  ) {}
}

const isDigits = (s: string) => /^\p{Nd}+$/u.test(s);

function toInt(s: string): number {
  // Py_UNICODE_TODECIMAL: any Unicode decimal digit counts; map each to its value.
  let n = 0;
  for (const ch of s) {
    const d = /[0-9]/.test(ch) ? Number(ch) : decimalValue(ch);
    n = n * 10 + d;
  }
  return n;
}

function decimalValue(ch: string): number {
  // Unicode Nd digits come in contiguous blocks made of whole runs of ten (0..9).
  const cp = ch.codePointAt(0) ?? 0;
  let start = cp;
  while (start > 0 && /\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

interface Ctx {
  kwargs: ReadonlyMap<string, string>;
  autoNumber: number;
}

export function pyFormat(template: string, kwargs: ReadonlyMap<string, string>): string {
  return buildString([...template], { kwargs, autoNumber: 0 }, 2);
}

function buildString(s: string[], ctx: Ctx, depth: number): string {
  if (depth <= 0) throw new FormatFailure("ValueError", "Max string recursion exceeded", undefined);
  let out = "";
  let i = 0;
  while (i < s.length) {
    // Literal text up to the next brace.
    let c = "";
    const start = i;
    let markup = false;
    while (i < s.length) {
      c = s[i++]!;
      if (c === "{" || c === "}") {
        markup = true;
        break;
      }
    }
    const atEnd = i >= s.length;
    let len = i - start;
    if (markup && c === "}" && (atEnd || s[i] !== "}")) {
      throw new FormatFailure("ValueError", "Single '}' encountered in format string", undefined);
    }
    if (markup && atEnd && c === "{") {
      throw new FormatFailure("ValueError", "Single '{' encountered in format string", undefined);
    }
    if (markup) {
      if (s[i] === c) {
        i++; // escaped {{ or }}: keep one brace as literal text
        markup = false;
      } else len--;
    }
    out += s.slice(start, start + len).join("");
    if (!markup) continue;
    const field = parseField(s, i);
    i = field.next;
    out += renderField(field, ctx, depth);
  }
  return out;
}

interface Field {
  name: string[];
  conversion: string | null;
  spec: string[];
  specNeedsExpanding: boolean;
  raw: string;
  next: number;
}

function parseField(s: string[], start: number): Field {
  let i = start;
  let c = "";
  while (i < s.length) {
    c = s[i++]!;
    if (c === "{") throw new FormatFailure("ValueError", "unexpected '{' in field name", undefined);
    if (c === "[") {
      while (i < s.length && s[i] !== "]") i++;
      c = "";
      continue;
    }
    if (c === "}" || c === ":" || c === "!") break;
    c = "";
  }
  const name = s.slice(start, c ? i - 1 : i);
  let conversion: string | null = null;
  if (c === "!" || c === ":") {
    if (c === "!") {
      if (i >= s.length) {
        throw new FormatFailure("ValueError", "end of string while looking for conversion specifier", undefined);
      }
      conversion = s[i++]!;
      if (i < s.length) {
        const d = s[i++]!;
        if (d === "}") {
          return { name, conversion, spec: [], specNeedsExpanding: false, raw: s.slice(start, i - 1).join(""), next: i };
        }
        if (d !== ":") {
          throw new FormatFailure("ValueError", "expected ':' after conversion specifier", undefined);
        }
      }
    }
    const specStart = i;
    let count = 1;
    let expanding = false;
    while (i < s.length) {
      const d = s[i++]!;
      if (d === "{") {
        expanding = true;
        count++;
      } else if (d === "}") {
        count--;
        if (count === 0) {
          return {
            name,
            conversion,
            spec: s.slice(specStart, i - 1),
            specNeedsExpanding: expanding,
            raw: s.slice(start, i - 1).join(""),
            next: i,
          };
        }
      }
    }
    throw new FormatFailure("ValueError", "unmatched '{' in format spec", undefined);
  }
  if (c !== "}") throw new FormatFailure("ValueError", "expected '}' before end of string", undefined);
  return { name, conversion, spec: [], specNeedsExpanding: false, raw: name.join(""), next: i };
}

function renderField(f: Field, ctx: Ctx, depth: number): string {
  let value = lookup(f, ctx);
  if (f.conversion !== null) value = convert(value, f.conversion, f.raw);
  let spec = f.spec.join("");
  if (f.specNeedsExpanding) spec = buildString(f.spec, ctx, depth - 1);
  return formatStr(value, spec, f.raw);
}

function lookup(f: Field, ctx: Ctx): string {
  const name = f.name;
  let j = 0;
  while (j < name.length && name[j] !== "." && name[j] !== "[") j++;
  const first = name.slice(0, j).join("");
  let index: number;
  if (first === "") index = ctx.autoNumber++;
  else if (isDigits(first)) index = toInt(first);
  else {
    const v = ctx.kwargs.get(first);
    if (v === undefined) throw new FormatFailure("KeyError", strRepr(first), f.raw, first);
    return applyRest(v, name, j, f.raw);
  }
  throw new FormatFailure("IndexError", `Replacement index ${index} out of range for positional args tuple`, f.raw);
}

function applyRest(value: string, name: string[], start: number, raw: string): string {
  let i = start;
  let v = value;
  while (i < name.length) {
    const c = name[i++];
    let part = "";
    if (c === ".") {
      while (i < name.length && name[i] !== "." && name[i] !== "[") part += name[i++];
      if (!part) throw new FormatFailure("ValueError", "Empty attribute in format string", raw);
      // Attributes of str are methods whose repr contains a memory address: never reproducible.
      throw new FormatFailure("AttributeError", `'str' object has no attribute ${strRepr(part)}`, raw);
    } else if (c === "[") {
      let closed = false;
      while (i < name.length) {
        if (name[i] === "]") {
          closed = true;
          i++;
          break;
        }
        part += name[i++];
      }
      if (!closed) throw new FormatFailure("ValueError", "Missing ']' in format string", raw);
      if (!part) throw new FormatFailure("ValueError", "Empty attribute in format string", raw);
      if (!isDigits(part)) {
        throw new FormatFailure("TypeError", "string indices must be integers, not 'str'", raw);
      }
      const chars = [...v];
      const idx = toInt(part);
      if (idx >= chars.length) throw new FormatFailure("IndexError", "string index out of range", raw);
      v = chars[idx]!;
    } else {
      throw new FormatFailure("ValueError", "Only '.' or '[' may follow ']' in format field specifier", raw);
    }
  }
  return v;
}

function convert(v: string, conversion: string, raw: string): string {
  if (conversion === "s") return v;
  if (conversion === "r") return strRepr(v);
  if (conversion === "a") {
    return strRepr(v).replace(/\P{ASCII}/gu, (ch) => {
      const cp = ch.codePointAt(0)!;
      if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, "0")}`;
      if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
      return `\\U${cp.toString(16).padStart(8, "0")}`;
    });
  }
  const cp = conversion.codePointAt(0)!;
  const shown = cp > 32 && cp < 127 ? conversion : `\\x${cp.toString(16)}`;
  throw new FormatFailure("ValueError", `Unknown conversion specifier ${shown}`, raw);
}

const ALIGN = new Set(["<", ">", "=", "^"]);

/** str.__format__(spec): CPython's parse_internal_render_format_spec + format_string_internal. */
function formatStr(value: string, specText: string, raw: string): string {
  if (specText === "") return value;
  const spec = [...specText];
  const fail = (msg: string) => new FormatFailure("ValueError", msg, raw);
  let i = 0;
  let fill = " ";
  let align = "<";
  let alignGiven = false;
  let fillGiven = false;
  if (spec.length >= 2 && ALIGN.has(spec[1]!)) {
    fill = spec[0]!;
    align = spec[1]!;
    fillGiven = alignGiven = true;
    i = 2;
  } else if (ALIGN.has(spec[0]!)) {
    align = spec[0]!;
    alignGiven = true;
    i = 1;
  }
  let sign = false;
  if (spec[i] === "+" || spec[i] === "-" || spec[i] === " ") {
    sign = true;
    i++;
  }
  let noNegZero = false;
  if (spec[i] === "z") {
    noNegZero = true;
    i++;
  }
  let alternate = false;
  if (spec[i] === "#") {
    alternate = true;
    i++;
  }
  if (!fillGiven && spec[i] === "0") {
    fill = "0";
    if (!alignGiven) align = "=";
    i++;
  }
  let widthText = "";
  while (i < spec.length && /[0-9]/.test(spec[i]!)) widthText += spec[i++];
  let grouping: string | null = null;
  if (spec[i] === ",") {
    grouping = ",";
    i++;
  }
  if (spec[i] === "_") {
    if (grouping) throw fail("Cannot specify both ',' and '_'.");
    grouping = "_";
    i++;
  }
  if (spec[i] === ",") throw fail("Cannot specify both ',' and '_'.");
  let precision: number | null = null;
  if (spec[i] === ".") {
    i++;
    let p = "";
    while (i < spec.length && /[0-9]/.test(spec[i]!)) p += spec[i++];
    if (!p) throw fail("Format specifier missing precision");
    precision = Number(p);
  }
  if (spec.length - i > 1) throw fail(`Invalid format specifier '${specText}' for object of type 'str'`);
  const type = i < spec.length ? spec[i]! : "s";
  if (grouping) throw fail(`Cannot specify '${grouping}' with '${type}'.`);
  if (type !== "s") {
    const cp = type.codePointAt(0)!;
    throw fail(cp > 32 && cp < 128 ? `Unknown format code '${type}' for object of type 'str'` : `Unknown format code '\\x${cp.toString(16)}' for object of type 'str'`);
  }
  if (sign) throw fail("Sign not allowed in string format specifier");
  if (noNegZero) throw fail("Negative zero coercion (z) not allowed in string format specifier");
  if (alternate) throw fail("Alternate form (#) not allowed in string format specifier");
  if (align === "=") throw fail("'=' alignment not allowed in string format specifier");
  let chars = [...value];
  if (precision !== null) chars = chars.slice(0, precision);
  const width = widthText ? Number(widthText) : 0;
  const padTotal = Math.max(0, width - chars.length);
  const body = chars.join("");
  if (align === ">") return fill.repeat(padTotal) + body;
  if (align === "^") {
    const left = Math.floor(padTotal / 2);
    return fill.repeat(left) + body + fill.repeat(padTotal - left);
  }
  return body + fill.repeat(padTotal);
}
