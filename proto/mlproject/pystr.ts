// Python's str() and repr(): parameter values reach the command line as `quote(str(value))`,
// so `1.0`, `1e-05`, `True`, `None` and dates must print exactly as CPython prints them.
import { PyBytes, PyDate, PyDateTime, PyTuple, type PyValue } from "./pytypes.js";

/** `repr(float)`: shortest round-trip digits (JS gives the same digits), Python's layout rules. */
export function floatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant = "", expStr = "0"] = Math.abs(x).toExponential().split("e");
  const digits = mant.replace(".", "");
  const exp = Number(expStr);
  const decpt = exp + 1; // value = 0.<digits> * 10^decpt
  // CPython float_repr_style 'short': exponent form iff decpt <= -4 or decpt > 16.
  if (decpt <= -4 || decpt > 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const e = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${digits[0]}${frac}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;
const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");

/** `repr(str)` as CPython's unicode_repr does it. */
export function strRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x7f) out += ch;
    else if (ch !== " " && NON_PRINTABLE.test(ch)) {
      out += cp <= 0xff ? `\\x${hex(cp, 2)}` : cp <= 0xffff ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += ch;
  }
  return out + quote;
}

function bytesRepr(b: Uint8Array): string {
  const hasSingle = b.includes(0x27);
  const quote = hasSingle && !b.includes(0x22) ? '"' : "'";
  let out = `b${quote}`;
  for (const c of b) {
    const ch = String.fromCharCode(c);
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c >= 0x7f) out += `\\x${hex(c, 2)}`;
    else out += ch;
  }
  return out + quote;
}

const pad = (n: number, w = 2) => n.toString().padStart(w, "0");

function dateStr(d: PyDate): string {
  return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;
}

function dateTimeStr(t: PyDateTime): string {
  let s = `${dateStr(t.date)} ${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;
  if (t.microsecond) s += `.${pad(t.microsecond, 6)}`;
  if (t.tzOffsetMinutes !== null) {
    const off = Math.abs(t.tzOffsetMinutes);
    s += `${t.tzOffsetMinutes < 0 ? "-" : "+"}${pad(Math.floor(off / 60))}:${pad(off % 60)}`;
  }
  return s;
}

/** Python `str(v)`: strings as is, dates in isoformat, everything else as repr. */
export function pyStr(v: PyValue): string {
  if (typeof v === "string") return v;
  if (v instanceof PyDateTime) return dateTimeStr(v);
  if (v instanceof PyDate) return dateStr(v);
  return pyRepr(v);
}

function timedeltaRepr(minutes: number): string {
  // timedelta normalises to days + non-negative seconds: -5h is days=-1, seconds=68400.
  const total = minutes * 60;
  const days = Math.floor(total / 86400);
  const seconds = total - days * 86400;
  const parts = [days ? `days=${days}` : "", seconds ? `seconds=${seconds}` : ""].filter(Boolean);
  return `datetime.timedelta(${parts.join(", ")})`;
}

function dateTimeRepr(t: PyDateTime): string {
  const f = [t.date.year, t.date.month, t.date.day, t.hour, t.minute];
  if (t.second || t.microsecond) f.push(t.second);
  if (t.microsecond) f.push(t.microsecond);
  let tz = "";
  if (t.tzOffsetMinutes === 0) tz = ", tzinfo=datetime.timezone.utc";
  else if (t.tzOffsetMinutes !== null) {
    tz = `, tzinfo=datetime.timezone(${timedeltaRepr(t.tzOffsetMinutes)})`;
  }
  return `datetime.datetime(${f.join(", ")}${tz})`;
}

/** Python `repr(v)` (what containers print for their items). */
export function pyRepr(v: PyValue): string {
  if (v === null) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") return strRepr(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return floatRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (v instanceof Map) {
    return `{${[...v].map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
  }
  if (v instanceof PyDateTime) return dateTimeRepr(v);
  if (v instanceof PyDate) return `datetime.date(${v.year}, ${v.month}, ${v.day})`;
  if (v instanceof PyBytes) return bytesRepr(v.bytes);
  if (v instanceof PyTuple) {
    const inner = v.items.map(pyRepr);
    return inner.length === 1 ? `(${inner[0]},)` : `(${inner.join(", ")})`;
  }
  // PySet (str(set) order is hash order in CPython; insertion order is the best stable choice)
  return v.items.length ? `{${v.items.map(pyRepr).join(", ")}}` : "set()";
}
