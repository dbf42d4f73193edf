import { createMemoryTransport, MemoryBroker } from "@stream/core/testing";
import { describe, test } from "vitest";
import { runConformanceSuite } from "./conformance-suite";
import { runTransportContract } from "./transport-contract";

// Core's own run of the suite, on the in-memory transport. Each adapter runs the same suite
// against its real broker (packages/<broker>/test/conformance.test.ts).
const broker = new MemoryBroker();
runConformanceSuite({ describe, test, name: "memory", createTransport: () => createMemoryTransport({ broker }) });
// Again with chunks large enough that SHA-256 runs on the hashing thread.
runConformanceSuite({ describe, test, name: "memory-64k", chunkBytes: 64 * 1024, createTransport: () => createMemoryTransport({ broker }) });

// The transport contract on raw frames. No TCP port to cut (`reconnect`) and no client to inject.
runTransportContract({
  describe,
  test,
  name: "memory",
  createTransport: () => createMemoryTransport({ broker }),
  skip: { "channel-names": "the in-memory transport does not check channel names (it is a test double of core, not an adapter)" },
});
