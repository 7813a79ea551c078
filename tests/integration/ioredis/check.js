// slotproxy - BSD-2-Clause
//
// ioredis as a plain (non-cluster) client with auto-pipelining, through
// slotproxy: many concurrent commands over all slots in one connection,
// a cross-slot MGET, hashes, INCR, an explicit pipeline. Exits non-zero
// with the reason on any mismatch. Usage: node check.js PORT
'use strict';
const assert = require('assert');
const Redis = require('ioredis');

async function main() {
  const port = Number(process.argv[2]);
  const r = new Redis({
    host: '127.0.0.1', port, enableAutoPipelining: true,
    maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true,
  });
  await r.connect();
  const N = 2000;
  const keys = Array.from({ length: N }, (_, i) => `io:${i}`);
  await r.del(...keys.slice(0, 100), 'io:h', 'io:ctr', 'io:p');
  const sets = await Promise.all(keys.map((k, i) => r.set(k, `v${i}`)));
  assert.deepStrictEqual(sets, Array(N).fill('OK'));
  const vals = await Promise.all(keys.map((k) => r.get(k)));
  vals.forEach((v, i) => assert.strictEqual(v, `v${i}`, `value of ${keys[i]}`));
  assert.deepStrictEqual(await r.mget('io:1', 'io:2', 'io:nope', 'io:3'),
    ['v1', 'v2', null, 'v3']);
  await r.hset('io:h', { a: '1', b: '2' });
  assert.deepStrictEqual(await r.hgetall('io:h'), { a: '1', b: '2' });
  const incs = await Promise.all(Array.from({ length: 100 }, () => r.incr('io:ctr')));
  assert.strictEqual(Math.max(...incs), 100);
  const res = await r.pipeline().set('io:p', '1').incr('io:p').get('io:p').exec();
  assert.deepStrictEqual(res, [[null, 'OK'], [null, 2], [null, '2']]);
  assert.strictEqual(await r.del(...keys), N);
  r.disconnect();
  console.log(`ioredis ok: ${2 * N + 105} commands`);
}

main().catch((e) => { console.error(e); process.exit(1); });
