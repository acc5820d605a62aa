/**
 * COPY streams between databases. One COPY ... TO STDOUT on the sending connection feeds
 * one COPY ... FROM STDIN on each receiving connection (a tee: a source's rows are read
 * once however many databases receive them). Text format, under the fixed session
 * settings of engine/connect.ts, so every value travels as its exact text form.
 */
import type pg from 'pg';
import { to as copyTo, from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Writable, type Transform } from 'node:stream';

/**
 * Streams `COPY (...) TO STDOUT` on `from` into `COPY ... FROM STDIN` on every receiver,
 * through `through` when given (a transform module: transform.ts). Resolves with the
 * number of rows each receiver loaded (all the same).
 */
export async function copyBetween(from: pg.Client, toSql: string, receivers: { client: pg.Client; sql: string }[], through?: Transform): Promise<number> {
  if (receivers.length === 0) return 0;
  const src = from.query(copyTo(toSql));
  const sinks = receivers.map((r) => r.client.query(copyFrom(r.sql)));
  if (sinks.length === 1) {
    await (through ? pipeline(src, through, sinks[0]) : pipeline(src, sinks[0]));
    return Number((sinks[0] as unknown as { rowCount?: number }).rowCount ?? 0);
  }
  // Fan out: write each chunk to every sink, wait for all to drain when any is full.
  const tee = new Writable({
    highWaterMark: 1 << 16,
    write(chunk: Buffer, _enc, cb) {
      const waits: Promise<void>[] = [];
      for (const s of sinks) {
        if (!s.write(chunk))
          waits.push(
            new Promise((res, rej) => {
              const onDrain = () => {
                s.off('error', onErr);
                res();
              };
              const onErr = (e: Error) => {
                s.off('drain', onDrain);
                rej(e);
              };
              s.once('drain', onDrain);
              s.once('error', onErr);
            }),
          );
      }
      if (waits.length === 0) cb();
      else Promise.all(waits).then(() => cb(), cb);
    },
    final(cb) {
      Promise.all(
        sinks.map(
          (s) =>
            new Promise<void>((res, rej) => {
              s.once('finish', res);
              s.once('error', rej);
              s.end();
            }),
        ),
      ).then(() => cb(), cb);
    },
  });
  // A sink failing mid-stream must fail the whole copy.
  const sinkErrors = sinks.map((s) => new Promise<never>((_, rej) => s.once('error', rej)));
  // a sink that fails after the race is decided (its connection closed by the failed run) must not become an unhandled rejection
  for (const p of sinkErrors) p.catch(() => {});
  await Promise.race([through ? pipeline(src, through, tee) : pipeline(src, tee), ...sinkErrors]);
  return Number((sinks[0] as unknown as { rowCount?: number }).rowCount ?? 0);
}
