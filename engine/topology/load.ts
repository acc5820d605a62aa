/**
 * bucardo.yaml -> Topology. Four passes, each adding to one list of problems so the
 * user sees every problem of the file at once (graphile-migrate's parseSettings):
 * YAML parsing with `${env:...}` interpolation, the JSON Schema, building the trusted
 * form, and the checks that need the whole topology. It connects to nothing.
 */
import fs from 'node:fs';
import { BucardoError, TopologyError, type Problem } from '../errors.js';
import { buildTopology } from './build.js';
import { checkTopology } from './checks.js';
import { checkSchema } from './schema.js';
import { checkModuleExports } from './modules.js';
import { parseSource } from './source.js';
import type { Topology } from './types.js';

/** Alias expansions yaml allows per node before it refuses the document (its default is 100). */
const MAX_ALIAS_COUNT = 1000;

/** Reads and validates a topology file. `file` is kept as given, for messages. */
export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new BucardoError('topology_not_found', `topology file ${file} does not exist`, {
        hint: 'pass -f PATH, set BUCARDO_FILE, or create ./bucardo.yaml',
      });
    }
    if (code === 'EISDIR') throw new BucardoError('topology_unreadable', `topology file ${file} is a directory, not a file`);
    throw new BucardoError('topology_unreadable', `cannot read topology file ${file} (${code ?? String(e)})`, { hint: 'check the path and its permissions' });
  }
  return validateTopologyText(text, file);
}

/** Validates topology text; `file` only names it in problems. Throws TopologyError with every problem. */
export function validateTopologyText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Topology {
  const src = parseSource(text, file, env);
  const problems: Problem[] = [...src.problems];
  // After a YAML syntax error the tree is a guess: checking it would mostly report noise.
  if (src.doc.errors.length) throw new TopologyError(sortProblems(problems));

  let raw: unknown;
  try {
    raw = src.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // yaml refuses a document whose aliases would expand into too many nodes (an "alias
    // bomb"): bad input like any other, reported at the first alias
    if (!(e instanceof ReferenceError) || !/alias/i.test(e.message)) throw e;
    throw new TopologyError([
      {
        file,
        ...src.firstAliasPos(),
        message: `YAML aliases here expand into too many nodes (more than ${MAX_ALIAS_COUNT} alias uses per node): the file is refused as a resource-exhaustion risk`,
        hint: 'write the repeated values out, or use fewer nested aliases',
      },
    ]);
  }
  if (raw === null || raw === undefined) {
    throw new TopologyError([
      { file, line: 1, col: 1, message: 'the topology file is empty', hint: 'start with "version: 1", then databases:, relgroups: and syncs:' },
    ]);
  }
  // The env pass, the schema and the builder may each notice one bad value (an unset
  // variable leaves an empty url): a position already reported by an earlier pass is not
  // reported again.
  const earlier = new Set<string>();
  const pass: Problem[] = [];
  const add = (p: Problem) => {
    if (!earlier.has(`${p.line}:${p.col}`)) pass.push(p);
  };
  const endPass = () => {
    for (const p of pass) earlier.add(`${p.line}:${p.col}`);
    problems.push(...pass.splice(0));
  };
  for (const p of problems) earlier.add(`${p.line}:${p.col}`);
  for (const issue of checkSchema(raw)) {
    const pos = issue.at === 'key' ? src.keyPos(issue.path) : src.valuePos(issue.path);
    add({ file, ...pos, message: issue.message, ...(issue.hint ? { hint: issue.hint } : {}) });
  }
  endPass();
  const ctx = {
    file,
    pos: (path: readonly (string | number)[], at: 'key' | 'value') => (at === 'key' ? src.keyPos(path) : src.valuePos(path)),
    report: (path: readonly (string | number)[], at: 'key' | 'value', message: string, hint?: string) => {
      const pos = at === 'key' ? src.keyPos(path) : src.valuePos(path);
      add({ file, ...pos, message, ...(hint ? { hint } : {}) });
    },
  };
  const { topology, origins } = buildTopology(raw, file, ctx);
  checkTopology(topology, origins, raw, ctx);
  endPass();
  if (problems.length) throw new TopologyError(sortProblems(problems));
  return topology;
}

function sortProblems(problems: Problem[]): Problem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
    .map(({ p }) => p);
}

/**
 * loadTopology, then each module it names imported and its function checked (SPEC section
 * 6): what validate, plan and apply do, so a module that does not export its function is
 * found before anything is installed, not by the runner.
 */
export async function loadTopologyAndModules(file: string): Promise<Topology> {
  const t = loadTopology(file);
  const problems = await checkModuleExports(t);
  if (problems.length) {
    throw new TopologyError(
      sortProblems(problems.map((p) => ({ file, line: p.ref.pos.line, col: p.ref.pos.col, message: p.message, ...(p.hint ? { hint: p.hint } : {}) }))),
    );
  }
  return t;
}
