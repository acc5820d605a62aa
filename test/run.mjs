#!/usr/bin/env node
// `npm test`: unit tests, then integration tests (each file starts its own clusters),
// with node's own test runner. Two files at a time: the machine has 2 cores.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const find = (dir) =>
  (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) : [])
    .filter((f) => String(f).endsWith('.test.js'))
    .map((f) => path.join(dir, String(f)))
    .sort();
const filter = process.argv.slice(2);
let files = [...find(path.join(root, 'dist/test/unit')), ...find(path.join(root, 'dist/test/integration'))];
if (filter.length) files = files.filter((f) => filter.some((p) => f.includes(p)));
// *.stock.test files need a stock PostgreSQL server from the machine's packages (JIT on,
// as users run it); without one they are left out, and said so in one line
const { stockBinDir } = await import(path.join(root, 'dist/test/helpers/stock.js'));
const stock = files.filter((f) => f.endsWith('.stock.test.js'));
if (stock.length && !stockBinDir()) {
  files = files.filter((f) => !stock.includes(f));
  console.log(
    `not run: ${stock.map((f) => path.basename(f, '.js')).join(', ')} (no stock PostgreSQL server in /usr/lib/postgresql; apt-get install postgresql, as .ci/run does)`,
  );
}
// SQLite targets need better-sqlite3, an optional dependency built from source where no
// prebuilt binary can be downloaded; if it could not be installed, its tests are left out
// and said so in one line
const sqliteTests = files.filter((f) => /target-sqlite/.test(path.basename(f)));
if (sqliteTests.length) {
  try {
    const { createRequire } = await import('node:module');
    createRequire(import.meta.url)('better-sqlite3');
  } catch (e) {
    files = files.filter((f) => !sqliteTests.includes(f));
    console.log(
      `not run: ${sqliteTests.map((f) => path.basename(f, '.js')).join(', ')} (better-sqlite3 cannot be loaded: ${String(e.message).split('\n')[0]}; npm ci builds it, which needs python3, make and a C++ compiler where no prebuilt binary downloads)`,
    );
  }
}
// MariaDB and Redis targets need those servers from the machine's packages (the tests
// start their own, on free ports, as an unprivileged user); without one its tests are left
// out, and said so in one line. `npm run test:targets` (BUCARDO_REQUIRE_TARGETS=1) fails instead.
const onPath = (bin) => [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin'].some((d) => d && fs.existsSync(path.join(d, bin)));
const servers = [
  { test: 'target-mariadb', bins: ['mariadbd', 'mariadb-install-db'], install: 'apt-get install mariadb-server' },
  { test: 'target-redis', bins: ['redis-server'], install: 'apt-get install redis-server' },
];
for (const s of servers) {
  const these = files.filter((f) => path.basename(f).startsWith(s.test));
  const missing = s.bins.filter((b) => !onPath(b));
  if (!these.length || !missing.length) continue;
  const line = `${these.map((f) => path.basename(f, '.js')).join(', ')} (no ${missing.join(' or ')} on this machine; ${s.install}, as .ci/run does)`;
  if (process.env.BUCARDO_REQUIRE_TARGETS) {
    console.error(`cannot run: ${line}`);
    process.exit(1);
  }
  files = files.filter((f) => !these.includes(f));
  console.log(`not run: ${line}`);
}
// node --test without files would search the whole tree for tests of its own
if (!files.length) {
  console.log('no test file to run');
  process.exit(0);
}
const child = spawn(process.execPath, ['--test', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
