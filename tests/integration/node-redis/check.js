// slotproxy - BSD-2-Clause
//
// node-redis v5 through slotproxy, RESP2 (its default): SET/GET, MGET
// across slots, MULTI/EXEC, a pipeline (multi().execAsPipeline()), and
// pub/sub on a duplicated connection. Exits non-zero with the reason on
// any mismatch. Usage: node check.js PORT
'use strict';
const assert = require('assert');
const { createClient } = require('redis');

async function main() {
  const port = Number(process.argv[2]);
  const c = createClient({
    socket: { host: '127.0.0.1', port, reconnectStrategy: false },
    RESP: 2,
  });
  c.on('error', (e) => { console.error(e); process.exit(1); });
  await c.connect();
  assert.strictEqual(await c.set('nr:k', 'v'), 'OK');
  assert.strictEqual(await c.get('nr:k'), 'v');
  await c.mSet({ 'nr:x': '1', 'nr:y': '2', 'nr:z': '3' });
  assert.deepStrictEqual(await c.mGet(['nr:x', 'nr:y', 'nr:nope', 'nr:z']),
    ['1', '2', null, '3']);
  assert.deepStrictEqual(
    await c.multi().set('nr:{t}a', '1').incr('nr:{t}a').get('nr:{t}a').exec(),
    ['OK', 2, '2']);
  assert.deepStrictEqual(
    await c.multi().set('nr:p1', 'a').set('nr:p2', 'b').get('nr:p1')
      .get('nr:p2').execAsPipeline(),
    ['OK', 'OK', 'a', 'b']);
  const sub = c.duplicate();
  sub.on('error', (e) => { console.error(e); process.exit(1); });
  await sub.connect();
  let resolve;
  const got = new Promise((r) => { resolve = r; });
  // Resolves once the server confirmed the subscription.
  await sub.subscribe('nr:chan', (msg, ch) => resolve([ch, msg]));
  // PUBLISH counts the receiving node's subscribers only (the cluster bus
  // carries the message to the others), so the count is not checked.
  await c.publish('nr:chan', 'hello');
  assert.deepStrictEqual(await got, ['nr:chan', 'hello']);
  await sub.unsubscribe('nr:chan');
  assert.strictEqual(await c.del(['nr:k', 'nr:x', 'nr:y', 'nr:z', 'nr:{t}a',
    'nr:p1', 'nr:p2']), 7);
  sub.destroy();
  c.destroy();
  console.log('node-redis ok');
}

main().catch((e) => { console.error(e); process.exit(1); });
