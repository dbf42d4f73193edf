export { StreamError, type StreamErrorOptions } from "./stream-error";
export { ProtocolError } from "./protocol-error";
export { IntegrityError } from "./integrity-error";
export { StreamAbortedError } from "./stream-aborted-error";
export { StreamRefusedError } from "./stream-refused-error";
export { StreamTimeoutError } from "./stream-timeout-error";
export { TransportError } from "./transport-error";
export { UnsafePathError } from "./unsafe-path-error";
export { TargetFolderError, type TargetFolderErrorOptions } from "./target-folder-error";
