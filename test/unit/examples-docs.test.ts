/**
 * The docs stay true: docs/topology-reference.md is what docs/gen-reference.mjs renders
 * from the schema today, every complete topology in README.md validates, and the README
 * has the sections the project promises (commands with exit codes, conflicts, Bucardo 5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../engine/paths.js';
import { validateTopologyText } from '../../engine/topology/load.js';

const root = packageRoot();
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

test('docs/topology-reference.md is up to date with schemas/topology.schema.json', async () => {
  const gen = (await import(pathToFileURL(path.join(root, 'docs', 'gen-reference.mjs')).href)) as { renderFromDisk(): string };
  const want = gen.renderFromDisk();
  const have = fs.readFileSync(path.join(root, 'docs', 'topology-reference.md'), 'utf8');
  assert.ok(have === want, 'docs/topology-reference.md is out of date: run `node docs/gen-reference.mjs` and commit the result');
});

test('the reference documents every property of the schema', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(root, 'schemas', 'topology.schema.json'), 'utf8')) as Record<string, unknown>;
  const reference = fs.readFileSync(path.join(root, 'docs', 'topology-reference.md'), 'utf8');
  const keys = new Set<string>();
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const props = (node as { properties?: Record<string, unknown> }).properties;
      if (props && typeof props === 'object') for (const k of Object.keys(props)) keys.add(k);
      Object.values(node).forEach(walk);
    }
  };
  walk(schema);
  for (const k of keys) assert.ok(reference.includes(`\`${k}\``), `property ${k} is in the reference`);
});

test('every complete topology in README.md validates', () => {
  // Code blocks, also those indented inside a list item (dedented by their fence's indent).
  const blocks = [...readme.matchAll(/^( *)```yaml\n([\s\S]*?)^ *```/gm)]
    .map((m) =>
      m[2]!
        .split('\n')
        .map((l) => l.slice(m[1]!.length))
        .join('\n'),
    )
    .filter((b) => /^version: 1$/m.test(b));
  assert.ok(blocks.length >= 2);
  for (const text of blocks) {
    const env: NodeJS.ProcessEnv = {};
    for (const m of text.matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g)) env[m[1]!] = m[1]!.endsWith('URL') ? 'postgres://u@h/db' : 'x';
    assert.doesNotThrow(() => validateTopologyText(text, 'README.md', env), text.slice(0, 80));
  }
});

test('README.md opens with the two commands and has every promised section', () => {
  const opening = readme.slice(0, 2000);
  assert.match(opening, /npm ci && npm test/);
  assert.match(opening, /npx bucardo demo/);
  for (const h of [
    '## Quickstart',
    '## The topology file',
    '## Commands',
    '## Conflict strategies',
    '## Guarantees and limits',
    '## Coming from Bucardo 5',
    '## Performance',
  ]) {
    assert.ok(readme.includes(`\n${h}\n`), h);
  }
  for (const cmd of ['validate', 'plan', 'apply', 'destroy', 'run', 'kick', 'status', 'compare', 'demo', 'init']) {
    assert.match(readme, new RegExp(`^\\| \`bucardo ${cmd}\\b[^|]*\\|.*\\| [^|]*\\d[^|]*\\|$`, 'm'), `command ${cmd} with its exit codes`);
  }
  for (const s of ['latest', 'latest_table', 'latest_sync', 'priority', 'random', 'skip', 'abort']) {
    assert.match(readme, new RegExp(`\\*\\*\`${s}\`\\*\\*[\\s\\S]*?\`\`\`yaml`), `conflict strategy ${s} with an example`);
  }
  for (const b of [
    'bucardo_source',
    'bucardo_target',
    'bucardo_latest',
    'bucardo_latest_all_tables',
    'onetimecopy',
    'makedelta',
    'customcode',
    'autokick',
    'checktime',
    'kick',
    'status',
    'add db',
    'add sync',
    'update sync',
    'relgroup',
  ]) {
    assert.ok(readme.includes(b), `Coming from Bucardo 5 mentions ${b}`);
  }
});
