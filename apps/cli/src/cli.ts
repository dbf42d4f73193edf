#!/usr/bin/env node
import { main } from "./main";

// The first SIGINT / SIGTERM stops the command cleanly (a send is cancelled and its receiver
// told; a receiver closes and removes partial files); a second one exits at once.
const controller = new AbortController();
let signals = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  signals += 1;
  if (signals > 1) process.exit(130);
  controller.abort(new Error(`stopped by ${signal}`));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

const code = await main(process.argv.slice(2), { signal: controller.signal });
// Broker clients may hold sockets or timers open after close; the outcome is known, so leave.
// Writes to files and pipes are synchronous on POSIX, so nothing printed is lost.
process.exit(code);
