import { describe, expect, test, vi } from "vitest";
import { Lazy } from "./lazy";

describe("Lazy", () => {
  test("makes the value once, on first use, and shares it", async () => {
    const create = vi.fn(async () => ({}));
    const lazy = new Lazy(create);
    expect(lazy.peek()).toBeUndefined();
    expect(create).not.toHaveBeenCalled();
    const [a, b] = await Promise.all([lazy.get(), lazy.get()]);
    expect(a).toBe(b);
    expect(await lazy.peek()).toBe(a);
    expect(create).toHaveBeenCalledTimes(1);
  });

  test("forgets a failed attempt: the next call tries again", async () => {
    const create = vi.fn().mockRejectedValueOnce(new Error("refused")).mockResolvedValueOnce("client");
    const lazy = new Lazy<string>(create);
    await expect(lazy.get()).rejects.toThrow("refused");
    expect(lazy.peek()).toBeUndefined();
    await expect(lazy.get()).resolves.toBe("client");
    expect(create).toHaveBeenCalledTimes(2);
  });
});
