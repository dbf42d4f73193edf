import { describe, expect, it } from "vitest";
import { parseEvents, run } from "./cli-process";

describe("stream demo (built binary, no broker)", () => {
  it("streams 8 MiB through the in-process transport and reports four equal SHA-256 values", async () => {
    const result = await run(["demo", "--size", "8MiB", "--json"]);
    expect(result.code).toBe(0);
    const done = parseEvents(result.stdout).find((event) => event.event === "done") as {
      bytes: number;
      match: boolean;
      sha256: Record<string, string>;
      megabytesPerSecond: number;
      peakRssBytes: number;
    };
    expect(done).toMatchObject({ bytes: 8 * 1024 * 1024, match: true });
    expect(Object.keys(done.sha256).sort()).toEqual(["received", "sent", "source", "written"]);
    expect(new Set(Object.values(done.sha256)).size).toBe(1);
    expect(done.sha256.source).toMatch(/^[0-9a-f]{64}$/);
    expect(done.megabytesPerSecond).toBeGreaterThan(0);
    expect(done.peakRssBytes).toBeGreaterThan(0);
  });
});
