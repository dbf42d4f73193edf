import { describe, expect, test } from "vitest";
import { TransportError } from "../errors/transport-error";
import { channelMap } from "./channel-map";

describe("channelMap", () => {
  const destinationOf = channelMap("fake", { stream: (channel) => `/queue/${channel}`, inbox: (channel) => `/topic/${channel}` });

  test("maps each kind of channel to its own target", () => {
    expect(destinationOf("files", "stream")).toBe("/queue/files");
    expect(destinationOf("files.inbox.0a", "inbox")).toBe("/topic/files.inbox.0a");
  });

  test("checks the channel-name rule first", () => {
    let error: unknown;
    try {
      destinationOf("a/b", "stream");
    } catch (caught) {
      error = caught;
    }
    expect(TransportError.isInstance(error) && !error.retryable).toBe(true);
    expect((error as Error).message).toMatch(/^\[stream\] \[fake\] channel name "a\/b" is invalid/);
  });
});
