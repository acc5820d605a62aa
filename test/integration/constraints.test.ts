/**
 * Issue 10, item 7: constraints between rows that replication cannot satisfy. A unique
 * index other than the key, a foreign key whose parent was deleted on one source while a
 * child was inserted on the other, a key change on one source racing an update of the old
 * key on another: each fails the run with one message naming the database, table, key and
 * constraint, shows in status, leaves the other syncs running, and goes through once the
 * rows are settled by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b']);

const DDL = `
CREATE TABLE public.customer (id integer PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE TABLE public.orders (id integer PRIMARY KEY, customer_id integer REFERENCES public.customer, total numeric);
CREATE TABLE public.notes (id integer PRIMARY KEY, body text);
`;
const TABLES = ['public.customer', 'public.orders'];

function topology(a: TestDb, b: TestDb): string {
  return writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url } },
    relgroups: { shop: { tables: TABLES }, other: { tables: ['public.notes'] } },
    syncs: { shop: { relgroup: 'shop', sources: ['a', 'b'] }, notes: { relgroup: 'other', sources: ['a'], targets: ['b'] } },
  });
}

async function status(file: string): Promise<{ name: string; state: string; last_run: { error: string | null } }[]> {
  const r = await runCli(['status', '-f', file, '--format', 'json']);
  return JSON.parse(r.stdout).syncs;
}

test('a unique index other than the key: the run fails naming database, table, key and constraint; other syncs go on; settled by hand, it goes through', async () => {
  const [a, b] = await env.fresh('uniq', DDL);
  const file = topology(a, b);
  await applyOk(file);
  await a.query(`INSERT INTO public.customer VALUES (1, 'ann@example.com', 'Ann on a')`);
  await b.query(`INSERT INTO public.customer VALUES (2, 'ann@example.com', 'Ann on b')`);
  await a.query(`INSERT INTO public.notes VALUES (1, 'still replicated')`);
  const r = await runCli(['run', '-f', file, '--once']);
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /sync shop cannot write table public\.customer on database [ab]: the row with key \{"id":[12]\} would violate unique constraint customer_email_key \(Key \(email\)=\(ann@example\.com\) already exists\.\); nothing was written/,
  );
  assert.doesNotMatch(r.out, /bug in bucardo/);
  assert.equal((await b.one(`SELECT body FROM public.notes WHERE id = 1`))?.body, 'still replicated', 'the other sync ran');
  const st = (await status(file)).find((s) => s.name === 'shop')!;
  assert.equal(st.state, 'failed');
  assert.match(st.last_run.error!, /customer_email_key/);
  // the operator settles it: b's duplicate goes
  await b.query(`DELETE FROM public.customer WHERE id = 2`);
  await runOnce(file);
  await assertSame([a, b], TABLES);
});

test('a foreign key left without its parent, and a key change racing an update of the old key: named, then settled', async () => {
  const [a, b] = await env.fresh('orphan', DDL);
  const file = topology(a, b);
  await applyOk(file);
  await a.query(`INSERT INTO public.customer VALUES (1, 'c1@example.com', 'one'), (2, 'c2@example.com', 'two')`);
  await runOnce(file);
  // a deletes customer 1 while b records an order for it
  await a.query(`DELETE FROM public.customer WHERE id = 1`);
  await b.query(`INSERT INTO public.orders VALUES (10, 1, 9.99)`);
  const r = await runCli(['run', '-f', file, '--once']);
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /would leave rows of table public\.orders on database [ab] without their parent in public\.customer: key \{"id":10\} violates foreign key orders_customer_id_fkey/,
  );
  // settled: the order moves to customer 2
  await b.query(`UPDATE public.orders SET customer_id = 2 WHERE id = 10`);
  await runOnce(file);
  await assertSame([a, b], TABLES);
  // a renumbers customer 2 while b updates it under its old number (later): both rows would hold the e-mail
  await a.query(`UPDATE public.orders SET customer_id = NULL WHERE customer_id = 2`);
  await runOnce(file);
  await a.query(`UPDATE public.customer SET id = 200 WHERE id = 2`);
  await b.query(`UPDATE public.customer SET name = 'renamed on b' WHERE id = 2`);
  const k = await runCli(['run', '-f', file, '--once']);
  assert.equal(k.code, 1, k.out);
  assert.match(k.out, /unique constraint customer_email_key/);
  assert.match(k.out, /key \{"id":(2|200)\}/);
  await a.query(`DELETE FROM public.customer WHERE id = 200`);
  await runOnce(file);
  await assertSame([a, b], TABLES);
});
