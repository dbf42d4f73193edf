import type { TransferStatus } from "@stream/core";
import { describe, expect, test } from "vitest";
import { Redactor } from "./broker-url";
import { createOutput } from "./output";

/** A status as core reports it; the CLI computes nothing of its own from it. */
function status(bytes: number, overrides: Partial<TransferStatus> = {}): TransferStatus {
  return {
    streamId: "s",
    direction: "send",
    name: "file",
    phase: "sending",
    bytesTransferred: bytes,
    sizeBytes: 100,
    chunksTransferred: 1,
    chunkCount: 1,
    bytesPerSecond: 5,
    etaSeconds: (100 - bytes) / 5,
    connection: "connected",
    ...overrides,
  };
}

describe("--json progress", () => {
  function jsonTransfer() {
    const lines: string[] = [];
    const stdout = { write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream;
    const output = createOutput({ json: true, redactor: new Redactor(), stdout });
    const transfer = output.transfer({ id: "s", label: "file", totalBytes: 100 });
    return { transfer, events: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
  }

  test("carries the connection state, and a change of it is an event of its own", () => {
    const { transfer, events } = jsonTransfer();
    transfer.update(status(10));
    transfer.update(status(10, { connection: "reconnecting" }));
    transfer.update(status(10, { connection: "reconnecting" }));
    transfer.update(status(10));
    expect(events().map((event) => [event.event, event.bytes, event.connection])).toEqual([
      ["progress", 10, "connected"],
      ["progress", 10, "reconnecting"],
      ["progress", 10, "connected"],
    ]);
  });

  test("carries core's rate, ETA and phase as they are", () => {
    const { transfer, events } = jsonTransfer();
    transfer.update(status(40, { bytesPerSecond: 1234, etaSeconds: 7.5 }));
    transfer.update(status(100, { phase: "completed", bytesPerSecond: 1500, etaSeconds: 0 }));
    expect(events()).toEqual([
      { event: "progress", id: "s", phase: "sending", bytes: 40, totalBytes: 100, bytesPerSecond: 1234, etaSeconds: 7.5, connection: "connected" },
      { event: "progress", id: "s", phase: "completed", bytes: 100, totalBytes: 100, bytesPerSecond: 1500, etaSeconds: 0, connection: "connected" },
    ]);
  });
});
