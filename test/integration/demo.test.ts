// `bucardo demo` without a terminal, as a newcomer's first command runs it in CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCli } from '../helpers/cli.js';

test('bucardo demo runs to its compare verdict, exits 0 and leaves no process or folder behind', async () => {
  const r = await runCli(['demo', '--duration', '6'], { timeout: 240_000 });
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /Apply complete: \d+ added/);
  assert.match(r.stdout, /writes east \d+, west \d+; sync shop_mm/);
  assert.match(r.stdout, /conflicts resolved in all: \d+/);
  assert.match(r.stdout, /Sync shop_mm: all 4 tables equal on east, west, warehouse\./);
  assert.match(r.stdout, /Verdict: east, west and warehouse hold exactly the same rows\./);
  assert.doesNotMatch(r.out, new RegExp(`${String.fromCharCode(27)}\\[`), 'no terminal: plain lines, no escape codes');
  const topo = /The topology: (\S+)/.exec(r.stdout)![1];
  const base = path.dirname(path.dirname(topo));
  assert.ok(!fs.existsSync(base), `${base} must be removed`);
  const ps = execFileSync('ps', ['-eo', 'args']).toString();
  assert.ok(!ps.includes(base), `no process may be left running in ${base}`);
});
