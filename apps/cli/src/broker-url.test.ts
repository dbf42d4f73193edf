import { describe, expect, it } from "vitest";
import { UsageError } from "./cli-errors";
import { BROKER_URL_FORMS, parseBrokerUrl, Redactor, redactUrls } from "./broker-url";

const noEnv = {};

describe("parseBrokerUrl", () => {
  it("maps each scheme to its broker with the broker's default port", () => {
    expect(parseBrokerUrl("amqp://rabbit", noEnv)).toMatchObject({ kind: "rabbitmq", hosts: [{ host: "rabbit", port: 5672 }], tls: false });
    expect(parseBrokerUrl("amqps://rabbit", noEnv)).toMatchObject({ kind: "rabbitmq", hosts: [{ port: 5671 }], tls: true });
    expect(parseBrokerUrl("stomp://amq", noEnv)).toMatchObject({ kind: "activemq", hosts: [{ port: 61613 }] });
    expect(parseBrokerUrl("stomp+ssl://amq", noEnv)).toMatchObject({ kind: "activemq", tls: true });
    expect(parseBrokerUrl("mqtt://mosq", noEnv)).toMatchObject({ kind: "mqtt", hosts: [{ port: 1883 }] });
    expect(parseBrokerUrl("mqtts://mosq", noEnv)).toMatchObject({ kind: "mqtt", hosts: [{ port: 8883 }], tls: true });
    expect(parseBrokerUrl("kafka://k1:9092,k2:9093,k3", noEnv)).toMatchObject({
      kind: "kafka",
      hosts: [
        { host: "k1", port: 9092 },
        { host: "k2", port: 9093 },
        { host: "k3", port: 9092 },
      ],
    });
  });

  it("reads the vhost of an AMQP URL and IPv6 hosts", () => {
    expect(parseBrokerUrl("amqp://[::1]:5673/%2Fprod", noEnv)).toMatchObject({ hosts: [{ host: "::1", port: 5673 }], path: "/%2Fprod" });
  });

  it("takes credentials from the URL, percent-decoded, ahead of the environment", () => {
    const target = parseBrokerUrl("amqp://al%40ice:p%3Ass@h", { STREAM_BROKER_USER: "env-user", STREAM_BROKER_PASSWORD: "env-pass" });
    expect(target).toMatchObject({ username: "al@ice", password: "p:ss" });
  });

  it("fills missing credentials from STREAM_BROKER_USER / STREAM_BROKER_PASSWORD", () => {
    expect(parseBrokerUrl("mqtt://h", { STREAM_BROKER_USER: "u", STREAM_BROKER_PASSWORD: "pw-from-env" })).toMatchObject({
      username: "u",
      password: "pw-from-env",
    });
    expect(parseBrokerUrl("mqtt://urluser@h", { STREAM_BROKER_PASSWORD: "pw-from-env" })).toMatchObject({ username: "urluser", password: "pw-from-env" });
  });

  it("never shows credentials in its display form", () => {
    const target = parseBrokerUrl("amqp://admin:hunter22@h:5672/vh", noEnv);
    expect(target.display).toBe("amqp://***@h:5672/vh");
    expect(target.secrets).toContain("hunter22");
  });

  it.each([
    ["http://h", /scheme "http"/],
    ["not a url", /not a URL/],
    ["mqtt://a,b", /only kafka:\/\/ takes a list/],
    ["mqtt://h/some/path", /only amqp:\/\/ URLs take one/],
    ["stomp://h?x=1", /does not take/],
    ["kafka://h?mechanism=gssapi", /SASL mechanism/],
    ["amqp://h:99999", /outside 1-65535/],
  ])("rejects %s as a usage error", (url, message) => {
    expect(() => parseBrokerUrl(url, noEnv)).toThrow(UsageError);
    expect(() => parseBrokerUrl(url, noEnv)).toThrow(message);
  });

  it("does not echo the password of a URL it rejects", () => {
    for (const url of ["http://user:topsecret@h", "mqtt://user:topsecret@a,b", "amqp://user:topsecret@h:0"]) {
      try {
        parseBrokerUrl(url, noEnv);
        expect.unreachable();
      } catch (error) {
        expect(String((error as Error).message)).not.toContain("topsecret");
        expect(String((error as Error).message)).not.toContain("user:");
      }
    }
  });
});

describe("redaction", () => {
  it("masks the user-info of any URL in free text", () => {
    expect(redactUrls("failed: amqp://bob:pw@host:5672/ and mqtts://x@y")).toBe("failed: amqp://***@host:5672/ and mqtts://***@y");
  });

  it.each(BROKER_URL_FORMS.map((form) => [form.split(":")[0], form]))("prints the %s URL form's [user:pass@] placeholder as written", (_scheme, form) => {
    expect(new Redactor().redact(form)).toBe(form);
    expect(form).toMatch(/^[a-z+]+:\/\/\[user:pass@\]host/);
  });

  it("still masks real credentials beside a URL form", () => {
    expect(redactUrls("amqp://[user:pass@]host, tried amqp://bob:pw@h")).toBe("amqp://[user:pass@]host, tried amqp://***@h");
  });

  it("masks known secrets wherever they appear, in any given form", () => {
    const redactor = new Redactor();
    redactor.add(parseBrokerUrl("amqp://bob:s%2Fcret!@h", noEnv).secrets);
    expect(redactor.redact('login "bob" with s/cret! failed (s%2Fcret!)')).toBe('login "bob" with *** failed (***)');
  });

  it("leaves very short secrets alone rather than garble every message", () => {
    const redactor = new Redactor();
    redactor.add(["a"]);
    expect(redactor.redact("a stream")).toBe("a stream");
  });
});
