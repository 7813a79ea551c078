// slotproxy - BSD-2-Clause
//
// node-redis v5 through slotproxy, RESP2 (its default) or RESP3: SET/GET,
// MGET across slots, MULTI/EXEC, a pipeline (multi().execAsPipeline()),
// HGETALL, and pub/sub on a duplicated connection (RESP3: pushes, and a
// command on the subscribed connection). Exits non-zero with the reason
// on any mismatch. Usage: node check.js PORT [2|3]
'use strict';
const assert = require('assert');
const { createClient } = require('redis');

async function main() {
  const port = Number(process.argv[2]);
  const resp = Number(process.argv[3] || 2);
  const c = createClient({
    socket: { host: '127.0.0.1', port, reconnectStrategy: false },
    RESP: resp,
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
  assert.strictEqual(await c.hSet('nr:h', { f: 'v', g: 'w' }), 2);
  assert.deepStrictEqual({ ...(await c.hGetAll('nr:h')) }, { f: 'v', g: 'w' });
  assert.strictEqual(await c.hGet('nr:h', 'nope'), null);
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
  if (resp === 3) {
    // RESP3: the subscribed connection runs ordinary commands too.
    assert.strictEqual(await sub.get('nr:k'), 'v');
  }
  await sub.unsubscribe('nr:chan');
  assert.strictEqual(await c.del(['nr:k', 'nr:x', 'nr:y', 'nr:z', 'nr:{t}a',
    'nr:p1', 'nr:p2', 'nr:h']), 8);
  sub.destroy();
  c.destroy();
  console.log('node-redis ok (RESP' + resp + ')');
}

main().catch((e) => { console.error(e); process.exit(1); });
