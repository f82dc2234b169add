/**
 * kube-apiserver's `apiserver_request_total` counter, parsed from its Prometheus text, so that
 * benchmarks can count the requests (writes above all) a run cost. The counters are the
 * apiserver's whole traffic (controllers and kwok included) and start again from zero when the
 * apiserver restarts: compare two scrapes of one apiserver lifetime.
 */

export interface ApiRequestCount {
  /** `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `APPLY`, `DELETE`, `DELETECOLLECTION`, … */
  verb: string;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  scope: string;
  component: string;
  /** HTTP status code as a string, e.g. `201`. */
  code: string;
  count: number;
}

/** The verbs that change state. */
export const WRITE_VERBS: readonly string[] = ["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"];

export interface ApiServerMetrics {
  /** The whole scrape, for anything else. */
  text: string;
  requests: ApiRequestCount[];
  /**
   * Sum of the counters matching every given field; `verbs` matches any of them (e.g.
   * `{ resource: "jobs", verbs: WRITE_VERBS }`).
   */
  count(filter?: Partial<Omit<ApiRequestCount, "count">> & { verbs?: readonly string[] }): number;
}

const LINE = /^apiserver_request_total\{([^}]*)\}\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parseApiServerMetrics(text: string): ApiServerMetrics {
  const requests: ApiRequestCount[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of m[1]!.matchAll(LABEL)) labels[k!] = v!;
    requests.push({
      verb: labels.verb ?? "",
      group: labels.group ?? "",
      version: labels.version ?? "",
      resource: labels.resource ?? "",
      subresource: labels.subresource ?? "",
      scope: labels.scope ?? "",
      component: labels.component ?? "",
      code: labels.code ?? "",
      count: Number(m[2]),
    });
  }
  return {
    text,
    requests,
    count(filter = {}) {
      const { verbs, ...fields } = filter;
      return requests.filter((r) => (!verbs || verbs.includes(r.verb)) && Object.entries(fields).every(([k, v]) => r[k as keyof ApiRequestCount] === v)).reduce((sum, r) => sum + r.count, 0);
    },
  };
}
