import { kafkaErrors } from "./kafka-errors";

/** Kafka's own limit on a topic name's length. */
export const MAX_TOPIC_NAME_CHARS = 249;

/**
 * The Kafka topic of a channel: `prefix + channel` with every character outside Kafka's
 * `[a-zA-Z0-9._-]` replaced by `_`. Channel names already fit (the transport refuses others with
 * core's `assertChannelName`); this guards prefixes. Names past Kafka's 249 characters are
 * refused rather than cut, since two channels must never share a topic.
 */
export function toTopicName(channel: string, prefix = ""): string {
  const topic = `${prefix}${channel}`.replace(/[^a-zA-Z0-9._-]/g, "_");
  if (topic.length === 0 || topic === "." || topic === "..") {
    throw kafkaErrors.error(`channel "${channel}" makes no valid topic name; use [a-zA-Z0-9._-]`, false);
  }
  if (topic.length > MAX_TOPIC_NAME_CHARS) {
    throw kafkaErrors.error(
      `topic "${topic.slice(0, 40)}..." is ${topic.length} characters; Kafka allows ${MAX_TOPIC_NAME_CHARS}: use a shorter destination or topicPrefix`,
      false,
    );
  }
  return topic;
}
