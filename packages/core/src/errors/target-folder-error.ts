import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.target-folder-error";
const symbol = Symbol.for(marker);

/** Options of {@link TargetFolderError}. */
export interface TargetFolderErrorOptions extends StreamErrorOptions {
  /** The folder as the application named it (`"./inbox"`). */
  readonly folder: string;
  /** The file system's error code, e.g. `"EACCES"`, `"ENOSPC"`, `"ENOTDIR"`. */
  readonly fsCode: string;
}

/**
 * `IncomingStream.saveTo` cannot write into its folder: it cannot be created or written
 * (`EACCES`, `EPERM`, `EROFS`), a file is in its way (`ENOTDIR`, `EEXIST`), or the disk is full
 * (`ENOSPC`, `EDQUOT`). Raised after the receiver's retries; the stream is refused and its sender
 * told why (Abort Rejected). `retryable` when the cause may clear by itself (a full disk).
 */
export class TargetFolderError extends StreamError {
  private readonly [symbol] = true;
  /** The folder as the application named it (`"./inbox"`). */
  readonly folder: string;
  /** The file system's error code, e.g. `"EACCES"`. */
  readonly fsCode: string;

  constructor(options: TargetFolderErrorOptions) {
    super("STREAM_TARGET_FOLDER", { retryable: false, ...options });
    this.name = "TargetFolderError";
    this.folder = options.folder;
    this.fsCode = options.fsCode;
  }

  /** Whether `error` is a {@link TargetFolderError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is TargetFolderError {
    return StreamError.hasMarker(error, marker);
  }
}
