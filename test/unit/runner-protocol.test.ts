/** Pure parts of the run protocol (docs/protocol.md): run order, watermark checks, once barriers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { snapshotXmax } from '../../engine/runner/snapshot.js';
import { conflictSql } from '../../engine/runner/sql/conflicts.js';
import { guardedApplySql, guardedClearSql } from '../../engine/runner/sql/apply.js';
import { fenceSql } from '../../engine/runner/sql/fence.js';

test('snapshotXmax reads the xmax of a pg_snapshot, beyond 2^53', () => {
  assert.equal(snapshotXmax('10:20:12,15'), 20n);
  assert.equal(snapshotXmax('9007199254740993:9007199254740995:'), 9007199254740995n);
});

test('the fence is one round trip, with generated integers only', () => {
  assert.equal(fenceSql([1651863905, 42]), 'BEGIN; SELECT pg_try_advisory_xact_lock(1651863905, 42) AS ok');
});

test('a TRUNCATE competes for every key pending elsewhere, its time as a parameter', () => {
  const [create] = conflictSql('abc', ['id'], [0, 2], [1], { kind: 'latest' });
  assert.match(create, /SELECT "id", 1, \(\$1::timestamptz\[\]\)\[1\] FROM \(SELECT DISTINCT "id" FROM p\) k/);
  assert.match(create, /max\(_bucardo_ts\) AS _bucardo_ts FROM \(SELECT \* FROM p UNION ALL/);
  const [plain] = conflictSql('abc', ['id'], [0, 2], [], { kind: 'latest' });
  assert.doesNotMatch(plain, /\$1/);
});

test('writing into a source: locks skip held rows, unseen local changes are deferred, the arbiter only with a unique key', () => {
  const t = { tableId: 'abc', schema: 'public', name: 'items', keyColumns: ['id'], columns: ['id', 'v'], analyze: false, sorted: false };
  const sql = guardedApplySql('bucardo_main', { ...t, arbiter: true });
  assert.match(sql, /FOR UPDATE OF t SKIP LOCKED/);
  assert.match(sql, /NOT pg_visible_in_snapshot\(d\._bucardo_txid, \(SELECT current_setting\('bucardo\.cur_snapshot'\)::pg_snapshot\)\)/);
  assert.match(sql, /truncate_log/);
  assert.match(sql, /ON CONFLICT \("id"\) DO NOTHING/);
  assert.doesNotMatch(guardedApplySql('bucardo_main', { ...t, arbiter: false }), /ON CONFLICT/);
  assert.match(guardedClearSql('bucardo_main', t), /WHERE NOT EXISTS \(SELECT 1 FROM "bucardo_kp_abc" k WHERE k\."id" = t\."id"\) FOR UPDATE OF t SKIP LOCKED/);
});
