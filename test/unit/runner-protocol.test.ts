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
  const sql = guardedApplySql('bucardo_main', { ...t, arbiter: true, latest: false });
  assert.match(sql, /FOR UPDATE OF t SKIP LOCKED/);
  assert.match(sql, /NOT pg_visible_in_snapshot\(d\._bucardo_txid, \(SELECT current_setting\('bucardo\.cur_snapshot'\)::pg_snapshot\)\)/);
  assert.match(sql, /truncate_log/);
  assert.match(sql, /ON CONFLICT \("id"\) DO NOTHING/);
  assert.doesNotMatch(guardedApplySql('bucardo_main', { ...t, arbiter: false, latest: false }), /ON CONFLICT/);
  assert.match(guardedApplySql('bucardo_main', { ...t, arbiter: true, latest: true }), /d\._bucardo_ts >= s\._bucardo_ts/);
  assert.match(guardedClearSql('bucardo_main', t), /WHERE NOT EXISTS \(SELECT 1 FROM "bucardo_kp_abc" k WHERE k\."id" = t\."id"\) FOR UPDATE OF t SKIP LOCKED/);
});

test('sequences: targets follow the furthest value; a source only moves to a value of its own, else stays', async () => {
  const { sequenceTarget } = await import('../../engine/runner/scope.js');
  const plain = { start: '1', min: '1', max: '9223372036854775807', inc: '1' };
  const odd = { start: '1', min: '1', max: '9223372036854775807', inc: '2' };
  const even = { start: '2', min: '1', max: '9223372036854775807', inc: '2' };
  // a target takes the furthest value; nothing to do where it is already there
  assert.equal(sequenceTarget(101n, plain, '7', false), 101n);
  assert.equal(sequenceTarget(101n, plain, '101', false), null);
  assert.equal(sequenceTarget(101n, plain, null, false), 101n);
  // INCREMENT BY 2 from different starts: each source keeps its own parity
  assert.equal(sequenceTarget(101n, even, '40', true), 102n);
  assert.equal(sequenceTarget(102n, odd, '41', true), 103n);
  assert.equal(sequenceTarget(101n, odd, '101', true), null);
  // a range of its own: left alone when the furthest value is outside it
  const low = { start: '1', min: '1', max: '1000000', inc: '1' };
  const high = { start: '1000001', min: '1000001', max: '2000000', inc: '1' };
  assert.equal(sequenceTarget(1000050n, low, '500', true), null);
  assert.equal(sequenceTarget(500n, high, '1000010', true), null);
  assert.equal(sequenceTarget(500n, high, null, true), null, 'its first value is past it anyway');
  // descending sequences go the other way
  const down = { start: '-1', min: '-9223372036854775808', max: '-1', inc: '-1' };
  assert.equal(sequenceTarget(-50n, down, '-10', false), -50n);
  assert.equal(sequenceTarget(-50n, { ...down, inc: '-3' }, '-10', true), -52n);
  // beyond a target's bounds: left alone rather than failing every run
  assert.equal(sequenceTarget(5000n, { ...plain, max: '1000' }, '10', false), null);
});
