/**
 * Debian's tinyproxy as a site's HTTP(S) proxy, on 127.0.0.1 of this machine: CONNECT only to the
 * ports it is told (as a corporate proxy allows 443 only), plain HTTP forwarding (`GET http://…`)
 * for clients that proxy `http://` that way (Python's requests), optional Basic auth, and every
 * request in its log (`LogLevel Connect`) for the test to read.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../local/ports";
import { launch, logTail, stopProcesses } from "../k8s/processes";

export interface TinyproxyOptions {
  /** Ports CONNECT may reach (tinyproxy refuses others with 403). */
  connectPorts: number[];
  /** Basic auth the proxy asks for (407 without it). */
  user?: string;
  password?: string;
  /** Its process name in the run dir and the prefix of its files there; default `tinyproxy` (another name: another proxy beside it). */
  name?: string;
}

export interface Tinyproxy {
  port: number;
  /** `http://[user:password@]127.0.0.1:<port>`. */
  url: string;
  logFile: string;
  /** The `host:port` of every CONNECT asked for, in order. */
  connects(): string[];
  /** The URL of every plain forwarded request (`GET http://…`), in order. */
  forwarded(): string[];
  stop(): Promise<void>;
}

export async function startTinyproxy(runDir: string, o: TinyproxyOptions): Promise<Tinyproxy> {
  const port = await freePort();
  const name = o.name ?? "tinyproxy";
  const logFile = join(runDir, `${name}-requests.log`);
  const conf = join(runDir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Timeout 600",
      `LogFile "${logFile}"`,
      "LogLevel Connect",
      "MaxClients 50",
      "Allow 127.0.0.1",
      "DisableViaHeader Yes",
      ...o.connectPorts.map((p) => `ConnectPort ${p}`),
      ...(o.user ? [`BasicAuth ${o.user} ${o.password ?? ""}`] : []),
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await launch(runDir, { name, prefix: [], binary: "tinyproxy", args: ["-d", "-c", conf] });
  const deadline = Date.now() + 10_000;
  while (!readLog(logFile).includes("Reloading config file finished")) {
    if (Date.now() > deadline) throw new Error(`tinyproxy did not start:\n${logTail(runDir, name)}\n${readLog(logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const auth = o.user ? `${encodeURIComponent(o.user)}:${encodeURIComponent(o.password ?? "")}@` : "";
  const requests = (method: string) => [...readLog(logFile).matchAll(new RegExp(`Request \\(file descriptor \\d+\\): ${method} (\\S+) HTTP`, "g"))].map((m) => m[1]!);
  return {
    port,
    url: `http://${auth}127.0.0.1:${port}`,
    logFile,
    connects: () => requests("CONNECT"),
    forwarded: () => requests("(?:GET|POST|PUT|PATCH|DELETE)"),
    stop: async () => void (await stopProcesses(runDir, [name])),
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
