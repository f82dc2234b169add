/**
 * The agent's way out through an HTTP(S) proxy: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (lower
 * case first, as curl and undici read them) → undici's `EnvHttpProxyAgent` as the process's global
 * dispatcher. Node's own fetch and WebSocket use that dispatcher, so every request of the agent —
 * the control plane, MLflow, NATS over `ws://`/`wss://` — goes through the proxy in a CONNECT
 * tunnel (TLS end to end, trusting Node's CAs plus `NODE_EXTRA_CA_CERTS`). Whatever the agent
 * starts (git, the steps' Python) inherits the same variables and follows them itself.
 *
 * undici's rules: `https:`/`wss:` go to `HTTPS_PROXY`, else `HTTP_PROXY`; `http:`/`ws:` to
 * `HTTP_PROXY` only; `NO_PROXY` lists hosts, `host:port`, `.domain` suffixes, IPs or `*` (no CIDR
 * ranges: such an entry is reported and has no effect). A proxy URL may hold `user:password`; it is
 * never logged (see {@link describeProxy}).
 */

export interface ProxySettings {
  /** Proxy of `https:`/`wss:` requests, or null (then `httpProxy`). */
  httpsProxy: string | null;
  /** Proxy of `http:`/`ws:` requests (and of `https:` without `httpsProxy`), or null. */
  httpProxy: string | null;
  /** Hosts reached directly, comma-separated, as given (trimmed). */
  noProxy: string;
}

export interface ProxyFromEnv {
  /** Null when neither proxy variable is set. */
  settings: ProxySettings | null;
  /** Invalid values, each naming its variable (the process must not start with them). */
  problems: string[];
  /** NO_PROXY entries undici cannot honour (CIDR ranges), for a warning. */
  ignoredNoProxy: string[];
}

/** `http://user:pass@host:3128/` → `http://***:***@host:3128`: what logs and errors may show. */
export function redactProxyUrl(raw: string): string {
  const withScheme = raw.includes("://") ? raw : `http://${raw}`;
  if (!URL.canParse(withScheme)) return "(not a URL)";
  const u = new URL(withScheme);
  const auth = u.username || u.password ? `${u.username ? "***" : ""}${u.password ? ":***" : ""}@` : "";
  return `${u.protocol}//${auth}${u.host}`;
}

/** The first variable of `names` set to a non-empty value in `env`. */
function firstSet(env: NodeJS.ProcessEnv, names: readonly string[]): { name: string; value: string } | null {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return null;
}

/** A proxy URL as undici takes it (`host:port` gets `http://`), or a problem naming the variable. */
function proxyUrl(name: string, value: string): { url: string } | { problem: string } {
  const url = value.includes("://") ? value : `http://${value}`;
  const shown = JSON.stringify(redactProxyUrl(value));
  if (!URL.canParse(url)) return { problem: `${name}: ${shown} is not a URL` };
  const u = new URL(url);
  if (!["http:", "https:"].includes(u.protocol)) return { problem: `${name}: expected an http:// or https:// proxy URL, got ${u.protocol}//` };
  if (!u.hostname) return { problem: `${name}: ${shown} has no host` };
  return { url };
}

/** Reads the proxy variables; validates them without ever echoing a password. */
export function proxyFromEnv(env: NodeJS.ProcessEnv): ProxyFromEnv {
  const problems: string[] = [];
  const read = (names: readonly string[]): string | null => {
    const found = firstSet(env, names);
    if (!found) return null;
    const r = proxyUrl(found.name, found.value);
    if ("problem" in r) {
      problems.push(r.problem);
      return null;
    }
    return r.url;
  };
  const httpsProxy = read(["https_proxy", "HTTPS_PROXY"]);
  const httpProxy = read(["http_proxy", "HTTP_PROXY"]);
  const entries = (firstSet(env, ["no_proxy", "NO_PROXY"])?.value ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const ignoredNoProxy = entries.filter((e) => e.includes("/"));
  const settings = httpsProxy || httpProxy ? { httpsProxy, httpProxy, noProxy: entries.join(",") } : null;
  return { settings: problems.length ? null : settings, problems, ignoredNoProxy };
}

/** The proxy as logs may show it: no credentials. */
export function describeProxy(s: ProxySettings): { https: string; http: string; noProxy: string } {
  const https = s.httpsProxy ?? s.httpProxy;
  return { https: https ? redactProxyUrl(https) : "direct", http: s.httpProxy ? redactProxyUrl(s.httpProxy) : "direct", noProxy: s.noProxy };
}

/**
 * Makes every fetch and WebSocket of this process use `s` (undici's global dispatcher, which Node's
 * built-in fetch and WebSocket share). undici is loaded only here: an agent without a proxy does
 * not pay for it.
 */
export async function installProxy(s: ProxySettings): Promise<void> {
  const { EnvHttpProxyAgent, setGlobalDispatcher } = await import("undici");
  // Explicit values: the environment is not read again (an empty string means "none").
  setGlobalDispatcher(new EnvHttpProxyAgent({ httpsProxy: s.httpsProxy ?? "", httpProxy: s.httpProxy ?? "", noProxy: s.noProxy }));
}
