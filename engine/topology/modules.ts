/**
 * The user's modules named in a topology (SPEC section 6): resolved against the topology
 * file's folder (never the current directory, so CI, a deploy job and the runner all find
 * the same file), read and hashed when the topology loads (a change of content is a plan
 * change), and imported only when asked: `validate`/`plan` check the export, the runner
 * calls it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildContext } from './build.js';
import type { Path } from './source.js';
import type { ModuleRef, Topology } from './types.js';
import { BucardoError } from '../errors.js';

const EXTENSIONS = ['.js', '.mjs'];

/** A module path of the file -> ModuleRef; problems (missing file, wrong extension) reported at the path. */
export function buildModuleRef(rel: string, topologyFile: string, exportName: ModuleRef['export'], at: Path, ctx: BuildContext): ModuleRef {
  const file = path.resolve(path.dirname(path.resolve(topologyFile)), rel);
  const ref: ModuleRef = { path: rel, file, sha256: '', export: exportName, pos: ctx.pos(at, 'value') };
  if (!EXTENSIONS.includes(path.extname(rel))) {
    ctx.report(
      at,
      'value',
      `module ${rel} is not an ES module file (.js or .mjs)`,
      `name the file that exports ${exportName}(), relative to the topology file`,
    );
    return ref;
  }
  let content: Buffer;
  try {
    content = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    ctx.report(
      at,
      'value',
      code === 'ENOENT' ? `module ${rel} does not exist (looked for ${file})` : `module ${rel} cannot be read (${code ?? String(e)})`,
      `module paths are relative to the topology file's folder; create it, exporting ${exportName}()`,
    );
    return ref;
  }
  ref.sha256 = crypto.createHash('sha256').update(content).digest('hex');
  return ref;
}

/** Every module a topology names, once per (file, export). */
export function modulesOf(t: Topology): ModuleRef[] {
  const out = new Map<string, ModuleRef>();
  const add = (m: ModuleRef | undefined) => {
    if (m && !out.has(`${m.file}\u0000${m.export}`)) out.set(`${m.file}\u0000${m.export}`, m);
  };
  for (const s of t.syncs.values()) {
    if (s.conflict.kind === 'custom') add(s.conflict.module);
    add(s.hooks.before_sync);
    add(s.hooks.after_sync);
    add(s.hooks.on_error);
  }
  for (const g of t.relgroups.values()) {
    for (const e of g.tables) {
      if (e.conflict?.kind === 'custom') add(e.conflict.module);
      if (e.kind === 'name') for (const o of e.targets?.values() ?? []) add(o.transform);
    }
  }
  return [...out.values()];
}

/** One problem with a module's export, at the module's position. */
export interface ModuleProblem {
  ref: ModuleRef;
  message: string;
  hint?: string;
}

/**
 * Imports each module and checks it exports its function. Importing runs the module's
 * top-level code, as the runner will: that is the user's code, reviewed with the topology.
 */
export async function checkModuleExports(t: Topology): Promise<ModuleProblem[]> {
  const problems: ModuleProblem[] = [];
  for (const ref of modulesOf(t)) {
    if (!ref.sha256) continue; // not readable: already reported where it was loaded
    try {
      const fn = await importExport(ref);
      if (typeof fn !== 'function') {
        problems.push({ ref, message: `module ${ref.path} does not export a function ${ref.export}`, hint: `add: export function ${ref.export}(...) { ... }` });
      }
    } catch (e) {
      problems.push({
        ref,
        message: `module ${ref.path} cannot be imported: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
        hint: 'fix the module: it must be an ES module (import/export syntax)',
      });
    }
  }
  return problems;
}

/**
 * The module's export, from the content whose hash is `ref.sha256` only. The URL carries
 * the hash, so a module edited while a runner lives is imported afresh (Node caches
 * modules by URL) and an unchanged one is imported once.
 */
export async function importExport(ref: ModuleRef): Promise<unknown> {
  const mod = (await import(`${pathToFileURL(ref.file).href}?sha256=${ref.sha256}`)) as Record<string, unknown>;
  return mod[ref.export] ?? (mod.default && typeof mod.default === 'object' ? (mod.default as Record<string, unknown>)[ref.export] : undefined);
}

/** The current sha256 of a module file, or '' when it cannot be read. */
export function hashModuleFile(file: string): string {
  try {
    return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch {
    return '';
  }
}

/**
 * The runner's way to a module's function: only the content apply registered (a file
 * edited since is refused until plan and apply take it, so a run never executes code that
 * no plan showed), imported once per content.
 */
export async function loadRegisteredFunction(ref: ModuleRef, sync: string): Promise<(...args: unknown[]) => unknown> {
  const now = hashModuleFile(ref.file);
  if (!now) {
    throw new BucardoError('module_missing', `sync ${sync}: module ${ref.path} (${ref.file}) cannot be read`, {
      hint: 'start the runner with the topology file apply used, next to its modules',
    });
  }
  if (now !== ref.sha256) {
    throw new BucardoError(
      'module_changed',
      `sync ${sync}: module ${ref.path} changed since apply installed it (sha256 ${ref.sha256.slice(0, 12)}, now ${now.slice(0, 12)})`,
      {
        hint: 'run bucardo plan to review the change, then bucardo apply',
      },
    );
  }
  const fn = await importExport(ref);
  if (typeof fn !== 'function') throw new BucardoError('module_invalid', `sync ${sync}: module ${ref.path} does not export a function ${ref.export}`);
  return fn as (...args: unknown[]) => unknown;
}
