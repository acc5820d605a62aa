/**
 * Checks that need the whole topology: references between sections, the shape of each
 * sync, and syncs that together would replicate a table round in a loop. They run even
 * when the schema found problems, on whatever could be built, so a file's problems are
 * all reported in one go.
 */
import type { BuildContext, Origins } from './build.js';
import { globToRegExp } from './relnames.js';
import type { Path } from './source.js';
import { didYouMean } from './suggest.js';
import type { ConflictStrategy, RelgroupSpec, SyncSpec, TableEntry, Topology } from './types.js';

export function checkTopology(t: Topology, origins: Origins, raw: unknown, ctx: BuildContext): void {
  for (const sync of t.syncs.values()) checkSync(t, sync, origins, raw, ctx);
  for (const group of t.relgroups.values()) {
    checkTablePriorities(t, group, origins, ctx);
    checkTargetOverrides(t, group, ctx);
  }
  checkLoops(t, raw, ctx);
}

/** Index of `name` in the raw list at `path` (the list as written, for positions). */
function indexIn(raw: unknown, path: Path, name: string): number {
  let cur = raw;
  for (const seg of path) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[seg] : undefined;
  return Array.isArray(cur) ? cur.indexOf(name) : -1;
}

function checkSync(t: Topology, s: SyncSpec, origins: Origins, raw: unknown, ctx: BuildContext): void {
  const path: Path = ['syncs', s.name];
  const at = (list: 'sources' | 'targets', db: string): Path => {
    const i = indexIn(raw, [...path, list], db);
    return i < 0 ? [...path, list] : [...path, list, i];
  };
  if (s.relgroup !== '' && !t.relgroups.has(s.relgroup)) {
    ctx.report(
      [...path, 'relgroup'],
      'value',
      `sync "${s.name}" names relgroup "${s.relgroup}", which is not defined under relgroups:`,
      didYouMean(s.relgroup, t.relgroups.keys()) ?? definedHint('relgroups', t.relgroups.keys()),
    );
  }
  for (const list of ['sources', 'targets'] as const) {
    for (const db of s[list]) {
      if (!t.databases.has(db)) {
        ctx.report(
          at(list, db),
          'value',
          `sync "${s.name}" names database "${db}" in ${list}, which is not defined under databases:`,
          didYouMean(db, t.databases.keys()) ?? definedHint('databases', t.databases.keys()),
        );
      }
    }
  }
  for (const db of s.targets) {
    if (s.sources.includes(db)) {
      ctx.report(
        at('targets', db),
        'value',
        `database "${db}" is both a source and a target of sync "${s.name}"`,
        'a target only receives changes; list it once, under sources if its changes must be replicated too',
      );
    }
  }
  if (s.kind === 'fullcopy') {
    if (s.sources.length > 1) {
      ctx.report(
        [...path, 'sources'],
        'value',
        `fullcopy sync "${s.name}" has ${s.sources.length} sources; a fullcopy copies every row from exactly one source`,
        'keep one source, or use kind: delta for a multi-source sync',
      );
    }
    if (origins.has(s.conflict)) {
      ctx.report(
        [...path, 'conflict'],
        'key',
        `sync "${s.name}" is a fullcopy, which has one source and so no conflicts: conflict has no meaning here`,
        'remove conflict',
      );
    }
  }
  if (s.sources.length === 1 && s.targets.length === 0 && !s.foreignTargets?.length) {
    ctx.report(
      [...path, 'sources'],
      'key',
      `sync "${s.name}" has one source and no targets, so it replicates nothing`,
      'add targets, or more sources for a multi-source sync',
    );
  }
  checkPriority(t, s.conflict, origins, [s], `sync "${s.name}"`, ctx);
}

/** `{priority: [...]}` must rank exactly the sources of every sync it applies to. */
function checkPriority(t: Topology, c: ConflictStrategy | undefined, origins: Origins, syncs: SyncSpec[], owner: string, ctx: BuildContext): void {
  if (c?.kind !== 'priority') return;
  const path = [...(origins.get(c) ?? []), 'priority'];
  c.order.forEach((db, i) => {
    if (!t.databases.has(db)) {
      ctx.report(
        [...path, i],
        'value',
        `the priority of ${owner} names database "${db}", which is not defined under databases:`,
        didYouMean(db, t.databases.keys()),
      );
      return;
    }
    for (const s of syncs) {
      if (!s.sources.includes(db)) {
        ctx.report(
          [...path, i],
          'value',
          `the priority of ${owner} names "${db}", which is not a source of sync "${s.name}"`,
          `rank only the sources: ${s.sources.join(', ')}`,
        );
      }
    }
  });
  for (const s of syncs) {
    const missing = s.sources.filter((db) => !c.order.includes(db));
    if (missing.length && s.sources.length > 1) {
      ctx.report(
        path,
        'key',
        `the priority of ${owner} does not rank ${missing.map((d) => `"${d}"`).join(', ')}, a source of sync "${s.name}"`,
        'list every source, highest priority first',
      );
    }
  }
}

function checkTablePriorities(t: Topology, g: RelgroupSpec, origins: Origins, ctx: BuildContext): void {
  // Only syncs with two or more sources have conflicts to rank.
  const syncs = [...t.syncs.values()].filter((s) => s.relgroup === g.name && s.kind === 'delta' && s.sources.length > 1);
  for (const e of g.tables) {
    const what = e.kind === 'name' ? `table ${e.table.schema}.${e.table.name}` : `tables matching ${e.pattern}`;
    checkPriority(t, e.conflict, origins, syncs, `${what} in relgroup "${g.name}"`, ctx);
  }
}

/**
 * `targets:` of a table entry name target databases of the syncs using the relgroup: an
 * override for a database that only sends, or that no sync of the group reaches, would
 * silently do nothing.
 */
function checkTargetOverrides(t: Topology, g: RelgroupSpec, ctx: BuildContext): void {
  const syncs = [...t.syncs.values()].filter((s) => s.relgroup === g.name);
  g.tables.forEach((e, i) => {
    if (e.kind !== 'name' || !e.targets) return;
    for (const db of e.targets.keys()) {
      const at: Path = ['relgroups', g.name, 'tables', i, 'targets', db];
      if (!t.databases.has(db) && !t.foreignDatabases?.has(db)) {
        ctx.report(
          at,
          'key',
          `table ${e.table.schema}.${e.table.name} in relgroup "${g.name}" has overrides for database "${db}", which is not defined under databases:`,
          didYouMean(db, t.databases.keys()) ?? definedHint('databases', t.databases.keys()),
        );
        continue;
      }
      const asSource = syncs.find((s) => s.sources.includes(db));
      if (asSource) {
        ctx.report(
          at,
          'key',
          `table ${e.table.schema}.${e.table.name} in relgroup "${g.name}" has overrides for database "${db}", a source of sync "${asSource.name}": overrides apply to targets only`,
          'put columns and where on the table entry itself to apply them to every receiver, sources included',
        );
      } else if (!syncs.some((s) => s.targets.includes(db) || s.foreignTargets?.includes(db))) {
        const targets = [...new Set(syncs.flatMap((s) => [...s.targets, ...(s.foreignTargets ?? [])]))];
        ctx.report(
          at,
          'key',
          `table ${e.table.schema}.${e.table.name} in relgroup "${g.name}" has overrides for database "${db}", which no sync of the relgroup targets`,
          targets.length ? `targets of the syncs using "${g.name}": ${targets.join(', ')}` : `no sync using "${g.name}" has targets`,
        );
      }
    }
  });
}

function definedHint(section: string, names: Iterable<string>): string {
  const all = [...names];
  return all.length ? `defined ${section}: ${all.join(', ')}` : `no ${section} are defined`;
}

// ---- loops ---------------------------------------------------------------------------

/** Do two relgroups share a table? Globs against globs are only known after catalog resolution. */
function sharedTable(a: RelgroupSpec, b: RelgroupSpec): string | null {
  if (a === b) return `the tables of relgroup "${a.name}"`;
  const names = (g: RelgroupSpec) => g.tables.filter((e): e is Extract<TableEntry, { kind: 'name' }> => e.kind === 'name');
  const excluded = (g: RelgroupSpec, full: string) => g.exclude.some((x) => globToRegExp(x.pattern).test(full));
  const covers = (g: RelgroupSpec, full: string, exact: string) =>
    !excluded(g, full) && g.tables.some((e) => (e.kind === 'name' ? `${e.table.schema}.${e.table.name}` === exact : globToRegExp(e.pattern).test(full)));
  for (const e of [...names(a), ...names(b)]) {
    const full = `${e.table.schema}.${e.table.name}`;
    if (covers(a, full, full) && covers(b, full, full)) return `table ${full}`;
  }
  return null;
}

/** source -> receiver pairs of one delta sync. */
function edges(s: SyncSpec): [string, string][] {
  const out: [string, string][] = [];
  for (const from of s.sources) for (const to of [...s.sources, ...s.targets]) if (from !== to) out.push([from, to]);
  return out;
}

/**
 * Two delta syncs that carry the same table A -> B and B -> A. Each sync resolves only its
 * own conflicts, so a row changed on A and B at once ends up swapped rather than
 * resolved, and with makedelta the changes go round for ever. One multi-source sync
 * with both as sources is the way to replicate both ways.
 */
function checkLoops(t: Topology, raw: unknown, ctx: BuildContext): void {
  const syncs = [...t.syncs.values()].filter((s) => s.kind === 'delta' && t.relgroups.has(s.relgroup));
  for (let j = 1; j < syncs.length; j++) {
    for (let i = 0; i < j; i++) {
      const [first, second] = [syncs[i]!, syncs[j]!];
      const shared = sharedTable(t.relgroups.get(first.relgroup)!, t.relgroups.get(second.relgroup)!);
      if (!shared) continue;
      const back = edges(second).find(([from, to]) => edges(first).some(([f, x]) => f === to && x === from));
      if (!back) continue;
      const [from, to] = back;
      const idx = indexIn(raw, ['syncs', second.name, 'sources'], from);
      ctx.report(
        idx < 0 ? ['syncs', second.name] : ['syncs', second.name, 'sources', idx],
        idx < 0 ? 'key' : 'value',
        `syncs "${first.name}" and "${second.name}" both replicate ${shared}, "${first.name}" from "${to}" to "${from}" and "${second.name}" from "${from}" to "${to}": ` +
          'changes would loop between the two syncs, and rows changed on both databases at once would be swapped, never resolved',
        `to replicate both ways, use one multi-source sync with sources: [${to}, ${from}]`,
      );
    }
  }
}
