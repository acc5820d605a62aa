import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';

const VALID = `version: 1
databases:
  east: {url: "postgres://repl@127.0.0.1:1/shop"}
  west:
    host: 127.0.0.1
    password: \${env:WEST_PW:-hunter2}
relgroups:
  shop: {tables: [public.customers]}
syncs:
  mm: {relgroup: shop, sources: [east, west], checktime: 30s}
`;

function tempFile(name: string, text: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-validate-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return { dir, file };
}

test('validate: a valid file exits 0 with a one-line summary', async () => {
  const { dir } = tempFile('bucardo.yaml', VALID);
  const r = await runCli(['validate'], { cwd: dir });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.stdout, 'bucardo.yaml: valid (2 databases, 1 relgroup, 1 sync)\n');
  assert.equal(r.stderr, '');
});

test('validate: problems as FILE:LINE:COL: message, with the path as given, exit 1, no stack, no password', async () => {
  const bad = VALID.replace('checktime: 30s', 'checktime: 30 parsecs')
    .replace('sources: [east, west]', 'source: [east, west]')
    .replace('    host: 127.0.0.1\n', '    host: 127.0.0.1\n    port: ${env:NO_SUCH_PORT}\n');
  const { dir } = tempFile('other.yaml', bad);
  const r = await runCli(['validate', '-f', './other.yaml'], { cwd: dir });
  assert.equal(r.code, 1, r.out);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(lines, [
    './other.yaml:6:11: environment variable NO_SUCH_PORT is not set (set NO_SUCH_PORT, or give a default: ${env:NO_SUCH_PORT:-default})',
    './other.yaml:11:24: unknown key "source" in syncs.mm (did you mean "sources"?)',
    './other.yaml:11:57: syncs.mm.checktime: "30 parsecs" is not a duration (e.g. 30s, 500ms, 5m, 1h, 14d, 1m30s, or a number of seconds)',
    '3 problems found.',
  ]);
  assert.ok(!r.out.includes('hunter2'));
  assert.ok(!/^\s+at /m.test(r.out));
});

test('validate: BUCARDO_FILE picks the file; -f wins over it', async () => {
  const { file } = tempFile('env.yaml', VALID);
  const r = await runCli(['validate'], { env: { BUCARDO_FILE: file } });
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /env\.yaml: valid/);
  const r2 = await runCli(['validate', '-f', '/nonexistent/x.yaml'], { env: { BUCARDO_FILE: file } });
  assert.equal(r2.code, 1);
  assert.equal(r2.stderr, 'error: topology file /nonexistent/x.yaml does not exist\nhint: pass -f PATH, set BUCARDO_FILE, or create ./bucardo.yaml\n');
});

test('validate: no ./bucardo.yaml is one clear error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-validate-empty-'));
  const r = await runCli(['validate'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: topology file bucardo\.yaml does not exist\n/);
});

test('validate --help', async () => {
  const r = await runCli(['validate', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--file/);
  assert.match(r.stdout, /connects to no database/);
});

test('validate: a YAML alias bomb is bad input like any other: the file named, exit 1, nothing expanded', async () => {
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  const { dir } = tempFile('bomb.yaml', `version: 1\n${levels.join('\n')}\n`);
  const r = await runCli(['validate', '-f', 'bomb.yaml'], { cwd: dir });
  assert.equal(r.code, 1, r.out);
  assert.match(r.stderr, /^bomb\.yaml:\d+:\d+: .*alias/m);
  assert.doesNotMatch(r.out, /bug in bucardo/);
  assert.ok(!/^\s+at /m.test(r.out));
});
