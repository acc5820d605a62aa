/**
 * `bucardo kick`: NOTIFY the sync's kick channel on its first source with a payload that
 * names the sync; with --wait, LISTEN first on the reply channel and wait for a runner to
 * report that a run of the sync that started after the kick finished.
 */
import { randomUUID } from 'node:crypto';
import { connect } from '../connect.js';
import { listenSql, NOTIFY_SQL } from './sql/wake.js';
import type { Topology } from '../topology/types.js';
import { makeSyncContext } from './context.js';
import { BucardoError } from '../errors.js';

/** Kick payloads are JSON (capture triggers send a bare table id). */
export function kickPayload(sync: string, id: string | null): string {
  return JSON.stringify({ kick: sync, id });
}

export function parseKickPayload(payload: string): { sync: string; id: string | null } | null {
  if (!payload.startsWith('{')) return null;
  try {
    const p = JSON.parse(payload) as { kick?: unknown; id?: unknown };
    return typeof p.kick === 'string' ? { sync: p.kick, id: typeof p.id === 'string' ? p.id : null } : null;
  } catch {
    return null;
  }
}

export interface KickResult {
  /** Without --wait: always true once the NOTIFY was sent. */
  ok: boolean;
  waited: boolean;
  error?: string;
  timedOut?: boolean;
}

export async function kick(topology: Topology, syncName: string, waitSeconds: number | null): Promise<KickResult> {
  const ctx = makeSyncContext(topology, syncName);
  if (!ctx.sync.enabled) {
    throw new BucardoError('sync_disabled', `sync ${syncName} is disabled (enabled: false in ${topology.file}); no runner runs it`, {
      hint: 'enable it in the topology first',
    });
  }
  const db = ctx.sources[0];
  const c = await connect(db, 'bucardo:kick');
  try {
    if (waitSeconds === null) {
      await c.query(NOTIFY_SQL, [ctx.kickChannel, kickPayload(syncName, null)]);
      return { ok: true, waited: false };
    }
    const id = randomUUID();
    const reply = new Promise<{ ok: boolean; error?: string }>((resolve) => {
      c.on('notification', (n) => {
        try {
          const p = JSON.parse(n.payload ?? '') as { sync?: string; id?: string; ok?: boolean; error?: string };
          if (p.id === id && p.sync === syncName) resolve({ ok: Boolean(p.ok), error: p.error });
        } catch {
          /* not ours */
        }
      });
    });
    await c.query(listenSql(ctx.doneChannel));
    await c.query(NOTIFY_SQL, [ctx.kickChannel, kickPayload(syncName, id)]);
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), waitSeconds * 1000)));
    const r = await Promise.race([reply, timeout]);
    if (timer) clearTimeout(timer);
    if (r === null) return { ok: false, waited: true, timedOut: true, error: `no runner finished a run of sync ${syncName} within ${waitSeconds} s` };
    return { ok: r.ok, waited: true, error: r.error };
  } finally {
    await c.end().catch(() => {});
  }
}
