/**
 * The custom-code parts of a sync as apply registers them in the `sync` row's detail and
 * the runner reads them back (SPEC section 6). A module is stored by its path relative to
 * the topology file and the sha256 of its content, never by an absolute path: the plan
 * made in CI and the apply made by a deploy job, in different folders, must agree.
 */
import path from 'node:path';
import type { ConflictStrategy, ModuleRef, QualifiedName, TargetOverride } from './types.js';

/** A module as registered. */
export interface RegisteredModule {
  path: string;
  sha256: string;
  export: ModuleRef['export'];
}

export type RegisteredConflict = Exclude<ConflictStrategy, { kind: 'custom' }> | { kind: 'custom'; module: RegisteredModule };

export interface RegisteredOverride {
  name?: QualifiedName;
  columns?: string[];
  where?: string;
  transform?: RegisteredModule;
}

export function registeredModule(m: ModuleRef): RegisteredModule {
  return { path: m.path, sha256: m.sha256, export: m.export };
}

export function registeredConflict(c: ConflictStrategy): RegisteredConflict {
  return c.kind === 'custom' ? { kind: 'custom', module: registeredModule(c.module) } : c;
}

export function registeredOverride(o: TargetOverride): RegisteredOverride {
  return {
    ...(o.name ? { name: o.name } : {}),
    ...(o.columns ? { columns: o.columns } : {}),
    ...(o.where ? { where: o.where } : {}),
    ...(o.transform ? { transform: registeredModule(o.transform) } : {}),
  };
}

/** A registered module back to a ModuleRef, resolved against the runner's topology file; `pos` unknown. */
export function moduleFromRegistered(m: RegisteredModule, topologyFile: string): ModuleRef {
  return { path: m.path, file: path.resolve(path.dirname(path.resolve(topologyFile)), m.path), sha256: m.sha256, export: m.export, pos: { line: 0, col: 0 } };
}

export function conflictFromRegistered(c: RegisteredConflict, topologyFile: string): ConflictStrategy {
  return c.kind === 'custom' ? { kind: 'custom', module: moduleFromRegistered(c.module, topologyFile) } : c;
}
