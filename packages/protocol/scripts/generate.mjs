// Writes the JSON Schemas (every build) and, with --docs, docs/protocol.md from the
// built package, so both come from the same zod schemas.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolJsonSchemas, renderProtocolDoc, wireSchemas } from '../.tmp/docs/docs.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(pkg, 'schema');
const write = (file, value) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
};

rmSync(out, { recursive: true, force: true });
const schemas = protocolJsonSchemas();
write(join(out, 'client-frame.json'), schemas.clientFrame);
write(join(out, 'server-frame.json'), schemas.serverFrame);
for (const [name, { params, result }] of Object.entries(schemas.methods)) {
  write(join(out, 'methods', `${name}.params.json`), params);
  write(join(out, 'methods', `${name}.result.json`), result);
}
for (const [name, schema] of Object.entries(schemas.events)) write(join(out, 'events', `${name}.json`), schema);

console.log(`wrote ${out}`);

// docs/protocol.md and the client's schemas are committed; the test suite fails when they no
// longer match the zod schemas.
if (process.argv.includes('--docs')) {
  writeFileSync(join(pkg, '..', '..', 'docs', 'protocol.md'), renderProtocolDoc());
  console.log('wrote docs/protocol.md');
  write(join(pkg, 'src', 'client', 'wire-schemas.json'), wireSchemas());
  console.log('wrote src/client/wire-schemas.json');
}
