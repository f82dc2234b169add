import { describe, expect, it } from "vitest";
import type { Executor } from "./executor/types";
import { createLogger } from "./log";
import { closeWithin } from "./main";

const logger = createLogger({ level: "silent" });
const executor = (close: () => Promise<void>): Executor => ({
  start: async () => {},
  cancel: async () => {},
  reconcile: async () => [],
  runEnded: async () => {},
  running: () => 0,
  close,
});

describe("stopping", () => {
  it("does not wait for an executor whose close never ends, nor fail on one whose close throws", async () => {
    let closed = false;
    await closeWithin(
      executor(() => new Promise(() => {})),
      20,
      logger,
    ); // resolves: bounded
    await closeWithin(
      executor(async () => {
        closed = true;
      }),
      20,
      logger,
    );
    await closeWithin(
      executor(async () => Promise.reject(new Error("boom"))),
      20,
      logger,
    );
    expect(closed).toBe(true);
  });
});
