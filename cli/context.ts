/** What every command gets: the SDK client, made on first use from the resolved credentials. */
import { InvalidArgumentError } from "commander";
import { ParallelsClient } from "../proto/client";
import { resolveCredentials } from "./config";

export interface Context {
  client(): ParallelsClient;
}

export function newContext(): Context {
  let client: ParallelsClient | undefined;
  return {
    client() {
      if (!client) {
        const { url, token } = resolveCredentials();
        client = new ParallelsClient({ baseUrl: url, token });
      }
      return client;
    },
  };
}

/** Commander's collector of a repeatable option (`-P a=1 -P b=2`). */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** A whole number ≥ 1, for `--version` and `--limit`. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number of at least 1");
  return n;
}
