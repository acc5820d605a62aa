import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateTopologyText } from '../../engine/topology/load.js';
import { TopologyError, type Problem } from '../../engine/errors.js';

const DBS = `version: 1
databases:
  a: {url: "postgres://h/a"}
  b: {url: "postgres://h/b"}
  c: {url: "postgres://h/c", makedelta: true}
relgroups:
  g: {tables: [public.t, public.u]}
  h: {tables: [public.t]}
  k: {tables: [{match: "public.*"}], exclude: [public.t]}
  m: {tables: [other.x]}
syncs:
`;

function problems(syncs: string): Problem[] {
  try {
    validateTopologyText(DBS + syncs, 't.yaml', {});
  } catch (e) {
    if (e instanceof TopologyError) return e.problems;
    throw e;
  }
  return [];
}
const at = (syncs: string) => problems(syncs).map((p) => `${p.line}:${p.col}: ${p.message}`);
const L = DBS.split('\n').length; // line of the first sync

test('unknown database and relgroup references, at the reference, with a hint', () => {
  const p = problems(`  s: {relgroup: gg, sources: [a, bb], targets: [zz]}\n`);
  assert.deepEqual(
    p.map((x) => `${x.line}:${x.col}: ${x.message}`),
    [
      `${L}:17: sync "s" names relgroup "gg", which is not defined under relgroups:`,
      `${L}:34: sync "s" names database "bb" in sources, which is not defined under databases:`,
      `${L}:49: sync "s" names database "zz" in targets, which is not defined under databases:`,
    ],
  );
  assert.deepEqual(
    p.map((x) => x.hint),
    ['did you mean "g"?', 'did you mean "b"?', 'defined databases: a, b, c'],
  );
});

test('a database both source and target of one sync', () => {
  assert.deepEqual(at(`  s: {relgroup: g, sources: [a, b], targets: [c, b]}\n`), [`${L}:50: database "b" is both a source and a target of sync "s"`]);
});

test('fullcopy: exactly one source, and no conflict strategy', () => {
  assert.deepEqual(at(`  s: {kind: fullcopy, relgroup: g, sources: [a, b], targets: [c], conflict: latest}\n`), [
    `${L}:45: fullcopy sync "s" has 2 sources; a fullcopy copies every row from exactly one source`,
    `${L}:67: sync "s" is a fullcopy, which has one source and so no conflicts: conflict has no meaning here`,
  ]);
  assert.deepEqual(at(`  s: {kind: fullcopy, relgroup: g, sources: [a], targets: [b, c]}\n`), []);
});

test('one source and no targets replicates nothing; no sources at all is a schema problem', () => {
  assert.deepEqual(at(`  s: {relgroup: g, sources: [a]}\n`), [`${L}:20: sync "s" has one source and no targets, so it replicates nothing`]);
  assert.deepEqual(at(`  s: {relgroup: g, sources: [a, b]}\n`), [], 'multi-source without targets is fine');
  assert.deepEqual(at(`  s: {relgroup: g, sources: []}\n`), [`${L}:29: syncs.s.sources must not be an empty list`]);
  assert.deepEqual(at(`  s: {relgroup: g}\n`), [`${L}:3: syncs.s is missing the required key "sources"`]);
});

test('priority lists: unknown databases, non-sources, unranked sources', () => {
  assert.deepEqual(at(`  s: {relgroup: g, sources: [a, b], targets: [c], conflict: {priority: [a, c, x]}}\n`), [
    `${L}:62: the priority of sync "s" does not rank "b", a source of sync "s"`,
    `${L}:76: the priority of sync "s" names "c", which is not a source of sync "s"`,
    `${L}:79: the priority of sync "s" names database "x", which is not defined under databases:`,
  ]);
  assert.deepEqual(at(`  s: {relgroup: g, sources: [a, b], conflict: {priority: [b, a]}}\n`), []);
});

test('per-table priority lists are checked against every multi-source sync of the relgroup', () => {
  const text =
    DBS.replace('  h: {tables: [public.t]}', '  h: {tables: [{name: public.t, conflict: {priority: [a, c]}}]}') +
    `  s: {relgroup: h, sources: [a, b]}\n  one_way: {relgroup: h, sources: [c], targets: [b]}\n`;
  try {
    validateTopologyText(text, 't.yaml', {});
    assert.fail('invalid');
  } catch (e) {
    assert.ok(e instanceof TopologyError);
    assert.deepEqual(
      e.problems.map((p) => `${p.line}:${p.col}: ${p.message}`),
      [
        '8:44: the priority of table public.t in relgroup "h" does not rank "b", a source of sync "s"',
        '8:58: the priority of table public.t in relgroup "h" names "c", which is not a source of sync "s"',
      ],
    );
  }
});

test('loops: two delta syncs carrying a table in opposite directions', () => {
  const p = problems(`  s1: {relgroup: g, sources: [a], targets: [b]}\n  s2: {relgroup: h, sources: [b], targets: [a]}\n`);
  assert.equal(p.length, 1);
  assert.equal(`${p[0]!.line}:${p[0]!.col}`, `${L + 1}:31`);
  assert.equal(
    p[0]!.message,
    'syncs "s1" and "s2" both replicate table public.t, "s1" from "a" to "b" and "s2" from "b" to "a": changes would loop between the two syncs, and rows changed on both databases at once would be swapped, never resolved',
  );
  assert.equal(p[0]!.hint, 'to replicate both ways, use one multi-source sync with sources: [a, b]');
});

test('loops: a multi-source sync and a one-way sync the other way loop too; the same relgroup is named', () => {
  const p = problems(`  mm: {relgroup: g, sources: [a, b]}\n  back: {relgroup: g, sources: [b], targets: [a]}\n`);
  assert.equal(p.length, 1);
  assert.match(p[0]!.message, /both replicate the tables of relgroup "g"/);
});

test('no loop: one multi-source sync, disjoint tables, same direction, fullcopy, globs that exclude', () => {
  assert.deepEqual(at(`  mm: {relgroup: g, sources: [a, b], targets: [c]}\n`), []);
  assert.deepEqual(at(`  s1: {relgroup: g, sources: [a], targets: [b]}\n  s2: {relgroup: m, sources: [b], targets: [a]}\n`), []);
  assert.deepEqual(at(`  s1: {relgroup: g, sources: [a], targets: [b]}\n  s2: {relgroup: h, sources: [a], targets: [b, c]}\n`), []);
  assert.deepEqual(at(`  s1: {relgroup: h, sources: [a], targets: [b]}\n  s2: {kind: fullcopy, relgroup: h, sources: [b], targets: [a]}\n`), []);
  assert.deepEqual(at(`  s1: {relgroup: h, sources: [a], targets: [b]}\n  s2: {relgroup: k, sources: [b], targets: [a]}\n`), [], 'k excludes public.t');
});

test('loops: an exact table caught by a glob of another relgroup', () => {
  const p = problems(`  s1: {relgroup: g, sources: [a], targets: [b]}\n  s2: {relgroup: k, sources: [b], targets: [a]}\n`);
  assert.equal(p.length, 1);
  assert.match(p[0]!.message, /both replicate table public\.u/);
});

test('a relgroup referenced by no sync is fine', () => {
  assert.deepEqual(at(`  s: {relgroup: g, sources: [a], targets: [b]}\n`), []);
});
