import { TransportError } from "../errors/transport-error";
import { MAX_CHANNEL_CHARS, isChannelName } from "../protocol/frame-codec";

/**
 * Returns `channel` when it is a channel name (1 to {@link MAX_CHANNEL_CHARS} characters of
 * `[A-Za-z0-9._-]`, the one rule of docs/protocol.md), and throws otherwise. Adapters call it at
 * the top of `publish` and `subscribe`, before touching the network.
 *
 * @param adapterName the transport's `name`, for the `[stream] [<adapterName>]` prefix.
 * @throws TransportError, not retryable: the same name fails the same way every time.
 */
export function assertChannelName(channel: string, adapterName: string): string {
  if (isChannelName(channel)) return channel;
  throw new TransportError({
    message:
      `[stream] [${adapterName}] channel name ${JSON.stringify(channel)} is invalid: ` +
      `use 1 to ${MAX_CHANNEL_CHARS} characters of [A-Za-z0-9._-]`,
    retryable: false,
  });
}
