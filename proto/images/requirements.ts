/**
 * @module
 * pip requirement lines in the one spelling an image is built and tagged from. Two environments
 * whose dependencies pip (and MLflow's virtualenv env manager, which installs each list with one
 * `pip install -r`) treats as the same set get the same lines: the order of the list, the case
 * and separators of project names (PEP 503: `Scikit_Learn` = `scikit-learn`), the order of
 * extras and of version clauses, and whitespace do not matter. A different pinned version, extra
 * or marker is a different line. Runtime-free and pure.
 *
 * What a line may be (pip's requirements file format): a requirement (`name[extras] specifiers ;
 * marker`, or `name @ url`), a URL or a local path, or an option (`-r file`, `-c file`,
 * `--index-url …`, `-e path`). Options keep their words; a line's per-requirement options
 * (`--hash=…`) are sorted.
 */

/** PEP 503 normalized project name. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

const NAME = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$/s;

/** One requirement line (no comment, no continuation) in its canonical spelling. */
export function canonicalRequirement(line: string): string {
  const text = line.trim().replace(/\s+/g, " ");
  if (text === "") return "";
  if (text.startsWith("-")) return canonicalOption(text);
  // A URL, a path or an archive: pip installs what it names; nothing to normalize but spaces.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) || /^[./~]/.test(text) || !NAME.test(text)) return text;
  // Per-requirement options come after the requirement: `pkg==1.0 --hash=sha256:…`.
  const optionAt = text.search(/\s--?[a-z]/i);
  const requirement = optionAt >= 0 ? text.slice(0, optionAt) : text;
  const options =
    optionAt >= 0
      ? text
          .slice(optionAt)
          .trim()
          .split(/\s+(?=-)/)
          .map((o) => o.replace(/\s+/g, " "))
          .sort()
      : [];
  const m = NAME.exec(requirement.trim())!;
  const name = normalizeName(m[1]!);
  const extras = m[2]
    ? `[${m[2]
        .slice(1, -1)
        .split(",")
        .map((e) => normalizeName(e.trim()))
        .filter(Boolean)
        .sort()
        .join(",")}]`
    : "";
  let rest = (m[3] ?? "").trim();
  let marker = "";
  if (rest.startsWith("@")) {
    // `name @ url ; marker`: the marker needs a space before `;` (PEP 508), so split on " ;".
    const semi = rest.search(/\s;/);
    const url = (semi >= 0 ? rest.slice(1, semi) : rest.slice(1)).trim();
    if (semi >= 0) marker = canonicalMarker(rest.slice(semi + 2));
    return [`${name}${extras} @ ${url}${marker ? ` ; ${marker}` : ""}`, ...options].join(" ");
  }
  const semi = rest.indexOf(";");
  if (semi >= 0) {
    marker = canonicalMarker(rest.slice(semi + 1));
    rest = rest.slice(0, semi);
  }
  // `(>=1.0, <2)` is the old parenthesized form of the same clauses.
  const spec = rest.trim().replace(/^\((.*)\)$/s, "$1");
  const clauses = spec
    .split(",")
    .map((c) => c.replace(/\s+/g, ""))
    .filter(Boolean)
    .sort();
  return [`${name}${extras}${clauses.join(",")}${marker ? `; ${marker}` : ""}`, ...options].join(" ");
}

/** Markers: one space around operators and words, quotes as written. */
function canonicalMarker(marker: string): string {
  return marker
    .trim()
    .replace(/\s*(===|==|!=|<=|>=|~=|<|>)\s*/g, " $1 ")
    .replace(/\s+/g, " ")
    .trim();
}

/** Option lines: `-r  file` and `--requirement=file` as `-r file`; the rest with single spaces. */
function canonicalOption(text: string): string {
  const m = /^(-[rce]|--requirement|--constraint|--editable)(?:\s*=\s*|\s+|(?<=^-[rce]))(.+)$/.exec(text);
  if (m) {
    const flag = { "--requirement": "-r", "--constraint": "-c", "--editable": "-e" }[m[1]!] ?? m[1]!;
    return `${flag} ${m[2]!.trim()}`;
  }
  // `--index-url https://…` and `--index-url=https://…` are one option.
  return text.replace(/^(--[a-z][a-z-]*)\s*(?:=\s*|\s)(?=\S)/, "$1=");
}

/**
 * The lines of a requirements file as pip reads them: continuation lines (`\` at the end) joined,
 * comments (`#` at the start or after whitespace) and blank lines dropped.
 */
export function requirementLines(text: string): string[] {
  const joined = text.replace(/\r\n?/g, "\n").replace(/\\\n/g, "");
  return joined
    .split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
}

/** A list of requirement lines in canonical form: each line canonical, duplicates dropped, sorted. */
export function canonicalRequirements(lines: readonly string[]): string[] {
  return [...new Set(lines.map(canonicalRequirement).filter(Boolean))].sort();
}

/** The file a `-r`/`-c` line names, or null. */
export function referencedFile(canonicalLine: string): { kind: "requirements" | "constraints"; path: string } | null {
  const m = /^-([rc]) (.+)$/.exec(canonicalLine);
  if (!m) return null;
  return { kind: m[1] === "r" ? "requirements" : "constraints", path: m[2]! };
}

/**
 * Whether a line installs something from the project's own folder (`.`, `./pkg`, `-e .`,
 * `file:…`): the environment then depends on the project's files, not only on its env files.
 */
export function namesLocalPath(canonicalLine: string): boolean {
  const target = canonicalLine.startsWith("-e ") ? canonicalLine.slice(3) : canonicalLine;
  if (/^(\.|\/|~|file:)/.test(target)) return true;
  return / @ file:/.test(target);
}
