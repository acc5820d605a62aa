import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topologySchema } from '../../engine/topology/schema.js';

type S = { [k: string]: unknown };

/** Every property schema in the document, with its JSON pointer. */
function properties(node: unknown, ptr = ''): [string, S][] {
  if (!node || typeof node !== 'object') return [];
  const out: [string, S][] = [];
  for (const [k, v] of Object.entries(node as S)) {
    if (k === 'properties' && v && typeof v === 'object') {
      for (const [name, sub] of Object.entries(v as S)) out.push([`${ptr}/properties/${name}`, sub as S]);
    }
    out.push(...properties(v, `${ptr}/${k}`));
  }
  return out;
}

test('the schema has $id, title, a draft, and a description on every property and definition', () => {
  const s = topologySchema();
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.ok(typeof s.$id === 'string' && typeof s.title === 'string');
  const props = properties(s);
  assert.ok(props.length > 40, `only ${props.length} properties found`);
  for (const [ptr, sub] of props) assert.ok(typeof sub.description === 'string' && sub.description.length > 10, `${ptr} has no description`);
  for (const [name, def] of Object.entries(s.$defs as S)) assert.ok(typeof (def as S).description === 'string', `$defs/${name} has no description`);
});

test('every object in the schema forbids unknown keys', () => {
  const walk = (node: unknown, ptr: string): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as S;
    if (n.type === 'object') assert.ok('additionalProperties' in n, `${ptr} allows unknown keys`);
    for (const [k, v] of Object.entries(n)) walk(v, `${ptr}/${k}`);
  };
  walk(topologySchema(), '');
});

test('the sync options of the SPEC are all in the schema', () => {
  const sync = (topologySchema().$defs as S).sync as S;
  assert.deepEqual(Object.keys(sync.properties as S).sort(), [
    'analyze_after_copy',
    'autokick',
    'checktime',
    'conflict',
    'deletemethod',
    'enabled',
    'hooks',
    'isolation',
    'kind',
    'lock_tables',
    'onetimecopy',
    'rebuild_index',
    'relgroup',
    'sources',
    'strict',
    'targets',
    'vacuum_after_copy',
  ]);
});
