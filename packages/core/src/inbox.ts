import { randomBytes } from "node:crypto";
import { decodeFrame } from "./protocol/frame-codec";
import type { Frame } from "./protocol/frames";
import type { Subscription, Transport } from "./transport";

/** Receives the control frames (acks, requests, aborts) addressed to one party, by stream. */
export class Inbox {
  private readonly handlers = new Map<string, (frame: Frame) => void>();
  private subscription: Subscription | undefined;

  private constructor(readonly channel: string) {}

  /** Subscribes a fresh inbox channel named after `destination`. */
  static async open(transport: Transport, destination: string): Promise<Inbox> {
    const inbox = new Inbox(`${destination}.inbox.${randomBytes(6).toString("hex")}`);
    inbox.subscription = await transport.subscribe(inbox.channel, (bytes) => inbox.dispatch(bytes), { kind: "inbox" });
    return inbox;
  }

  private dispatch(bytes: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(bytes);
    } catch {
      return; // Not ours to answer: a stray message on an inbox is dropped.
    }
    this.handlers.get(frame.streamId)?.(frame);
  }

  /** Routes the frames of `streamId` to `handler` until the returned function is called. */
  register(streamId: string, handler: (frame: Frame) => void): () => void {
    this.handlers.set(streamId, handler);
    return () => this.handlers.delete(streamId);
  }

  async close(): Promise<void> {
    this.handlers.clear();
    await this.subscription?.close();
  }
}
