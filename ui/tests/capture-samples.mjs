// Regenerates src/contract.samples.ts from a running engine serving fixtures/demo:
//   node tests/capture-samples.mjs http://127.0.0.1:8090
// `tsc --noEmit` then checks the hand-written types of src/contract.ts against real JSON.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const base = process.argv[2] ?? 'http://127.0.0.1:8090';
const get = async (p) => (await fetch(base + p)).json();
const health = await get('/_fn/health');
const catalog = await get('/_fn/catalog');
const resolve404 = await get('/_fn/resolve?method=POST&url=/users/42');
const resolve200 = await get('/_fn/resolve?method=GET&url=/users/42');
// Machine-specific absolute paths would only make the file churn.
const scrub = (v) =>
  JSON.stringify(v, null, 2)
    .replaceAll(health.functions_root, '/path/to/fixtures/demo')
    .replaceAll(health.socket_base_dir, '/tmp/fastfn/s-1234');
const out = `// Captured from the engine serving fixtures/demo by tests/capture-samples.mjs; do not edit.
// Typed with the hand-written contract, so \`tsc --noEmit\` fails when the types drift from
// real data; the browser test checks the live JSON still has every key of these samples.
import type { Catalog, Health, Resolve } from './contract';

export const healthSample: Health = ${scrub(health)};

export const catalogSample: Catalog = ${scrub(catalog)};

export const resolve404Sample: Resolve = ${scrub(resolve404)};

export const resolve200Sample: Resolve = ${scrub(resolve200)};
`;
writeFileSync(fileURLToPath(new URL('../src/contract.samples.ts', import.meta.url)), out);
console.log('wrote src/contract.samples.ts');
