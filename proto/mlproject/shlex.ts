// shlex.quote exactly (MLflow quotes every parameter value with it on POSIX).

const UNSAFE = /[^A-Za-z0-9_@%+=:,./-]/; // Python: re.search(r'[^\w@%+=:,./-]', s, re.ASCII)

export function shlexQuote(s: string): string {
  if (s === "") return "''";
  if (!UNSAFE.test(s)) return s;
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}
