/**
 * `@stream/conformance`: the suite every `@stream` transport adapter runs against its real broker
 * (and core against its in-memory transport), the transport contract on raw frames, an end-to-end
 * harness of two processes, a takeover test that kills a receiver process half way, and a TCP
 * proxy to drop connections for real.
 *
 * @packageDocumentation
 */
export { runConformanceSuite, type ConformanceGroup, type ConformanceOptions, type TestApi } from "./conformance-suite";
export {
  type ContractTestApi,
  type ContractTestContext,
  type InjectedClientHooks,
  runTransportContract,
  type TransportContractOptions,
  type TransportContractTest,
} from "./transport-contract";
export { runEndToEndTest, type EndToEndOptions, type EndToEndReport, type EndToEndSide } from "./end-to-end";
export { runFanInTest, type FanInOptions, type FanInReport } from "./fan-in";
export { runTakeoverTest, type TakeoverOptions, type TakeoverPolicy, type TakeoverReport } from "./takeover";
export { readTestCertificates, runTlsTests, type TestCertificates, type TlsConnection, type TlsTestOptions } from "./tls-tests";
export { createTcpProxy, type TcpProxy, type TcpProxyOptions } from "./tcp-proxy";
export { DEFAULT_FAULT_CASES, runFaultTests, type FaultCase, type FaultReport, type FaultTestOptions, type ResumeReport } from "./fault-harness";
export {
  type BrokerRestartTestOptions,
  createPrivateBroker,
  freePort,
  type PrivateBroker,
  type PrivateBrokerOptions,
  runBrokerRestartTest,
} from "./private-broker";
