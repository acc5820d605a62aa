/**
 * Redis targets (SPEC section 7, docs/targets.md "Redis") through node-redis, loaded only
 * when a topology has a redis database. Each row is a hash (redis-values.ts); there are
 * no tables to check and nothing to install: the watermark is one hash per sync.
 *
 * A run's writes go to their own connection inside MULTI, sent as they come (each batch
 * awaited, so the client holds one batch at a time) and applied by EXEC at commit together
 * with the watermark: the rows and the watermark are atomic, and a run that dies before
 * EXEC leaves nothing (Redis drops a connection's open MULTI). Redis then holds the queued
 * commands until EXEC: its memory, not the runner's, grows with the run. Every write is
 * idempotent (an upsert is DEL then HSET, so a column that became NULL loses its field),
 * so a run redone after a crash leaves the same hashes. Reads (the watermark, SCANs,
 * compare) use a second connection, which sees what is committed.
 *
 * node-redis reconnects forever by default: here it never does, so a server that is down
 * fails the run at once with a message naming it, and the next run catches up.
 */
import type { ForeignDatabaseSpec } from '../topology/types.js';
import type { TextRow } from '../runner/copytext.js';
import { describeServer, type Receiver, type ReceiverState, type ReceiverTable, type TableProblem } from './receiver.js';
import { BucardoError } from '../errors.js';
import { typeClassOf, type TypeClass } from './values.js';
import { redisKeyPart, redisKeyParts, redisRowKey, redisScanPattern, redisStateKey, redisTablePrefix, redisValue, type RedisValue } from './redis-values.js';

/** How long connecting may take before the run fails. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Keys asked per SCAN step, and hashes read per pipelined round trip (compare). */
const SCAN_COUNT = 1_000;

/**
 * TRUNCATE as one queued command: run at EXEC, after the transaction's earlier commands and
 * before its later ones, it sees exactly the table's keys at that point (a SCAN from the
 * client would see only what was committed before the run).
 */
const EMPTY_SCRIPT = `local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', ${SCAN_COUNT})
  for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end
  cursor = r[1]
until cursor == '0'
return 0`;

/** The part of node-redis's client used here: raw commands only, so its generated command types stay out of the build. */
interface RedisClient {
  connect(): Promise<unknown>;
  multi(): { addCommand(args: RedisValue[]): unknown; execAsPipeline(): Promise<unknown[]> };
  sendCommand(args: RedisValue[], options?: { typeMapping?: Record<number, unknown> }): Promise<unknown>;
  duplicate(): RedisClient;
  withTypeMapping(mapping: Record<number, unknown>): RedisClient;
  on(event: 'error', fn: (e: Error) => void): unknown;
  destroy(): void;
  readonly isOpen: boolean;
}
interface RedisModule {
  createClient(options: Record<string, unknown>): RedisClient;
  RESP_TYPES: { BLOB_STRING: number };
  /** A server's error reply (as opposed to a connection that failed). */
  ErrorReply: new (
    ...args: never[]
  ) => Error;
}

let driver: RedisModule | null = null;

async function loadRedisDriver(): Promise<RedisModule> {
  const name = 'redis';
  // a name in a variable: the package is imported only when a topology has a redis database
  driver ??= (await import(name)) as RedisModule;
  return driver;
}

/** node-redis's options for a spec: URL parts overridden by the discrete fields, the defaults filled in. */
export function redisClientOptions(spec: ForeignDatabaseSpec): Record<string, unknown> {
  const s = spec.server ?? {};
  const url = s.url ? new URL(s.url) : undefined;
  const path = url?.pathname.slice(1) ?? '';
  return {
    socket: {
      host: s.host ?? (url?.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost'),
      port: s.port ?? (url?.port ? Number(url.port) : 6379),
      tls: url?.protocol === 'rediss:',
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy: false,
    },
    username: url?.username ? decodeURIComponent(url.username) : undefined,
    password: s.password ?? (url?.password ? decodeURIComponent(url.password) : undefined),
    database: s.db ?? (path ? Number(path) : 0),
  };
}

/** A Redis failure as a message naming the database and its server (never the password). */
function unavailable(spec: ForeignDatabaseSpec, e: unknown): BucardoError {
  if (e instanceof BucardoError) return e;
  const msg = e instanceof AggregateError && e.errors.length ? (e.errors[0] as Error).message : (e as Error).message;
  // the server answered, with an error: a refused command (out of memory, a wrong password), not an outage
  if (driver && e instanceof driver.ErrorReply && !/^(WRONGPASS|NOAUTH|NOPERM)/.test(msg)) {
    return new BucardoError('run_failed', `redis database ${spec.name} (${describeServer(spec)}) refused a command: ${msg}`, { cause: e });
  }
  return new BucardoError('unreachable', `redis database ${spec.name} (${describeServer(spec)}) is unavailable: ${msg}`, {
    cause: e,
    hint: 'check that the server is up and the password and db are right; the run is retried',
  });
}

/** A client connected to the spec's server and db, never reconnecting (its errors surface as the commands' rejections). */
async function connectClient(spec: ForeignDatabaseSpec, make: () => RedisClient): Promise<RedisClient> {
  const c = make();
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (e) {
    c.destroy();
    throw unavailable(spec, e);
  }
  return c;
}

export async function makeRedisReceiver(spec: ForeignDatabaseSpec): Promise<Receiver> {
  const redis = await loadRedisDriver();
  const reader = await connectClient(spec, () => redis.createClient(redisClientOptions(spec)));
  return new RedisReceiver(spec, reader, { [redis.RESP_TYPES.BLOB_STRING]: Buffer });
}

/** Per table: its key prefix and each column's type class. */
interface Layout {
  prefix: string;
  classes: TypeClass[];
  keyAt: number[];
}

class RedisReceiver implements Receiver {
  private writer: RedisClient | null = null;
  private layouts = new Map<string, Layout>();

  constructor(
    readonly spec: ForeignDatabaseSpec,
    private reader: RedisClient,
    private asBuffers: Record<number, unknown>,
  ) {}

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw unavailable(this.spec, e);
    }
  }

  private layout(t: ReceiverTable): Layout {
    const id = JSON.stringify([t.schema, t.name, t.columns, t.keyColumns]);
    let l = this.layouts.get(id);
    if (!l) {
      if (t.schema === undefined) throw new Error(`table ${t.display}: a redis receiver needs the schema of the table`);
      l = { prefix: redisTablePrefix(t.schema, t.name), classes: t.types.map(typeClassOf), keyAt: t.keyColumns.map((k) => t.columns.indexOf(k)) };
      this.layouts.set(id, l);
    }
    return l;
  }

  private rowKey(l: Layout, row: TextRow): string {
    return redisRowKey(
      l.prefix,
      l.keyAt.map((i) => redisKeyPart(l.classes[i], row[i])),
    );
  }

  /** HSET's arguments for a row: every non-NULL column as a field. */
  private hset(t: ReceiverTable, l: Layout, key: string, row: TextRow): RedisValue[] {
    const args: RedisValue[] = ['HSET', key];
    for (const [i, c] of t.columns.entries()) {
      const v = row[i];
      if (v !== null) args.push(c, redisValue(l.classes[i], v));
    }
    return args;
  }

  /**
   * Commands into the open MULTI, written as one pipeline (one socket write, not a promise
   * per command: several times faster); each answers QUEUED, and an error here makes EXEC
   * abort the whole run.
   */
  private async queue(commands: RedisValue[][]): Promise<void> {
    const w = this.writer;
    if (!w) throw new Error('redis receiver: a write outside begin() and commit()');
    const pipe = w.multi();
    for (const c of commands) pipe.addCommand(c);
    await this.guard(() => pipe.execAsPipeline());
  }

  async begin(): Promise<void> {
    this.writer = await connectClient(this.spec, () => this.reader.duplicate());
    await this.guard(() => this.writer!.sendCommand(['MULTI']));
  }

  async readState(sync: string): Promise<ReceiverState | null> {
    const h = (await this.guard(() => this.reader.sendCommand(['HGETALL', redisStateKey(sync)]))) as Record<string, string>;
    // no hash: the sync never committed here (there is nothing to install, so never null)
    if (!h.run_seq) return { runSeq: 0, snapshots: {}, tables: [], runId: null, finished: null, rows: null };
    return {
      runSeq: Number(h.run_seq),
      snapshots: JSON.parse(h.snapshots ?? '{}'),
      tables: JSON.parse(h.tables ?? '[]'),
      runId: h.run_id ?? null,
      finished: h.finished ?? null,
      rows: h.rows === undefined ? null : Number(h.rows),
    };
  }

  async installBookkeeping(): Promise<void> {}

  async checkTables(_tables: ReceiverTable[]): Promise<TableProblem[]> {
    return [];
  }

  async hasRows(t: ReceiverTable): Promise<boolean> {
    let cursor = '0';
    do {
      const [next, keys] = (await this.guard(() =>
        this.reader.sendCommand(['SCAN', cursor, 'MATCH', redisScanPattern(this.layout(t).prefix), 'COUNT', String(SCAN_COUNT)]),
      )) as [string, string[]];
      if (keys.length) return true;
      cursor = next;
    } while (cursor !== '0');
    return false;
  }

  async empty(t: ReceiverTable): Promise<void> {
    await this.queue([['EVAL', EMPTY_SCRIPT, '0', redisScanPattern(this.layout(t).prefix)]]);
  }

  async applyChanges(t: ReceiverTable, rows: TextRow[]): Promise<void> {
    const l = this.layout(t);
    const present = t.columns.length;
    const commands: RedisValue[][] = [];
    for (const row of rows) {
      const key = this.rowKey(l, row);
      commands.push(['DEL', key]);
      if (row[present] === 't') commands.push(this.hset(t, l, key, row));
    }
    await this.queue(commands);
  }

  async insertRows(t: ReceiverTable, rows: TextRow[]): Promise<void> {
    const l = this.layout(t);
    await this.queue(rows.map((row) => this.hset(t, l, this.rowKey(l, row), row)));
  }

  async writeState(sync: string, s: ReceiverState): Promise<void> {
    const key = redisStateKey(sync);
    const fields: RedisValue[] = ['run_seq', String(s.runSeq), 'snapshots', JSON.stringify(s.snapshots), 'tables', JSON.stringify(s.tables)];
    if (s.runId !== null) fields.push('run_id', s.runId);
    if (s.finished !== null) fields.push('finished', s.finished);
    if (s.rows !== null) fields.push('rows', String(s.rows));
    await this.queue([
      ['DEL', key],
      ['HSET', key, ...fields],
    ]);
  }

  async commit(): Promise<void> {
    const w = this.writer;
    if (!w) throw new Error('redis receiver: commit() without begin()');
    const replies = (await this.guard(() => w.sendCommand(['EXEC']))) as unknown[] | null;
    this.writer = null;
    w.destroy();
    // Redis applies every queued command even when one fails (it has no rollback): the run
    // fails, no PostgreSQL database commits, and the next run redoes it from the older watermark
    const failed = replies?.find((r) => r instanceof Error) as Error | undefined;
    if (!replies || failed) {
      throw new BucardoError(
        'run_failed',
        `redis database ${this.spec.name} (${describeServer(this.spec)}) refused a write of the run: ${failed?.message ?? 'EXEC aborted'}`,
        {
          hint: 'a key of a replicated table holds something other than a hash, or the server is out of memory',
        },
      );
    }
  }

  async close(): Promise<void> {
    // closing the connection discards an open MULTI
    this.writer?.destroy();
    this.writer = null;
    if (this.reader.isOpen) this.reader.destroy();
  }

  async *readRows(t: ReceiverTable): AsyncIterable<unknown[]> {
    const l = this.layout(t);
    const pattern = redisScanPattern(l.prefix);
    let cursor = '0';
    do {
      const [next, keys] = (await this.guard(() => this.reader.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(SCAN_COUNT)]))) as [
        string,
        string[],
      ];
      const hashes = await this.readHashes(keys);
      for (const [i, key] of keys.entries()) yield this.heldRow(t, l, key, hashes[i]);
      cursor = next;
    } while (cursor !== '0');
  }

  /** HGETALL of each key, pipelined; null for a key that holds no hash. */
  private async readHashes(keys: string[]): Promise<(Record<string, Buffer> | null)[]> {
    const isReply = (e: unknown) => driver !== null && e instanceof driver.ErrorReply;
    const pipe = this.reader.withTypeMapping(this.asBuffers).multi();
    for (const k of keys) pipe.addCommand(['HGETALL', k]);
    try {
      return (await pipe.execAsPipeline()) as Record<string, Buffer>[];
    } catch (e) {
      if (!isReply(e)) throw unavailable(this.spec, e);
    }
    // a key that is no hash (WRONGTYPE) fails the pipeline: one by one, so compare reports it instead of failing
    return Promise.all(
      keys.map((k) =>
        (this.reader.sendCommand(['HGETALL', k], { typeMapping: this.asBuffers }) as Promise<Record<string, Buffer>>).catch((e) => {
          if (isReply(e)) return null;
          throw unavailable(this.spec, e);
        }),
      ),
    );
  }

  /**
   * A hash as compare sees it: the key columns from the key's name (the row's identity in
   * Redis), the other columns from their fields, then what is wrong with the hash itself
   * (a field that is no column sent, a key column's field that disagrees with the name).
   */
  private heldRow(t: ReceiverTable, l: Layout, key: string, held: Record<string, Buffer> | null): unknown[] {
    const parts = redisKeyParts(l.prefix, key) ?? [];
    const h = held ?? {};
    const odd = held ? Object.keys(h).filter((f) => !t.columns.includes(f)) : ['(not a hash)'];
    const row = t.columns.map((c, i) => {
      const j = l.keyAt.indexOf(i);
      const field = h[c] === undefined ? null : l.classes[i] === 'bytea' ? `bytes:${h[c].toString('hex')}` : `text:${h[c].toString('utf8')}`;
      if (j < 0) return field;
      const part = parts[j] ?? null;
      const asPart = h[c] === undefined ? null : l.classes[i] === 'bytea' ? h[c].toString('hex') : h[c].toString('utf8');
      if (asPart !== part) odd.push(c);
      return part === null ? null : `text:${part}`;
    });
    return [...row, odd.sort()];
  }

  expected(t: ReceiverTable, row: TextRow): unknown[] {
    const l = this.layout(t);
    const mapped = t.columns.map((_, i) => {
      const text = row[i];
      if (text === null) return null;
      const v = redisValue(l.classes[i], text);
      if (typeof v === 'string') return `text:${v}`;
      // a bytea key column is compared as the hex of the key's name (heldRow)
      return l.keyAt.includes(i) ? `text:${v.toString('hex')}` : `bytes:${v.toString('hex')}`;
    });
    return [...mapped, []];
  }
}
