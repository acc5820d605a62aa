import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQualifiedName, globToRegExp, exactGlob, isGlob, formatQualifiedName } from '../../engine/topology/relnames.js';
import { parseDuration } from '../../engine/topology/duration.js';
import { didYouMean, editDistance } from '../../engine/topology/suggest.js';
import { BucardoError } from '../../engine/errors.js';

test('SQL names: unquoted parts fold to lower case, no schema means public', () => {
  assert.deepEqual(parseQualifiedName('public.Foo'), { schema: 'public', name: 'foo' });
  assert.deepEqual(parseQualifiedName('Orders'), { schema: 'public', name: 'orders' });
  assert.deepEqual(parseQualifiedName('  Shop.ORDER_lines$2 '), { schema: 'shop', name: 'order_lines$2' });
  assert.deepEqual(parseQualifiedName('public . foo'), { schema: 'public', name: 'foo' });
});

test('SQL names: quoted parts keep case, spaces, dots and doubled quotes', () => {
  assert.deepEqual(parseQualifiedName('"Sales EU"."Order Lines"'), { schema: 'Sales EU', name: 'Order Lines' });
  assert.deepEqual(parseQualifiedName('"my.schema".T'), { schema: 'my.schema', name: 't' });
  assert.deepEqual(parseQualifiedName('"a""b"'), { schema: 'public', name: 'a"b' });
  assert.deepEqual(parseQualifiedName('"Order.Lines ""v2"""'), { schema: 'public', name: 'Order.Lines "v2"' });
});

test('SQL names: unicode folds like PostgreSQL (ASCII only), reserved words are plain names', () => {
  assert.deepEqual(parseQualifiedName('Ärger.Straße'), { schema: 'Ärger', name: 'straße' });
  assert.deepEqual(parseQualifiedName('"Ärger"."日本"'), { schema: 'Ärger', name: '日本' });
  assert.deepEqual(parseQualifiedName('public.user'), { schema: 'public', name: 'user' });
  assert.deepEqual(parseQualifiedName('SELECT'), { schema: 'public', name: 'select' });
  assert.deepEqual(parseQualifiedName('"Table"'), { schema: 'public', name: 'Table' });
});

test('SQL names: bad syntax throws bad_name', () => {
  for (const bad of ['"unbalanced', 'a.b.c', 'public.', '.foo', 'a..b', '""', 'Sales EU.x', '1abc', '"a"b', 'x"y"', '']) {
    assert.throws(
      () => parseQualifiedName(bad),
      (e: unknown) => e instanceof BucardoError && e.code === 'bad_name',
      bad,
    );
  }
});

test('SQL names: 63 bytes is the limit, counted in UTF-8 bytes', () => {
  assert.equal(parseQualifiedName('a'.repeat(63)).name, 'a'.repeat(63));
  assert.throws(() => parseQualifiedName('a'.repeat(64)), /64 bytes/);
  assert.throws(() => parseQualifiedName(`"${'é'.repeat(32)}"`), /64 bytes/);
});

test('formatQualifiedName quotes only where needed', () => {
  assert.equal(formatQualifiedName({ schema: 'public', name: 'foo' }), 'public.foo');
  assert.equal(formatQualifiedName({ schema: 'Sales EU', name: 'a"b' }), '"Sales EU"."a""b"');
});

test('globs over schema.table: * and ? and escapes', () => {
  const re = globToRegExp('public.audit_*');
  assert.ok(re.test('public.audit_2024'));
  assert.ok(re.test('public.audit_'));
  assert.ok(!re.test('public.audits'));
  assert.ok(!re.test('other.audit_x'));
  assert.ok(globToRegExp('*').test('Sales EU.Order Lines'));
  assert.ok(globToRegExp('public.t?').test('public.t1'));
  assert.ok(!globToRegExp('public.t?').test('public.t12'));
  assert.ok(globToRegExp('a.b(c)[d]+').test('a.b(c)[d]+'), 'regexp specials are literal');
  assert.ok(globToRegExp('a.\\*').test('a.*'));
  assert.ok(!globToRegExp('a.\\*').test('a.x'));
  assert.ok(globToRegExp('"S".*').test('"S".x'), 'quotes are literal: globs are over exact names');
});

test('exactGlob matches exactly one name, whatever it holds', () => {
  const g = exactGlob({ schema: 'we*ird', name: 'a?b\\c' });
  assert.ok(!isGlob(g));
  assert.ok(globToRegExp(g).test('we*ird.a?b\\c'));
  assert.ok(!globToRegExp(g).test('weXird.aXb\\c'));
  assert.ok(isGlob('public.*'));
});

test('durations', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1h 30m'), 5_400_000);
  assert.equal(parseDuration('14d'), 14 * 86_400_000);
  assert.equal(parseDuration(45), 45_000);
  assert.equal(parseDuration('45'), 45_000);
  for (const bad of ['30 parsecs', '5 fortnights', '', 's', '1.5s', '-3s', '30sec', '1w']) assert.equal(parseDuration(bad), null, bad);
  assert.equal(parseDuration(-1), null);
  assert.equal(parseDuration(1.5), null);
});

test('did you mean', () => {
  assert.equal(didYouMean('source', ['sources', 'targets', 'relgroup']), 'did you mean "sources"?');
  assert.equal(didYouMean('relgruop', ['sources', 'relgroup']), 'did you mean "relgroup"?');
  assert.equal(didYouMean('colour', ['sources', 'targets', 'checktime']), undefined);
  assert.equal(didYouMean('East', ['east', 'west']), 'did you mean "east"?');
  assert.equal(editDistance('ab', 'ba'), 1);
});
