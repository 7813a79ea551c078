// slotproxy - BSD-2-Clause
//
// ioredis's cluster-aware client (Redis.Cluster) through slotproxy, which
// presents itself as one node owning every slot (CLUSTER SLOTS): SET/GET,
// MGET across slots (one node, so ioredis sends it whole), MULTI/EXEC in
// one slot, a pipeline, pub/sub. Exits non-zero with the reason on any
// mismatch. Usage: node cluster.js PORT
'use strict';
const assert = require('assert');
const Redis = require('ioredis');

async function main() {
  const port = Number(process.argv[2]);
  const opts = {
    clusterRetryStrategy: () => null, enableReadyCheck: true,
    redisOptions: { maxRetriesPerRequest: 1 },
  };
  const c = new Redis.Cluster([{ host: '127.0.0.1', port }], opts);
  assert.strictEqual(await c.set('ioc:k', 'v'), 'OK');
  assert.strictEqual(await c.get('ioc:k'), 'v');
  const nodes = c.nodes('master');
  assert.strictEqual(nodes.length, 1, 'one node');
  assert.strictEqual(nodes[0].options.port, port);
  await c.mset('ioc:{a}x', '1', 'ioc:{a}y', '2');
  await c.set('ioc:z', '3');
  assert.deepStrictEqual(await c.mget('ioc:{a}x', 'ioc:{a}y', 'ioc:nope',
    'ioc:z'), ['1', '2', null, '3']);
  assert.deepStrictEqual(
    await c.multi().set('ioc:{t}a', '1').incr('ioc:{t}a').get('ioc:{t}a').exec(),
    [[null, 'OK'], [null, 2], [null, '2']]);
  assert.deepStrictEqual(
    await c.pipeline().set('ioc:p1', 'a').set('ioc:p2', 'b').get('ioc:p1')
      .get('ioc:p2').exec(),
    [[null, 'OK'], [null, 'OK'], [null, 'a'], [null, 'b']]);
  const sub = new Redis.Cluster([{ host: '127.0.0.1', port }], opts);
  await sub.subscribe('ioc:chan');
  const got = new Promise((resolve) => {
    sub.on('message', (ch, msg) => resolve([ch, msg]));
  });
  // The count is the receiving node's subscribers only (the cluster bus
  // carries the message to the others): delivery is what is checked.
  await c.publish('ioc:chan', 'hello');
  assert.deepStrictEqual(await got, ['ioc:chan', 'hello']);
  await sub.unsubscribe('ioc:chan');
  assert.strictEqual(await c.del('ioc:k', 'ioc:{a}x', 'ioc:{a}y', 'ioc:z',
    'ioc:{t}a', 'ioc:p1', 'ioc:p2'), 7);
  sub.disconnect();
  c.disconnect();
  console.log('ioredis cluster ok');
}

main().catch((e) => { console.error(e); process.exit(1); });
