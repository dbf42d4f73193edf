import { describe, expect, test } from "vitest";
import { Redactor } from "./broker-url";
import { createOutput } from "./output";

describe("--json progress", () => {
  test("carries the connection state, and a change of it is an event of its own", () => {
    const lines: string[] = [];
    const stdout = { write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream;
    const output = createOutput({ json: true, redactor: new Redactor(), stdout });
    const transfer = output.transfer({ id: "s", label: "file", totalBytes: 100 });
    transfer.update(10, "connected");
    transfer.update(10, "reconnecting");
    transfer.update(10, "reconnecting");
    transfer.update(10, "connected");
    const events = lines.map((line) => JSON.parse(line) as { event: string; bytes: number; connection: string });
    expect(events.map((event) => [event.event, event.bytes, event.connection])).toEqual([
      ["progress", 10, "connected"],
      ["progress", 10, "reconnecting"],
      ["progress", 10, "connected"],
    ]);
  });
});
