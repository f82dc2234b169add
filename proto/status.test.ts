import { describe, expect, it } from "vitest";
import { ACTIVE_NODE_STATUSES, isActiveNode, isAttemptOutcome, isTerminalNode, isTerminalRun, NODE_STATUSES, RUN_STATUSES, TERMINAL_NODE_STATUSES } from "./status";

describe("statuses", () => {
  it("puts every node status in exactly one of pending, active, terminal (the scheduler counts on it)", () => {
    for (const s of NODE_STATUSES) {
      const kinds = [s === "pending", isActiveNode(s), isTerminalNode(s)].filter(Boolean);
      expect(kinds, s).toHaveLength(1);
    }
    expect(ACTIVE_NODE_STATUSES.length + TERMINAL_NODE_STATUSES.length + 1).toBe(NODE_STATUSES.length);
  });

  it("ends a run only in succeeded, failed or cancelled (cancelling waits for the agents)", () => {
    expect(RUN_STATUSES.filter(isTerminalRun)).toEqual(["succeeded", "failed", "cancelled"]);
  });

  it("ends an attempt with the events succeeded, failed, cancelled — never skipped, which no agent reports", () => {
    expect(NODE_STATUSES.filter(isAttemptOutcome)).toEqual(["succeeded", "failed", "cancelled"]);
    expect(["accepted", "building", "built", "running", "progress"].some(isAttemptOutcome)).toBe(false);
  });

  it("answers false for strings that are no status (API answers are read as strings)", () => {
    for (const s of ["", "SUCCEEDED", "done", "succeeded "]) {
      expect([isTerminalRun(s), isTerminalNode(s), isActiveNode(s), isAttemptOutcome(s)]).toEqual([false, false, false, false]);
    }
  });
});
