import type { ChannelKind } from "../transport";
import { assertChannelName } from "./channel-name";

/** Where each kind of channel goes on the broker, for {@link channelMap}. */
export interface ChannelTargets<T> {
  /** A `"stream"` channel's destination: durable, competing receivers (a queue, a topic). */
  readonly stream: (channel: string) => T;
  /** An `"inbox"` channel's: every subscriber gets every frame. */
  readonly inbox: (channel: string) => T;
}

/**
 * An adapter's mapping from a channel and its kind to what its broker calls it, with the
 * channel-name rule checked first ({@link assertChannelName}), so `publish` and `subscribe` share
 * one place that says both.
 *
 * @example
 * const destinationOf = channelMap("activemq", { stream: (c) => `/queue/${c}`, inbox: (c) => `/topic/${c}` });
 * destinationOf("files", "stream"); // "/queue/files"
 * destinationOf("a b", "stream"); // throws a TransportError, not retryable
 */
export function channelMap<T>(adapterName: string, targets: ChannelTargets<T>): (channel: string, kind: ChannelKind) => T {
  return (channel, kind) => {
    assertChannelName(channel, adapterName);
    return kind === "inbox" ? targets.inbox(channel) : targets.stream(channel);
  };
}
