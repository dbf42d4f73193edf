import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { blockAction, parseReadmeBlocks, readReadmeBlocks } from "./readme-blocks";
import { REPO_ROOT, findReadmes } from "./readmes";

describe("parseReadmeBlocks", () => {
  test("reads the language, the words after it and the code", () => {
    const md = "# x\n\n```js file=receiver.mjs\nconsole.log(1);\n```\ntext\n```sh repo\nls\n```\n```ts excerpt=a/b.ts\nx\n```\n";
    const blocks = parseReadmeBlocks("R.md", md);
    expect(blocks.map((b) => [b.line, b.lang, b.file, b.repo, b.excerpt, b.code])).toEqual([
      [3, "js", "receiver.mjs", false, undefined, "console.log(1);\n"],
      [7, "sh", undefined, true, undefined, "ls\n"],
      [10, "ts", undefined, false, "a/b.ts", "x\n"],
    ]);
    expect(blocks.map(blockAction)).toEqual(["write", "run-sh", "excerpt"]);
  });

  test("refuses an unknown word, an unknown skip reason, an unclosed block and a language that cannot run", () => {
    expect(() => parseReadmeBlocks("R.md", "```js runme\n```\n")).toThrow(/R.md:1: unknown word "runme"/);
    expect(() => parseReadmeBlocks("R.md", "```js\nx\n")).toThrow(/never closed/);
    const [skipped] = parseReadmeBlocks("R.md", "```sh skip=later\n```\n");
    expect(() => blockAction(skipped!)).toThrow(/skip=later is not a known reason/);
    const [python] = parseReadmeBlocks("R.md", "```python\nprint(1)\n```\n");
    expect(() => blockAction(python!)).toThrow(/`python` block is neither run/);
  });
});

describe("the repository's READMEs", () => {
  const readmes = findReadmes();

  test("are found: the root, every package and app", () => {
    expect(readmes).toContain("README.md");
    expect(readmes).toContain("packages/core/README.md");
    expect(readmes.length).toBeGreaterThanOrEqual(8);
  });

  test.each(readmes)("%s: every block is run, written, an excerpt, shown or skipped for a known reason", (readme) => {
    for (const block of readReadmeBlocks(join(REPO_ROOT, readme), readme)) {
      const action = blockAction(block);
      if (action === "excerpt") {
        const source = readFileSync(join(REPO_ROOT, block.excerpt!), "utf8");
        expect(source, `${readme}:${block.line} must appear verbatim in ${block.excerpt}`).toContain(block.code);
      }
      if (block.lang === "json" && action === "show") expect(() => JSON.parse(block.code)).not.toThrow();
    }
  });
});
