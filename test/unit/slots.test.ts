import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionSlots } from '../../engine/runner/slots.js';

test('a sync keeps its slot between runs; a new one takes the slot idle longest, closing its connections first', async () => {
  const slots = new ConnectionSlots(2);
  const closed: string[] = [];
  const rel = (n: string) => async () => {
    closed.push(n);
  };
  const [a, b, c] = [{}, {}, {}];
  await slots.acquire(a, rel('a'));
  slots.done(a);
  await slots.acquire(b, rel('b'));
  slots.done(b);
  await slots.acquire(a, rel('a')); // its own slot again: nothing closed
  slots.done(a);
  assert.deepEqual(closed, []);
  await slots.acquire(c, rel('c')); // b idle longest
  assert.deepEqual(closed, ['b']);
  assert.equal(slots.held, 2);
});

test('when every slot is running, a sync waits for one to finish', async () => {
  const slots = new ConnectionSlots(1);
  const [a, b] = [{}, {}];
  await slots.acquire(a, async () => {});
  let got = false;
  const waiting = slots.acquire(b, async () => {}).then(() => (got = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(got, false, 'b took a slot while a was running');
  slots.done(a);
  await waiting;
  assert.equal(got, true);
  assert.equal(slots.held, 1);
});

test('a sync whose connections are being closed waits for that before it runs again', async () => {
  const slots = new ConnectionSlots(1);
  const [a, b] = [{}, {}];
  let finishClose!: () => void;
  const events: string[] = [];
  await slots.acquire(a, () => new Promise<void>((r) => (finishClose = r)).then(() => void events.push('a closed')));
  slots.done(a);
  const bGot = slots.acquire(b, async () => {}).then(() => events.push('b runs'));
  await new Promise((r) => setImmediate(r));
  const aAgain = slots.acquire(a, async () => {}).then(() => events.push('a runs'));
  slots.done(b);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, [], 'nothing may run before a is closed');
  finishClose();
  await bGot;
  slots.done(b);
  await aAgain;
  assert.deepEqual(events, ['a closed', 'b runs', 'a runs']);
});

test('a sync that stops frees its slot', async () => {
  const slots = new ConnectionSlots(1);
  const [a, b] = [{}, {}];
  await slots.acquire(a, async () => {});
  slots.leave(a);
  await slots.acquire(b, async () => {});
  assert.equal(slots.held, 1);
});
