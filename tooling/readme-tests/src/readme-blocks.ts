import { readFileSync } from "node:fs";

/**
 * Why a README block is not run by the README tests. Each reason says what proves the block
 * instead; a block may only be skipped for one of these.
 */
export const SKIP_REASONS = {
  ci: "the command CI itself runs (.ci/run execs scripts/test.sh, which runs this test)",
  "not-published":
    "installs from the npm registry, where the packages are not yet; the tarball install beside it is run instead",
  long: "runs longer than CI's budget; its quick form (pnpm bench --quick) runs in the bench's broker tests",
  fuzz: "the million-case fuzz run (minutes); the same fuzz test runs 20,000 cases in every `pnpm test` of @stream/core",
} as const;

export type SkipReason = keyof typeof SKIP_REASONS;

/**
 * One fenced code block of a README, with what its info string asks of the tests:
 * ```` ```js file=receiver.mjs ```` is written to that file; ```` ```sh repo ```` runs in the repo
 * (not in the user's project folder); ```` ```ts excerpt=packages/x/test/y.ts ```` must appear
 * verbatim in that file; ```` ```sh skip=ci ```` is not run, for a reason of {@link SKIP_REASONS}.
 */
export interface ReadmeBlock {
  /** The README's path, as given to {@link readReadmeBlocks}. */
  readme: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The language word: `js`, `ts`, `sh`, `text`, ... */
  lang: string;
  code: string;
  file?: string;
  excerpt?: string;
  skip?: string;
  /** Runs in the repository's root rather than in the project folder. */
  repo: boolean;
}

/** What the tests do with a block. */
export type BlockAction = "write" | "run-js" | "run-ts" | "run-sh" | "excerpt" | "skip" | "show";

const JS = new Set(["js", "mjs", "javascript"]);
const TS = new Set(["ts", "mts", "typescript"]);
const SH = new Set(["sh", "bash", "shell"]);
/** Blocks that show output or a format, not code to run. */
const SHOWN = new Set(["text", "json", "console-output", "mermaid", ""]);

/** Parses the fenced code blocks (```` ``` ```` at the start of a line) of a Markdown text. */
export function parseReadmeBlocks(readme: string, markdown: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i] ?? "");
    if (!open) continue;
    const [lang = "", ...words] = (open[1] ?? "").trim().split(/\s+/);
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    if (end < 0) throw new Error(`${readme}:${i + 1}: a code block is never closed`);
    const block: ReadmeBlock = { readme, line: i + 1, lang, code: lines.slice(i + 1, end).join("\n") + "\n", repo: false };
    for (const word of words) {
      const [key, value] = word.split("=", 2);
      if (key === "repo" && value === undefined) block.repo = true;
      else if ((key === "file" || key === "excerpt" || key === "skip") && value) block[key] = value;
      else throw new Error(`${readme}:${i + 1}: unknown word "${word}" after the fence's language`);
    }
    blocks.push(block);
    i = end;
  }
  return blocks;
}

/** Reads a README and parses its blocks. */
export function readReadmeBlocks(path: string, displayPath = path): ReadmeBlock[] {
  return parseReadmeBlocks(displayPath, readFileSync(path, "utf8"));
}

/**
 * What the tests do with a block, or throws saying why the block is not valid: an unknown skip
 * reason, a language that cannot run, a runnable block with no way to run it.
 */
export function blockAction(block: ReadmeBlock): BlockAction {
  const where = `${block.readme}:${block.line}`;
  if (block.skip !== undefined) {
    if (!(block.skip in SKIP_REASONS)) {
      throw new Error(`${where}: skip=${block.skip} is not a known reason (${Object.keys(SKIP_REASONS).join(", ")})`);
    }
    return "skip";
  }
  if (block.excerpt !== undefined) return "excerpt";
  if (block.file !== undefined) return "write";
  if (JS.has(block.lang)) return "run-js";
  if (TS.has(block.lang)) return "run-ts";
  if (SH.has(block.lang)) return "run-sh";
  if (SHOWN.has(block.lang)) return "show";
  throw new Error(`${where}: a \`${block.lang}\` block is neither run, written, an excerpt nor skipped`);
}
