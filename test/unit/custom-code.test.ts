/**
 * The pure parts of custom conflict handlers and hooks (docs/custom-code.md): checking a
 * handler's answer, COPY text of merged rows, the time limit, the skip mark, ctx.error and
 * the log lines. The runs themselves: test/integration/custom-code.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAnswer, copyText, isoTime, type CustomConflict } from '../../engine/runner/custom/conflicts.js';
import { callWithTimeout, userCodeTimeoutMs, UserCodeTimeout, USER_CODE_TIMEOUT_MS, describeUserError } from '../../engine/runner/custom/call.js';
import { hookError } from '../../engine/runner/custom/hooks.js';
import { skipReason, SKIP_MARK } from '../../engine/runner/sql/custom.js';
import { formatLog } from '../../engine/runner/log.js';
import { BucardoError } from '../../engine/errors.js';

const table = { keyColumns: ['id'], columns: ['id', 'name', 'qty'] };
const conflict = (id: string, dbs: string[]): CustomConflict => ({
  key: { id },
  rows: Object.fromEntries(dbs.map((d) => [d, { id, name: d, qty: '1' }])),
  changed_at: Object.fromEntries(dbs.map((d) => [d, '2025-01-01T00:00:00.000000Z'])),
});
const batch = [conflict('1', ['a', 'b']), conflict('2', ['a', 'c'])];

test('checkAnswer: names of sources that changed the key, and merged rows as text', () => {
  assert.deepEqual(checkAnswer(['b', 'c'], batch, table), ['b', 'c']);
  const merged = checkAnswer([{ row: { id: 1, name: 'm', qty: 10n } }, { row: { id: '2', name: null, qty: true } }], batch, table);
  assert.deepEqual(merged, [
    { id: '1', name: 'm', qty: '10' },
    { id: '2', name: null, qty: 'true' },
  ]);
  const when = new Date('2025-01-02T03:04:05.678Z');
  assert.deepEqual(checkAnswer([{ row: { id: '1', name: 'x', qty: when } }, 'a'], batch, table), [
    { id: '1', name: 'x', qty: '2025-01-02T03:04:05.678Z' },
    'a',
  ]);
});

test('checkAnswer: every kind of nonsense is named', () => {
  const bad: [unknown, RegExp][] = [
    [undefined, /^undefined instead of an array of 2 results$/],
    [{ a: 1 }, /^\{"a":1\} instead of an array/],
    [['a'], /^1 results for 2 conflicts$/],
    [['c', 'a'], /^result 0 \(key \{"id":"1"\}\) is "c", not a database that changed the key \(a, b\)$/],
    [['a', null], /^result 1 \(key \{"id":"2"\}\) is null: expected a database name or \{row: \{\.\.\.\}\}$/],
    [['a', { row: { id: '2', name: 'x' } }], /lacks column "qty"/],
    [['a', { row: { id: '2', name: 'x', qty: '1', extra: 1 } }], /has column "extra", which the table does not replicate/],
    [['a', { row: { id: '3', name: 'x', qty: '1' } }], /the merged row's id is "3", not the key's "2"/],
    [['a', { row: { id: '2', name: { x: 1 }, qty: '1' } }], /the merged row's "name" is \{"x":1\}: values are PostgreSQL text/],
    [['a', { row: { id: '2', name: 'x', qty: Number.NaN } }], /"qty" is NaN: values/],
    [['a', ['b']], /is \["b"\]: expected a database name/],
  ];
  for (const [answer, re] of bad) {
    const r = checkAnswer(answer, batch, table);
    assert.equal(typeof r, 'string', JSON.stringify(answer));
    assert.match(r as string, re);
  }
});

test('copyText: COPY text escapes; NULL as \\N', () => {
  assert.equal(copyText(null), '\\N');
  assert.equal(copyText('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e');
  assert.equal(copyText('\\N'), '\\\\N', 'the text \\N is not NULL');
  assert.equal(copyText(''), '');
});

test('isoTime: PostgreSQL UTC text to ISO with six fractional digits, so times compare as strings', () => {
  assert.equal(isoTime('2025-03-01 10:00:00+00'), '2025-03-01T10:00:00.000000Z');
  assert.equal(isoTime('2025-03-01 10:00:00.5+00'), '2025-03-01T10:00:00.500000Z');
  assert.equal(isoTime('2025-03-01 10:00:00.123456+00'), '2025-03-01T10:00:00.123456Z');
  assert.ok(isoTime('2025-03-01 10:00:00+00') < isoTime('2025-03-01 10:00:00.5+00'));
  assert.equal(Date.parse(isoTime('2025-03-01 10:00:00.123456+00')), Date.parse('2025-03-01T10:00:00.123Z'));
  assert.equal(isoTime('12025-03-01 10:00:00+00'), '12025-03-01 10:00:00+00');
});

test('callWithTimeout: value, sync throw, rejection, time-out; the limit is 30 s unless the test-only variable says otherwise', async () => {
  assert.equal(await callWithTimeout((x) => (x as number) + 1, [1], 1000), 2);
  assert.equal(await callWithTimeout(async () => 'late', [], 1000), 'late');
  await assert.rejects(
    callWithTimeout(
      () => {
        throw new Error('sync');
      },
      [],
      1000,
    ),
    /sync/,
  );
  await assert.rejects(
    callWithTimeout(() => Promise.reject(new Error('async')), [], 1000),
    /async/,
  );
  await assert.rejects(
    callWithTimeout(() => new Promise(() => {}), [], 30),
    (e: unknown) => e instanceof UserCodeTimeout && e.ms === 30,
  );
  assert.equal(USER_CODE_TIMEOUT_MS, 30_000);
  assert.equal(userCodeTimeoutMs({}), 30_000);
  assert.equal(userCodeTimeoutMs({ BUCARDO_HOOK_TIMEOUT_MS: '1500' }), 1500);
  assert.equal(userCodeTimeoutMs({ BUCARDO_HOOK_TIMEOUT_MS: 'soon' }), 30_000);
  assert.equal(describeUserError('plain'), 'plain');
  assert.equal(describeUserError({ why: 1 }), '{"why":1}');
  assert.equal(describeUserError(Object.assign(new Error('dup'), { code: '23505', detail: 'Key (x)=(1)' })), 'dup [23505]; detail: Key (x)=(1)');
});

test('skip mark: a skipped run is told from a failed one by its recorded error', () => {
  assert.equal(skipReason(`${SKIP_MARK}maintenance`), 'maintenance');
  assert.equal(skipReason('sync s1 failed: boom'), null);
  assert.equal(skipReason(null), null);
});

test('hookError: what on_error gets from a constraint violation, a PostgreSQL error and anything else', () => {
  const e = new BucardoError('constraint_violation', 'sync s1 cannot write table public.users on database b: ...', {
    details: { database: 'b', table: 'public.users', constraint: 'users_email_key', keys: [{ id: 1 }] },
  });
  assert.deepEqual(hookError(e), {
    message: e.message,
    code: 'constraint_violation',
    database: 'b',
    table: 'public.users',
    keys: [{ id: 1 }],
    constraint: 'users_email_key',
  });
  assert.deepEqual(hookError(Object.assign(new Error('gone'), { code: '57P01' })), { message: 'gone [57P01]', code: '57P01', database: null, table: null });
  assert.deepEqual(hookError('odd'), { message: 'odd', code: 'run_failed', database: null, table: null });
});

test('log lines: a skipped run, a hook line, a merged conflict', () => {
  const at = new Date('2025-01-01T00:00:00Z');
  assert.equal(
    formatLog({ event: 'skipped', level: 'info', sync: 's1', runId: 'r1', reason: 'maintenance' }, 'text', at),
    '2025-01-01T00:00:00.000Z INFO  skipped sync=s1 run_id=r1: before_sync: maintenance (nothing consumed)',
  );
  assert.equal(
    formatLog({ event: 'hook', level: 'warn', sync: 's1', hook: 'after_sync', message: 'boom' }, 'text', at),
    '2025-01-01T00:00:00.000Z WARN  hook sync=s1 hook=after_sync: boom',
  );
  const c = {
    table: 'public.items',
    schema: 'public',
    name: 'items',
    key: { id: 1 },
    winner: null,
    merged: true as const,
    changed: [
      { database: 'a', at: 'x' },
      { database: 'b', at: 'y' },
    ],
  };
  assert.match(formatLog({ event: 'conflict', level: 'warn', sync: 's1', conflict: c }, 'text', at), /key=\{"id":1\} winner=\(merged\) changed_on=a,b$/);
  assert.deepEqual(JSON.parse(formatLog({ event: 'hook', level: 'info', sync: 's1', hook: 'before_sync', message: 'hi' }, 'json', at)), {
    time: '2025-01-01T00:00:00.000Z',
    event: 'hook',
    level: 'info',
    sync: 's1',
    hook: 'before_sync',
    message: 'hi',
  });
});
