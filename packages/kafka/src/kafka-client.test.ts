import { TransportError } from "@stream/core";
import { expect, test } from "vitest";
import { importLibrary } from "./kafka-client";

test("a client library that is not installed is a TransportError saying what to install", async () => {
  const missing = Object.assign(new Error("Cannot find package 'kafkajs'"), { code: "ERR_MODULE_NOT_FOUND" });
  const error = await importLibrary(() => Promise.reject(missing), "kafkajs").catch((caught: unknown) => caught);
  expect(TransportError.isInstance(error) && !error.retryable).toBe(true);
  expect((error as Error).message).toMatch(/^\[stream\] \[kafka\] kafkajs is not installed; .*npm install kafkajs/);
  expect((error as Error).cause).toBe(missing);
  const broken = new SyntaxError("not a module problem");
  await expect(importLibrary(() => Promise.reject(broken), "kafkajs")).rejects.toBe(broken);
});
