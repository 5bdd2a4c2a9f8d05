// Regenerates src/contract.samples.ts from a running engine serving fixtures/demo:
//   node tests/capture-samples.mjs http://127.0.0.1:8090
// `tsc --noEmit` then checks the generated types (src/bindings, via src/contract.ts) against
// real JSON, and the browser test checks the live engine still sends every key of them.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { liveJson } from './live.mjs';

const TYPES = {
  healthSample: 'Health',
  catalogSample: 'Catalog',
  resolve404Sample: 'Resolve',
  resolve200Sample: 'Resolve',
  logsSample: 'RuntimeLogs',
  requestEventSample: 'EngineEvent',
};

const live = await liveJson(process.argv[2] ?? 'http://127.0.0.1:8090');
const { functions_root, socket_base_dir } = live.healthSample;
// Machine-specific absolute paths would only make the file churn.
const scrub = (v) =>
  JSON.stringify(v, null, 2).replaceAll(functions_root, '/path/to/fixtures/demo').replaceAll(socket_base_dir, '/tmp/fastfn/s-1234');
const out = `// Captured from the engine serving fixtures/demo by tests/capture-samples.mjs; do not edit.
// Typed with the generated contract, so \`tsc --noEmit\` fails when the types drift from
// real data; the browser test checks the live JSON still has every key of these samples.
import type { ${[...new Set(Object.values(TYPES))].sort().join(', ')} } from './contract';
${Object.entries(TYPES)
  .map(([name, type]) => `\nexport const ${name}: ${type} = ${scrub(live[name])};\n`)
  .join('')}`;
writeFileSync(fileURLToPath(new URL('../src/contract.samples.ts', import.meta.url)), out);
console.log('wrote src/contract.samples.ts');
