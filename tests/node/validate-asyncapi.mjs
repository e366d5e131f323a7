// Validates an AsyncAPI document with the official parser (@asyncapi/parser 3.x, which runs
// the AsyncAPI JSON Schema, Spectral's core rules and the payload schema parsers).
//
//   node validate-asyncapi.mjs <file>
//
// Prints every diagnostic as `<severity> <code> <path>: <message>`. Exits 1 when any has
// severity 0 (error), 2 on a usage or read problem, 0 otherwise: warnings, information and
// hints are printed but allowed.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const SEVERITY = ['error', 'warning', 'info', 'hint'];

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error('usage: node validate-asyncapi.mjs <file>');
  process.exit(2);
}

let text;
try {
  text = await readFile(file, 'utf8');
} catch (error) {
  console.error(`cannot read ${file}: ${error.message}`);
  process.exit(2);
}

const diagnostics = await new Parser().validate(text);
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors += 1;
  const where = (d.path ?? []).join('/') || '(document)';
  const severity = SEVERITY[d.severity] ?? `severity ${d.severity}`;
  const line = `${severity} ${d.code} ${where}: ${d.message}`;
  if (d.severity === 0) console.error(line);
  else console.log(line);
}
if (errors > 0) {
  console.error(`${file}: ${errors} error(s), ${diagnostics.length - errors} other diagnostic(s)`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI (${diagnostics.length} non-error diagnostic(s))`);
