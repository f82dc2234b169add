/** The local admin token lives in `.dev.vars` (gitignored), which wrangler dev reads as secrets. */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./control-plane";

const FILE = join(ROOT, ".dev.vars");

/** Returns PARALLELS_ADMIN_TOKEN from .dev.vars, creating the file with a random token if needed. */
export function localAdminToken(): string {
  const text = existsSync(FILE) ? readFileSync(FILE, "utf8") : "";
  const found = /^PARALLELS_ADMIN_TOKEN\s*=\s*"?([^"\n]+)"?\s*$/m.exec(text);
  if (found) return found[1]!;
  const token = `pl_local_${randomBytes(24).toString("base64url")}`;
  writeFileSync(FILE, `${text}${text && !text.endsWith("\n") ? "\n" : ""}PARALLELS_ADMIN_TOKEN="${token}"\n`, { mode: 0o600 });
  return token;
}
