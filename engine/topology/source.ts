/**
 * The YAML side of a topology file: parsing with positions, `${env:...}` interpolation in
 * place, and the map from a JSON path (what ajv and the semantic checks speak) back to
 * the line and column of a key or value (what users read).
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair } from 'yaml';
import type { Problem } from '../errors.js';
import type { Pos } from './types.js';

export type Path = readonly (string | number)[];

export interface Source {
  file: string;
  doc: Document.Parsed;
  /** Problems found while parsing and interpolating. */
  problems: Problem[];
  /** 1-based position of the key at `path` (the value's when it has no key, e.g. a list item). */
  keyPos(path: Path): Pos;
  /** 1-based position of the value at `path` (the key's when the value is empty). */
  valuePos(path: Path): Pos;
  /** 1-based position of the first alias (`*name`) in the document, else 1:1. */
  firstAliasPos(): Pos;
}

const ENV_REF = /\$\$\{|\$\{env:([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `text`, interpolating `${env:NAME}` / `${env:NAME:-default}` in every string scalar. */
export function parseSource(text: string, file: string, env: NodeJS.ProcessEnv): Source {
  const lineCounter = new LineCounter();
  // merge: `<<: *defaults` is how people share sync options in YAML.
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: true });
  const problems: Problem[] = [];
  const at = (offset: number): Pos => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  for (const e of [...doc.errors, ...doc.warnings]) {
    const { line, col } = at(e.pos[0]);
    // yaml's messages end with a code excerpt when prettyErrors is on; ours is off, first line only.
    problems.push({ file, line, col, message: `YAML: ${e.message.split('\n')[0]}` });
  }

  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('$')) return;
      const pos = node.range ? at(node.range[0]) : { line: 1, col: 1 };
      node.value = interpolate(node.value, env, (message, hint) => problems.push({ file, ...pos, message, hint }));
    },
  });

  const find = (path: Path): { key?: Node; value?: Node | null } => {
    let node: unknown = doc.contents;
    let key: Node | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(doc);
      const pair = isMap(node) ? findPair(node.items, String(seg), doc) : undefined;
      if (pair) {
        key = isScalar(pair.key) ? pair.key : undefined;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        key = undefined;
        node = node.items[seg];
      } else {
        // Not in the document (a default, or a missing key): the deepest node found.
        return { key, value: node as Node | null };
      }
    }
    return { key, value: node as Node | null };
  };
  const posOf = (n: Node | null | undefined): Pos | undefined => (n?.range ? at(n.range[0]) : undefined);
  const start: Pos = { line: 1, col: 1 };
  return {
    file,
    doc,
    problems,
    keyPos: (path) => {
      const f = find(path);
      return posOf(f.key) ?? posOf(f.value) ?? start;
    },
    valuePos: (path) => {
      const f = find(path);
      const v = isScalar(f.value) && f.value.value === null && f.key ? undefined : f.value;
      return posOf(v) ?? posOf(f.key) ?? start;
    },
    firstAliasPos: () => {
      let pos: Pos | undefined;
      visit(doc, {
        Alias(_k, node) {
          pos = posOf(node);
          return visit.BREAK;
        },
      });
      return pos ?? start;
    },
  };
}

function findPair(items: Pair[], key: string, doc: Document.Parsed): Pair | undefined {
  for (const p of items) {
    if (isScalar(p.key) && String(p.key.value) === key) return p;
  }
  // A key brought in by `<<: *anchor`: point at the merged mapping's key.
  for (const p of items) {
    if (!isScalar(p.key) || p.key.value !== '<<') continue;
    const sources = isSeq(p.value) ? p.value.items : [p.value];
    for (const item of sources) {
      const s: unknown = isAlias(item) ? item.resolve(doc) : item;
      if (isMap(s)) {
        const found = findPair(s.items as Pair[], key, doc);
        if (found && isPair(found)) return found;
      }
    }
  }
  return undefined;
}

/**
 * Replaces every `${env:NAME}` and `${env:NAME:-default}` (default when unset or empty,
 * as in sh); `$${` is a literal `${`. Reports, never throws, so every unset variable of
 * the file is listed at once.
 */
function interpolate(value: string, env: NodeJS.ProcessEnv, report: (message: string, hint?: string) => void): string {
  return value.replace(ENV_REF, (_whole, ref: string | undefined) => {
    if (ref === undefined) return '${';
    const sep = ref.indexOf(':-');
    const name = sep < 0 ? ref : ref.slice(0, sep);
    if (!ENV_NAME.test(name)) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the hint shows the topology file's own ${env:...} syntax
      report(`\${env:${name}} is not a valid environment variable reference`, 'write ${env:NAME} or ${env:NAME:-default}, NAME being letters, digits and _');
      return '';
    }
    const v = env[name];
    if (v !== undefined && (v !== '' || sep < 0)) return v;
    if (sep >= 0) return ref.slice(sep + 2);
    report(`environment variable ${name} is not set`, `set ${name}, or give a default: \${env:${name}:-default}`);
    return '';
  });
}

/** `syncs.shop_mm.sources[1]`, for messages. */
export function formatPath(path: Path): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += (s ? '.' : '') + (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg) ? seg : JSON.stringify(seg));
  }
  return s || 'the top level';
}
