/**
 * JSON Schema validation of the raw topology (schemas/topology.schema.json) with ajv, and
 * the translation of ajv's errors into problems a person can act on.
 *
 * ajv with `allErrors` reports every branch of a failed `oneOf` (a table entry that is a
 * mapping with a typo yields errors from the string branch, the `match:` branch and the
 * `{schema, table}` branch). Rather than untangle them from schemaPaths (which restart at
 * every `$ref`), a failed `oneOf` is validated again branch by branch, and only the branch
 * that fits the value best is reported.
 */
import fs from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { topologySchemaPath } from '../paths.js';
import { DURATION_EXAMPLES } from './duration.js';
import { closest, didYouMean } from './suggest.js';
import { formatPath, type Path } from './source.js';

type JsonSchema = { [k: string]: unknown };

/** One schema violation, before positions are attached. */
export interface SchemaIssue {
  path: Path;
  /** Position at the key (unknown keys, bad names, missing keys) rather than the value. */
  at: 'key' | 'value';
  message: string;
  hint?: string;
}

interface RawError {
  path: Path;
  keyword: string;
  params: Record<string, unknown>;
  schemaPath: string;
  parentSchema?: JsonSchema;
  data?: unknown;
}

let compiled: { ajv: Ajv2020; root: JsonSchema; id: string } | null = null;

function schema() {
  if (compiled) return compiled;
  const root = JSON.parse(fs.readFileSync(topologySchemaPath(), 'utf8')) as JsonSchema;
  // verbose: errors carry their parentSchema, whose `properties` feed "did you mean".
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
  ajv.addSchema(root);
  compiled = { ajv, root, id: String(root.$id) };
  return compiled;
}

/** The parsed schema document (for tests and docs). */
export function topologySchema(): JsonSchema {
  return schema().root;
}

/** Every schema violation of `data`, one per real mistake. */
export function checkSchema(data: unknown): SchemaIssue[] {
  const raw = collect('', data, []);
  return toIssues(raw);
}

function validator(ptr: string): ValidateFunction {
  const { ajv, id } = schema();
  const v = ajv.getSchema(`${id}#${ptr}`);
  if (!v) throw new Error(`topology schema has no ${ptr}`);
  return v;
}

function collect(ptr: string, data: unknown, base: Path): RawError[] {
  const v = validator(ptr);
  if (v(data)) return [];
  const errors = (v.errors ?? []).map((e) => toRaw(e, data, base));
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  const outer = oneOfs.filter((o) => !oneOfs.some((p) => p !== o && isPrefix(p.path, o.path) && p.path.length < o.path.length));
  const plain = errors.filter((e) => !outer.some((o) => isPrefix(o.path, e.path)));
  const out = [...plain];
  const seen = new Set<string>();
  for (const o of outer) {
    if (seen.has(formatPath(o.path))) continue;
    seen.add(formatPath(o.path));
    const rel = o.path.slice(base.length);
    const at = schemaPointerAt(ptr, rel);
    if (!at) {
      out.push(o);
      continue;
    }
    out.push(...bestBranch(at, dataAt(data, rel), o.path));
  }
  return out;
}

/** Among the branches of the oneOf at `ptr`, the errors of the one the value was meant for. */
function bestBranch(ptr: string, data: unknown, path: Path): RawError[] {
  const node = pointer(ptr);
  const key = Array.isArray(node.oneOf) ? 'oneOf' : 'anyOf';
  const branches = node[key] as JsonSchema[];
  let best: RawError[] | null = null;
  for (let i = 0; i < branches.length; i++) {
    const errs = collect(`${ptr}/${key}/${i}`, data, path);
    const wrongType = errs.some((e) => e.keyword === 'type' && e.path.length === path.length);
    if (wrongType) continue;
    if (!best || errs.length < best.length) best = errs;
  }
  if (best) return best;
  return [{ path, keyword: 'branchType', params: { expected: branches.map((b) => describeBranch(b)).join(', or ') }, schemaPath: ptr, data }];
}

function describeBranch(b: JsonSchema): string {
  const s = deref(b);
  if (Array.isArray(s.enum)) return `one of ${s.enum.join(', ')}`;
  if (s.type === 'object' && Array.isArray(s.required) && s.required.length) return `a mapping with "${String(s.required[0])}"`;
  return typeWord(String(s.type));
}

function toRaw(e: ErrorObject, data: unknown, base: Path): RawError {
  const rel = splitPointer(e.instancePath, data);
  // propertyNames errors carry the offending key beside params, not in them.
  const params = { ...(e.params as Record<string, unknown>), ...(e.propertyName !== undefined ? { propertyName: e.propertyName } : {}) };
  return {
    path: [...base, ...rel],
    keyword: e.keyword,
    params,
    schemaPath: e.schemaPath,
    parentSchema: e.parentSchema as JsonSchema | undefined,
    data: e.data,
  };
}

// ---- schema navigation ---------------------------------------------------------------

function pointer(ptr: string): JsonSchema {
  let node: unknown = schema().root;
  for (const seg of ptr.split('/').slice(1)) node = (node as JsonSchema)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node as JsonSchema;
}

function deref(s: JsonSchema): JsonSchema {
  return typeof s.$ref === 'string' ? deref(pointer(s.$ref.replace(/^#/, ''))) : s;
}

function derefPtr(ptr: string): string {
  const s = pointer(ptr);
  return typeof s.$ref === 'string' ? derefPtr(s.$ref.replace(/^#/, '')) : ptr;
}

/** JSON pointer (into the schema) of the subschema that validates `rel` below `ptr`. */
function schemaPointerAt(ptr: string, rel: Path): string | null {
  let cur = derefPtr(ptr);
  for (const seg of rel) {
    const s = pointer(cur);
    const props = s.properties as JsonSchema | undefined;
    if (props && typeof seg === 'string' && seg in props) cur = `${cur}/properties/${escapePointer(seg)}`;
    else if (typeof seg === 'number' && s.items) cur = `${cur}/items`;
    else if (s.additionalProperties && typeof s.additionalProperties === 'object') cur = `${cur}/additionalProperties`;
    else return null;
    cur = derefPtr(cur);
  }
  const s = pointer(cur);
  return s.oneOf || s.anyOf ? cur : null;
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function splitPointer(p: string, data: unknown): Path {
  if (p === '') return [];
  const out: (string | number)[] = [];
  let cur = data;
  for (const raw of p.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const k = Array.isArray(cur) && /^[0-9]+$/.test(seg) ? Number(seg) : seg;
    out.push(k);
    cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function dataAt(data: unknown, rel: Path): unknown {
  let cur = data;
  for (const seg of rel) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[seg] : undefined;
  return cur;
}

function isPrefix(a: Path, b: Path): boolean {
  return a.length <= b.length && a.every((s, i) => s === b[i]);
}

// ---- messages ------------------------------------------------------------------------

/** Values under these keys are never echoed: they may hold a password. */
const SECRET_KEYS = new Set(['password', 'url']);

function typeWord(t: string): string {
  switch (t) {
    case 'object':
      return 'a mapping (key: value)';
    case 'array':
      return 'a list';
    case 'boolean':
      return 'true or false';
    case 'integer':
      return 'a whole number';
    case 'string':
      return 'a string';
    default:
      return t;
  }
}

function toIssues(raw: RawError[]): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  // A typo'd key produces an "unknown key" and a "missing key"; the first, with its hint, says it all.
  const typoFor = new Set<string>();
  for (const e of raw) {
    if (e.keyword !== 'additionalProperties') continue;
    const allowed = Object.keys((e.parentSchema?.properties as JsonSchema | undefined) ?? {});
    const guess = closest(String(e.params.additionalProperty), allowed);
    if (guess) typoFor.add(`${formatPath(e.path)}\0${guess}`);
  }
  for (const e of raw) {
    const issue = describe(e, typoFor);
    if (issue) issues.push(issue);
  }
  return issues;
}

function describe(e: RawError, typoFor: Set<string>): SchemaIssue | null {
  const name = formatPath(e.path);
  const last = e.path[e.path.length - 1];
  const secret = typeof last === 'string' && SECRET_KEYS.has(last);
  const shown = (v: unknown) => (secret ? '' : `${JSON.stringify(v)} `);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const allowed = Object.keys((e.parentSchema?.properties as JsonSchema | undefined) ?? {});
      return {
        path: [...e.path, key],
        at: 'key',
        message: `unknown key "${key}" in ${name}`,
        hint: didYouMean(key, allowed) ?? (allowed.length ? `allowed keys here: ${allowed.join(', ')}` : undefined),
      };
    }
    case 'required': {
      const missing = String(e.params.missingProperty);
      if (typoFor.has(`${name}\0${missing}`)) return null;
      return { path: e.path, at: 'key', message: `${name} is missing the required key "${missing}"` };
    }
    case 'propertyNames':
      return null; // the nested pattern error names the key
    case 'type': {
      const want = typeWord(String(e.params.type));
      const hint =
        e.params.type === 'string' && (typeof e.data === 'number' || typeof e.data === 'boolean') ? 'quote the value to make it a string' : undefined;
      return { path: e.path, at: 'value', message: `${name} must be ${want}`, hint };
    }
    case 'branchType':
      return { path: e.path, at: 'value', message: `${name} must be ${String(e.params.expected)}` };
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[]).map(String);
      return {
        path: e.path,
        at: 'value',
        message: `${name}: ${shown(e.data)}is not one of ${allowed.join(', ')}`,
        hint: typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined,
      };
    }
    case 'const':
      return { path: e.path, at: 'value', message: `${name} must be ${JSON.stringify(e.params.allowedValue)}` };
    case 'pattern':
      return describePattern(e, name, shown);
    case 'minItems':
      return { path: e.path, at: 'value', message: `${name} must not be an empty list` };
    case 'minLength':
      return { path: e.path, at: 'value', message: `${name} must not be empty` };
    case 'uniqueItems': {
      const i = Math.max(Number(e.params.i), Number(e.params.j));
      const item = Array.isArray(e.data) ? e.data[i] : undefined;
      return { path: [...e.path, i], at: 'value', message: `${name} lists ${shown(item)}more than once` };
    }
    case 'minimum':
    case 'maximum':
      if (last === 'port') return { path: e.path, at: 'value', message: `${name} must be a port number from 1 to 65535` };
      if (last === 'checktime') return { path: e.path, at: 'value', message: `${name} must not be negative` };
      return { path: e.path, at: 'value', message: `${name} must be ${e.keyword === 'minimum' ? '>=' : '<='} ${String(e.params.limit)}` };
    default:
      return { path: e.path, at: 'value', message: `${name} is invalid (${e.keyword})` };
  }
}

function describePattern(e: RawError, name: string, shown: (v: unknown) => string): SchemaIssue {
  if (e.schemaPath.includes('objectName') && e.params.propertyName !== undefined) {
    const key = String(e.params.propertyName);
    const what = e.path[0] === 'databases' ? 'database' : e.path[0] === 'relgroups' ? 'relgroup' : 'sync';
    return {
      path: [...e.path, key],
      at: 'key',
      message: `${JSON.stringify(key)} is not a valid ${what} name`,
      hint: 'use a letter or _, then letters, digits, _ or -, at most 63 characters',
    };
  }
  if (e.schemaPath.includes('duration')) {
    return { path: e.path, at: 'value', message: `${name}: ${shown(e.data)}is not a duration`, hint: DURATION_EXAMPLES };
  }
  if (e.path.length === 1 && e.path[0] === 'name') {
    return {
      path: e.path,
      at: 'value',
      message: `name ${shown(e.data)}is not a valid topology name`,
      hint: 'use lower-case letters, digits and _, starting with a letter, at most 40 characters: it names the PostgreSQL schema bucardo_<name>',
    };
  }
  if (e.path[e.path.length - 1] === 'port') return { path: e.path, at: 'value', message: `${name} must be a port number from 1 to 65535` };
  return { path: e.path, at: 'value', message: `${name}: ${shown(e.data)}does not match ${String(e.params.pattern)}` };
}
