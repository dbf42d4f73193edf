/**
 * Test helpers: an in-memory transport and a fault-injecting wrapper. For unit tests of core and
 * for the conformance suite; never a stand-in for a real broker in a test that claims one works.
 *
 * @packageDocumentation
 */
export { createMemoryTransport, MemoryBroker, type MemoryTransport, type MemoryTransportOptions } from "./memory-transport";
export { withFaults, type FaultOptions } from "./fault-injecting-transport";
