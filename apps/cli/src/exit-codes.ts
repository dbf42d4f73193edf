/**
 * The exit codes of `stream`, one per thing a user can act on. Documented in the README; keep
 * the two in step. Codes are stable: scripts branch on them.
 */
export const ExitCode = {
  /** Done; for `send` and `receive --once`, the stream verified end to end. */
  Ok: 0,
  /** Anything not listed below (a bug, a disk error); the message says what. */
  Failure: 1,
  /** Bad arguments, an unknown option, a malformed broker URL, an input file that is not there, an `--out` that is not a folder it can write to. */
  Usage: 2,
  /** The broker could not be reached, or the connection was lost. */
  BrokerUnreachable: 3,
  /** The broker refused the credentials or the user's permissions. */
  AuthenticationFailed: 4,
  /** What arrived is not what was sent (a CRC-32, SHA-256 or size mismatch). Nothing was kept. */
  IntegrityMismatch: 5,
  /** The destination does not exist, or no receiver took the stream in time. */
  DestinationMissing: 6,
  /** The other side aborted the stream or went silent part-way. */
  StreamAborted: 7,
  /** The adapter package for the URL's scheme (or its broker client) is not installed. */
  AdapterMissing: 8,
  /** A received stream's name would leave the folder (`..`, absolute, a drive, a NUL) or has nothing usable; nothing was written. */
  UnsafeName: 9,
  /** `stream resume`: the file changed (size or modification time) since its send was interrupted; continuing would splice two files. Send it again. */
  SourceChanged: 10,
  /** A TLS certificate did not verify: the broker's is not signed by `--ca` (or a CA Node trusts), does not name the host, or expired; or the broker wanted a client certificate (`--cert`, `--cert-key`) it did not get or trust. */
  TlsFailed: 11,
  /** Stopped by SIGINT (128 + 2), for `send` and `demo`; `receive` exits 0 when stopped. */
  Interrupted: 130,
} as const;

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
