import { describe, expect, it } from "vitest";
import { parseBenchOptions, parseBrokerList } from "./bench-options";
import { BROKERS, chunkSizesFor } from "./brokers";
import { GiB, KiB, MiB } from "./sizes";

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseBenchOptions(argv, env, "/app");

describe("parseBenchOptions", () => {
  it("runs the full matrix by default: every transport, 1 GiB, 2 rounds, the flatness row", () => {
    const options = parse([]);
    expect(options).toMatchObject({ quick: false, sizeBytes: GiB, rounds: 2, chunks: undefined, outDir: "/app/results", brokersNamed: false, windowChunks: 16, streamWindowChunks: undefined });
    expect(options.brokers).toEqual(["memory", "activemq", "rabbitmq", "mqtt", "kafka", "kafkajs"]);
    expect(options.flatness).toEqual({ broker: "rabbitmq", sizeBytes: 4 * GiB });
  });

  it("--quick is 16 MiB, 256 KiB chunks, one round, no flatness row", () => {
    expect(parse(["--quick"])).toMatchObject({ quick: true, sizeBytes: 16 * MiB, chunks: [256 * KiB], rounds: 1, flatness: undefined });
  });

  it("--e2e encrypts @stream's transfers; off by default", () => {
    expect(parse([]).e2e).toBe(false);
    expect(parse(["--e2e"]).e2e).toBe(true);
  });

  it("--stream-window sets @stream's window alone; --window sets both", () => {
    expect(parse(["--window", "32"])).toMatchObject({ windowChunks: 32, streamWindowChunks: undefined });
    expect(parse(["--stream-window", "64"])).toMatchObject({ windowChunks: 16, streamWindowChunks: 64 });
  });

  it("--from renders into the JSON's folder unless --out says otherwise", () => {
    expect(parse(["--from", "/r/latest/results.json"])).toMatchObject({ from: "/r/latest/results.json", outDir: "/r/latest" });
    expect(parse(["--from", "/r/results.json", "--out", "/o"]).outDir).toBe("/o");
  });

  it("takes brokers, chunks, size, rounds and out", () => {
    const options = parse(["--brokers", "mqtt,rabbitmq", "--chunks", "64KiB,max", "--size", "2GiB", "--rounds", "3", "--out", "/tmp/x"]);
    expect(options).toMatchObject({ brokers: ["rabbitmq", "mqtt"], brokersNamed: true, chunks: [64 * KiB, "max"], sizeBytes: 2 * GiB, rounds: 3, outDir: "/tmp/x" });
  });

  it("reads BROKERS from the environment and adds the in-memory transport", () => {
    expect(parse([], { BROKERS: "kafka" }).brokers).toEqual(["memory", "kafka", "kafkajs"]); // both clients of the broker
    expect(parse(["--brokers", "kafka"], { BROKERS: "mqtt" }).brokers).toEqual(["kafka"]);
  });

  it("drops the flatness row when its broker is not benched or the file is already as large", () => {
    expect(parse(["--brokers", "mqtt"]).flatness).toBeUndefined();
    expect(parse(["--size", "4GiB"]).flatness).toBeUndefined();
    expect(parse(["--no-flatness"]).flatness).toBeUndefined();
  });

  it("runs fan-in (100 × 8 MiB) and failover (128 MiB) by default; --quick a small fan-in and no failover", () => {
    expect(parse([])).toMatchObject({ fanIn: { producers: 100, sizeBytes: 8 * MiB }, failover: { sizeBytes: 128 * MiB } });
    expect(parse(["--quick"])).toMatchObject({ fanIn: { producers: 10, sizeBytes: MiB }, failover: undefined });
    expect(parse(["--quick", "--failover"]).failover).toEqual({ sizeBytes: 128 * MiB });
  });

  it("takes --fan-in, --fan-in-size, --failover-size; --fan-in 0 and --no-failover turn them off", () => {
    expect(parse(["--fan-in", "20", "--fan-in-size", "2MiB", "--failover-size", "64MiB"])).toMatchObject({ fanIn: { producers: 20, sizeBytes: 2 * MiB }, failover: { sizeBytes: 64 * MiB } });
    expect(parse(["--fan-in", "0", "--no-failover"])).toMatchObject({ fanIn: undefined, failover: undefined });
  });

  it("runs resume at 256 MiB with core's window by default; --quick at 16 MiB with a 4 MiB window; --no-resume turns it off", () => {
    expect(parse([]).resume).toEqual({ sizeBytes: 256 * MiB, windowBytes: undefined });
    expect(parse(["--quick"]).resume).toEqual({ sizeBytes: 16 * MiB, windowBytes: 4 * MiB });
    expect(parse(["--resume-size", "64MiB", "--resume-window", "8MiB"]).resume).toEqual({ sizeBytes: 64 * MiB, windowBytes: 8 * MiB });
    expect(parse(["--no-resume"]).resume).toBeUndefined();
  });

  it.each([
    [["--resume-size", "4MiB"], /resume-size/],
    [["--resume-window", "64KiB"], /resume-window/],
    [["--fan-in", "-1"], /fan-in/],
    [["--fan-in", "2.5"], /fan-in/],
    [["--fan-in", "1001"], /fan-in/],
    [["--fan-in-size", "2GiB"], /fan-in-size/],
    [["--failover-size", "1MiB"], /failover-size/],
    [["--failover", "--no-failover"], /contradict/],
    [["--size", "11GiB"], /10GiB/],
    [["--rounds", "0"], /rounds/],
    [["--window", "0"], /window/],
    [["--stream-window", "x"], /stream-window/],
    [["--brokers", "redis"], /unknown broker "redis"/],
    [["--chunks", "lots"], /not a size/],
    [["--flatness-broker", "nats"], /flatness-broker/],
  ])("refuses %j", (argv, message) => {
    expect(() => parse(argv)).toThrow(message);
  });

  it("refuses an unknown flag", () => {
    expect(() => parse(["--fast"])).toThrow();
  });
});

describe("parseBrokerList", () => {
  it("keeps report order whatever the typed order", () => {
    expect(parseBrokerList("kafka, MQTT,memory")).toEqual(["memory", "mqtt", "kafka"]);
  });
});

describe("chunkSizesFor", () => {
  it("adds the broker's practical maximum to the defaults when larger", () => {
    expect(chunkSizesFor(BROKERS.kafka)).toEqual([64 * KiB, 256 * KiB, MiB, 8 * MiB]);
    expect(chunkSizesFor(BROKERS.mqtt)).toEqual([64 * KiB, 256 * KiB, MiB]);
  });

  it("resolves max and drops repeats", () => {
    expect(chunkSizesFor(BROKERS.rabbitmq, [MiB, "max", 8 * MiB, 64 * KiB])).toEqual([64 * KiB, MiB, 8 * MiB]);
  });
});
