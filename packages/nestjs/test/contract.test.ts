// The contract as scaleplan renders it: every shipped phase's app.env on
// every target it runs the app on parses, in the mode it names; and a
// broken variable is refused with its name.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { ContractError, queuePrefix, readContract, type ScalingFile } from '../src';

const OUT = resolve(__dirname, '../../../../out');

/** An env file as Compose and `up --native` read it, the secrets' references filled. */
function envFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1).replace(/\$\{[A-Z_]+\}/g, 'secret');
  }
  return env;
}

test('every generated app.env is a contract in its Redis mode', () => {
  let checked = 0;
  for (const phase of readdirSync(OUT)) {
    for (const target of ['compose', 'local']) {
      const path = join(OUT, phase, target, 'app.env');
      if (!existsSync(path)) continue;
      const env = envFile(path);
      const c = readContract(env);
      assert.equal(c.redis.mode, env.REDIS_MODE, path);
      assert.equal(c.socketioAdapter, c.redis.mode === 'cluster' ? 'sharded' : 'redis', path);
      // The shipped phases run queues (app.queues), on a Redis that does not evict.
      assert.ok(c.bullmq, `${path}: no BULLMQ_PREFIX`);
      for (const q of c.bullmq.queues) assert.equal(queuePrefix(c, q.queue), q.prefix);
      checked += 1;
    }
  }
  assert.ok(checked >= 8, `only ${checked} app.env files`);
});

test('a broken contract is refused, naming the variable', () => {
  const good = envFile(join(OUT, 'scale', 'compose', 'app.env'));
  const cases: Array<[Record<string, string | undefined>, RegExp]> = [
    [{ DATABASE_URL: undefined }, /DATABASE_URL is not set/],
    [{ DATABASE_URL: 'postgres://app:pw@a,b/sikka' }, /DATABASE_URL must name exactly one host/],
    [{ DATABASE_READ_URL: 'postgres://app:pw@h/sikka?sslmode=require' }, /DATABASE_READ_URL must not carry sslmode=/],
    [{ REDIS_MODE: 'replicated' }, /REDIS_MODE must be standalone, sentinel or cluster/],
    [{ REDIS_CLUSTER_NODES: 'redis-shard1-1' }, /REDIS_CLUSTER_NODES: expected host:port/],
    [{ BULLMQ_PREFIX: 'bull' }, /BULLMQ_PREFIX needs a \{hash tag\}/],
    [{ SOCKETIO_ADAPTER: 'redis' }, /SOCKETIO_ADAPTER=redis does not fit REDIS_MODE=cluster/],
    [{ REDIS_TLS: 'yes' }, /REDIS_TLS must be true or false/],
    [{ BULLMQ_QUEUES: 'a={x},b={x}' }, /b shares the hash tag \{x\}/],
    [{ BULLMQ_PREFIX: undefined, BULLMQ_QUEUES: 'a={a}' }, /BULLMQ_QUEUES is set without BULLMQ_PREFIX/],
    [{ BULLMQ_REDIS_URL: 'http://redis-queues:6379' }, /BULLMQ_REDIS_URL must start with redis:\/\//],
    [{ BULLMQ_REDIS_URL: 'redis://u:p@redis-queues:6379' }, /BULLMQ_REDIS_URL must not carry credentials/],
    [{ BULLMQ_REDIS_URL: 'rediss://redis-queues:6379' }, /BULLMQ_REDIS_URL's scheme rediss: contradicts REDIS_TLS=false/],
    [{ BULLMQ_PREFIX: undefined, BULLMQ_QUEUES: undefined, BULLMQ_REDIS_URL: 'redis://redis-queues:6379' }, /BULLMQ_REDIS_URL is set without BULLMQ_PREFIX/],
  ];
  for (const [change, message] of cases) {
    const env = { ...good, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete env[k];
    assert.throws(() => readContract(env), (e: unknown) => e instanceof ContractError && message.test((e as Error).message), String(message));
  }
});

test('with a queue Redis, BullMQ connects to it, a standalone node, and its prefixes need no hash tag', () => {
  const env = {
    ...envFile(join(OUT, 'scale', 'compose', 'app.env')),
    BULLMQ_REDIS_URL: 'redis://redis-queues:6379',
    BULLMQ_PREFIX: 'bull',
    BULLMQ_QUEUES: 'a=bull,b=bull',
  };
  const c = readContract(env);
  assert.equal(c.redis.mode, 'cluster');
  assert.ok(c.bullmq);
  assert.deepEqual(c.bullmq.redis, { mode: 'standalone', url: 'redis://redis-queues:6379', password: c.redis.password, tls: false, keyPrefix: c.redis.keyPrefix });
  assert.equal(queuePrefix(c, 'a'), 'bull');
});

test('a phase that runs no queues offers no BullMQ prefix, and asking for one says why', () => {
  const env = envFile(join(OUT, 'launch', 'local', 'app.env'));
  delete env.BULLMQ_PREFIX;
  delete env.BULLMQ_QUEUES;
  const c = readContract(env);
  assert.equal(c.bullmq, null);
  assert.throws(
    () => queuePrefix(c, 'notifications'),
    (e: unknown) => e instanceof ContractError && /runs no queues/.test((e as Error).message),
  );
});

test("every phase's scaling.json has what ScalingService reads", () => {
  let checked = 0;
  for (const phase of readdirSync(OUT)) {
    const path = join(OUT, phase, 'scaling.json');
    if (!existsSync(path)) continue;
    const file = JSON.parse(readFileSync(path, 'utf8')) as ScalingFile;
    assert.equal(file.phase.name, phase, path);
    assert.ok(file.capacity.users > 0 && file.capacity.resources.length > 0, path);
    assert.ok(file.app.max_connections_per_replica > 0 && file.app.cpu > 0, path);
    assert.ok(file.workload.read_ratio >= 0 && file.workload.read_ratio <= 1, path);
    assert.ok(file.alerts.warning < file.alerts.critical, path);
    checked += 1;
  }
  assert.ok(checked >= 4, `only ${checked} scaling.json files`);
});
