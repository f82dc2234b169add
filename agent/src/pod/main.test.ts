import { afterEach, describe, expect, it, vi } from "vitest";
import { podMain } from "./main";

describe("the work pod's programs and a proxy", () => {
  afterEach(() => vi.restoreAllMocks());

  it("refuse a bad proxy variable before anything else, naming it and not its password", async () => {
    const said: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((line) => {
      said.push(String(line));
      return true;
    });
    expect(await podMain(["fetch"], { HTTPS_PROXY: "socks5://u:hunter2@proxy.example.test:1080" })).toBe(1);
    expect(said.join("")).toBe("parallels-agent pod: fetch failed: HTTPS_PROXY: expected an http:// or https:// proxy URL, got socks5://\n");
  });
});
