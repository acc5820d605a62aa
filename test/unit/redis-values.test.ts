/**
 * Redis keys and values (engine/targets/redis-values.ts, docs/targets.md "Redis"): the
 * SPEC's `schema.table:KEY` naming for plain values, escaping that keeps different rows and
 * tables apart, and SCAN patterns that match one table's keys only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redisClientOptions } from '../../engine/targets/redis.js';
import { redisKeyPart, redisKeyParts, redisRowKey, redisScanPattern, redisTablePrefix, redisValue } from '../../engine/targets/redis-values.js';

/** Redis's glob (stringmatchlen) for the subset the patterns use: `*`, and `\` escaping the next character. */
function globMatch(pattern: string, s: string): boolean {
  const re = pattern.replace(/\\(.)|(\*)|([^\\*])/g, (_, esc: string, star: string, ch: string) =>
    star ? '.*' : (esc ?? ch).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
  );
  return new RegExp(`^${re}$`, 's').test(s);
}

const key = (schema: string, table: string, parts: string[]) =>
  redisRowKey(
    redisTablePrefix(schema, table),
    parts.map((p) => redisKeyPart('text', p)),
  );

test('plain names and values follow the SPEC naming unchanged', () => {
  assert.equal(key('public', 'items', ['42']), 'public.items:42');
  assert.equal(key('shop', 'order_lines', ['1001', '3']), 'shop.order_lines:1001:3');
  assert.equal(
    redisRowKey(redisTablePrefix('public', 't'), [redisKeyPart('timestamptz', '2024-02-29 10:14:59.5+00')]),
    'public.t:2024-02-29T10\\:14\\:59.500000Z',
  );
  assert.equal(redisKeyPart('bytea', '\\x00ff'), '00ff');
  assert.equal(redisKeyPart('bool', 't'), '1');
});

test('different rows and tables never share a key, and keys parse back', () => {
  const cases: [string, string, string[]][] = [
    ['a', 'b', ['x:y', 'z']],
    ['a', 'b', ['x', 'y:z']],
    ['a', 'b', ['x\\', ':z']],
    ['a', 'b', ['x\\:', 'z']],
    ['a', 'b', ['\\N', '']],
    ['a', 'b', ['', '']],
    ['a', 'b', ['x:y:z']],
    ['a.b', 'c', ['1']],
    ['a', 'b.c', ['1']],
    ['a', 'b:1', ['2']],
    ['a', 'b', ['1:2']],
  ];
  const keys = cases.map(([s, t, p]) => key(s, t, p));
  assert.equal(new Set(keys).size, keys.length, keys.join('  '));
  for (const [i, [s, t, p]] of cases.entries()) assert.deepEqual(redisKeyParts(redisTablePrefix(s, t), keys[i]), p);
  assert.deepEqual(redisKeyParts('a.b', 'a.b:\\N:x'), [null, 'x']);
  assert.equal(redisKeyParts('a.b', 'a.bc:1'), null);
});

test("a table's SCAN pattern matches its own keys only", () => {
  const tables: [string, string][] = [
    ['a', 'b'],
    ['a', 'b:1'],
    ['a.b', 'c'],
    ['a', 'b.c'],
    ['we*', 't?[x]'],
    ['we', 't'],
  ];
  for (const [s, t] of tables) {
    const pattern = redisScanPattern(redisTablePrefix(s, t));
    for (const [s2, t2] of tables) {
      const k = key(s2, t2, ['1', 'a:b']);
      assert.equal(globMatch(pattern, k), s === s2 && t === t2, `${pattern} against ${k}`);
    }
  }
});

test('values: PostgreSQL text except booleans, timestamps and bytea', () => {
  assert.equal(redisValue('bool', 'f'), '0');
  assert.equal(redisValue('float', '-0'), '-0');
  assert.equal(redisValue('numeric', '0.00000000000000000000'), '0.00000000000000000000');
  assert.equal(redisValue('timestamp', '1999-12-31 23:59:59.5'), '1999-12-31T23:59:59.500000');
  assert.equal(redisValue('timestamptz', 'infinity'), 'infinity');
  assert.deepEqual(redisValue('bytea', '\\x00010200ff00'), Buffer.from('00010200ff00', 'hex'));
  assert.equal(redisValue('text', '{"a": 1}'), '{"a": 1}');
});

test('connection options: the URL (its db number honoured), discrete fields override it, defaults filled in, never reconnecting', () => {
  const spec = (server: Record<string, unknown>) => ({ name: 'c', type: 'redis' as const, path: '', server, pos: { line: 1, col: 1 } });
  const o = redisClientOptions(spec({ url: 'rediss://app:p%40ss@cache.example.com:6380/3' }));
  assert.deepEqual(o, {
    socket: { host: 'cache.example.com', port: 6380, tls: true, connectTimeout: 5000, reconnectStrategy: false },
    username: 'app',
    password: 'p@ss',
    database: 3,
  });
  const over = redisClientOptions(spec({ url: 'redis://:a@h:1/2', host: 'other', port: 7000, db: 9, password: 'b' }));
  assert.deepEqual(
    [over.socket, over.password, over.database],
    [{ host: 'other', port: 7000, tls: false, connectTimeout: 5000, reconnectStrategy: false }, 'b', 9],
  );
  const defaults = redisClientOptions(spec({}));
  assert.deepEqual(
    [defaults.socket, defaults.password, defaults.database],
    [{ host: 'localhost', port: 6379, tls: false, connectTimeout: 5000, reconnectStrategy: false }, undefined, 0],
  );
});
