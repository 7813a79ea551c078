// slotproxy - BSD-2-Clause
//
// valkey-glide's standalone client through slotproxy, RESP2 or RESP3 (its
// default; HELLO 3 first): it connects only to a node whose INFO
// replication says role:master. SET/GET, HGETALL, MGET
// across slots, a transaction (atomic Batch) and a pipeline (non-atomic
// Batch), PUBLISH (glide subscribes only over RESP3: the test's own
// subscriber checks delivery). Exits non-zero with the reason on any
// mismatch. Usage: node check.js PORT [2|3]
'use strict';
const assert = require('assert');
const { GlideClient, Batch, ProtocolVersion } = require('@valkey/valkey-glide');

async function main() {
  const port = Number(process.argv[2]);
  const resp = Number(process.argv[3] || 2);
  const c = await GlideClient.createClient({
    addresses: [{ host: '127.0.0.1', port }],
    protocol: resp === 3 ? ProtocolVersion.RESP3 : ProtocolVersion.RESP2,
    requestTimeout: 5000,
    clientName: 'glide-check',
  });
  assert.strictEqual(await c.set('gl:{a}1', 'v1'), 'OK');
  assert.strictEqual(await c.get('gl:{a}1'), 'v1');
  assert.strictEqual(await c.hset('gl:h', { f: 'v' }), 1);
  assert.strictEqual(await c.hget('gl:h', 'f'), 'v');
  assert.strictEqual(await c.hget('gl:h', 'nope'), null);
  await c.mset({ 'gl:x': '1', 'gl:y': '2', 'gl:z': '3' });
  assert.deepStrictEqual(await c.mget(['gl:x', 'gl:y', 'gl:nope', 'gl:z']),
    ['1', '2', null, '3']);
  const tx = new Batch(true).set('gl:{t}a', '1').incr('gl:{t}a').get('gl:{t}a');
  assert.deepStrictEqual(await c.exec(tx, true), ['OK', 2, '2']);
  const pl = new Batch(false).set('gl:p1', 'a').set('gl:p2', 'b')
    .get('gl:p1').get('gl:p2');
  assert.deepStrictEqual(await c.exec(pl, true), ['OK', 'OK', 'a', 'b']);
  // The count is the receiving node's subscribers only (Redis Cluster
  // spreads the message over its bus): the test's subscriber checks it.
  assert.ok(await c.publish('hello', 'gl:chan') >= 0);
  assert.strictEqual(await c.del(['gl:{a}1', 'gl:x', 'gl:y', 'gl:z',
    'gl:{t}a', 'gl:p1', 'gl:p2', 'gl:h']), 8);
  c.close();
  console.log('glide ok (RESP' + resp + ')');
}

main().catch((e) => { console.error(e); process.exit(1); });
