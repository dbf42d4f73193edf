import { describe, expect, it } from "vitest";
import { ADAPTERS, adapterOptions, createBrokerTransport } from "./broker-transport";
import { parseBrokerUrl } from "./broker-url";
import { CliError } from "./cli-errors";
import { ExitCode } from "./exit-codes";

const notFound = (name: string) =>
  Object.assign(new Error(`Cannot find package '${name}' imported from /app/dist/cli.mjs`), { code: "ERR_MODULE_NOT_FOUND" });

describe("adapterOptions", () => {
  it("passes AMQP credentials, vhost and query in the URL amqplib reads", () => {
    const options = adapterOptions(parseBrokerUrl("amqp://h:5673/%2Fprod?heartbeat=10", { STREAM_BROKER_USER: "u@x", STREAM_BROKER_PASSWORD: "p w" }));
    expect(options.url).toBe("amqp://u%40x:p%20w@h:5673/%2Fprod?heartbeat=10");
  });

  it("gives STOMP login / passcode and a URL without them", () => {
    expect(adapterOptions(parseBrokerUrl("stomp://a:b@amq:61613", {}))).toMatchObject({ url: "stomp://amq:61613", login: "a", passcode: "b" });
    expect(adapterOptions(parseBrokerUrl("stomps://amq", {}))).toMatchObject({ url: "stomp+ssl://amq:61614" });
  });

  it("gives MQTT credentials as client options, not in the URL", () => {
    expect(adapterOptions(parseBrokerUrl("mqtts://a:b@m", {}))).toMatchObject({
      url: "mqtts://m:8883",
      clientOptions: { username: "a", password: "b" },
    });
  });

  it("gives Kafka its broker list, TLS and SASL", () => {
    const options = adapterOptions(parseBrokerUrl("kafka+ssl://a:b@k1:9093,[::1]:9094?mechanism=scram-sha-512", {}));
    expect(options).toMatchObject({
      brokers: ["k1:9093", "[::1]:9094"],
      tls: {},
      platformatic: { sasl: { mechanism: "SCRAM-SHA-512", username: "a", password: "b" } },
    });
    expect((adapterOptions(parseBrokerUrl("kafka://k", {})).platformatic as Record<string, unknown>).sasl).toBeUndefined();
  });

  it("gives every adapter the --ca / --cert files as core's tls option, and none to a plain scheme", () => {
    const tlsOptions = { ca: "CA", cert: "CERT", key: "KEY", verify: true };
    for (const url of ["amqps://h", "stomp+ssl://h", "mqtts://h", "kafka+ssl://h"]) {
      expect(adapterOptions({ ...parseBrokerUrl(url, {}), tlsOptions }).tls).toEqual(tlsOptions);
    }
    for (const url of ["amqp://h", "stomp://h", "mqtt://h", "kafka://h"]) expect(adapterOptions(parseBrokerUrl(url, {})).tls).toBeUndefined();
  });
});

describe("createBrokerTransport", () => {
  it("says which package to install when the adapter is missing", async () => {
    const target = parseBrokerUrl("kafka://k", {});
    const error = await createBrokerTransport(target, async () => {
      throw notFound("@stream/kafka");
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.AdapterMissing);
    expect((error as CliError).message).toContain("@stream/kafka");
    expect((error as CliError).hint).toContain("npm install @stream/kafka @platformatic/kafka");
  });

  it("names the broker client when that is what is missing", async () => {
    const error = await createBrokerTransport(parseBrokerUrl("amqp://h", {}), async () => {
      throw notFound("amqplib");
    }).catch((caught: unknown) => caught);
    expect((error as CliError).message).toContain("the amqplib package");
  });

  it("finds the factory whatever the adapter's capitalisation", async () => {
    const made: unknown[] = [];
    const transport = await createBrokerTransport(parseBrokerUrl("stomp://h", {}), async () => ({
      createActivemqTransport: (options: unknown) => {
        made.push(options);
        return { name: "fake" };
      },
    }));
    expect(transport).toEqual({ name: "fake" });
    expect(made).toHaveLength(1);
  });

  it("has an adapter for every broker", () => {
    expect(Object.keys(ADAPTERS).sort()).toEqual(["activemq", "kafka", "mqtt", "rabbitmq"]);
  });
});
