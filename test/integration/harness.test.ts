import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters } from '../helpers/env.js';

const env = useClusters(['a', 'b']);

test('two clusters start and fresh databases are independent', async () => {
  const [a, b] = await env.fresh('harness', 'CREATE TABLE t (id int PRIMARY KEY)');
  await a.query('INSERT INTO t VALUES (1)');
  assert.equal((await a.one('SELECT count(*)::int AS n FROM t')).n, 1);
  assert.equal((await b.one('SELECT count(*)::int AS n FROM t')).n, 0);
  assert.notEqual(a.cluster.port, b.cluster.port);
});
