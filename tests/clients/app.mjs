#!/usr/bin/env node
// scaleplan client contract probe.
//
// Plays the part of a NestJS backend: reads ONE env file written by scaleplan
// and proves, with the real npm drivers (pg, ioredis, bullmq), that an app can
// use the deployment. See README.md in this folder for the contract.
//
// stdout: exactly one JSON document at the end. stderr: human-readable progress.
// Exit codes: 0 success, 1 a failed check, 2 usage / contract error.

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Redis, Cluster } from 'ioredis';
import { Queue, QueueEvents, Worker, MetricsTime } from 'bullmq';
import { io } from 'socket.io-client';

const { Pool, Client } = pg;
const T0 = Date.now();

// ---------------------------------------------------------------------------
// small helpers

class ContractError extends Error {} // -> exit 2
class CheckFailed extends Error {} // -> exit 1

function log(...args) {
  const t = ((Date.now() - T0) / 1000).toFixed(3).padStart(8);
  process.stderr.write(`[${t}s] ${args.join(' ')}\n`);
}

let outputDone = false;
function emit(doc) {
  if (outputDone) return;
  outputDone = true;
  process.stdout.write(JSON.stringify(doc) + '\n');
}

/** Resolve or reject with `what` timing out after `ms`. The timer never keeps the process alive. */
function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function errMsg(e) {
  if (!e) return String(e);
  if (e instanceof AggregateError && e.errors?.length) {
    return e.errors.map(errMsg).join('; ');
  }
  return e.message || String(e);
}

/** Log each distinct error message once per source (drivers can emit hundreds during a failover). */
function onceLogger(source) {
  const seen = new Map();
  return (e) => {
    const m = errMsg(e);
    const n = (seen.get(m) || 0) + 1;
    seen.set(m, n);
    if (n === 1) log(`${source}: ${m}`);
  };
}

// ---------------------------------------------------------------------------
// the env file (the whole contract; nothing else is read)

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function loadEnvFile(path) {
  // `-`: the process's own environment, as an app in a container gets it.
  if (path === '-') {
    return new Map(Object.entries(process.env).filter(([k]) => KEY_RE.test(k)));
  }
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ContractError(`cannot read env file ${path}: ${e.message}`);
  }
  const env = new Map();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new ContractError(`${path}:${i + 1}: expected KEY=VALUE, got ${JSON.stringify(trimmed)}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!KEY_RE.test(key)) throw new ContractError(`${path}:${i + 1}: invalid key ${JSON.stringify(key)}`);
    if (env.has(key)) throw new ContractError(`${path}:${i + 1}: duplicate key ${key}`);
    env.set(key, value);
  });
  return env;
}

function req(env, key, { allowEmpty = false } = {}) {
  if (!env.has(key)) throw new ContractError(`missing required key ${key}`);
  const v = env.get(key);
  if (!allowEmpty && v === '') throw new ContractError(`key ${key} is empty`);
  return v;
}

function reqBool(env, key) {
  const v = req(env, key);
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ContractError(`${key} must be true or false, got ${JSON.stringify(v)}`);
}

function parseHostPorts(key, value) {
  const out = [];
  for (const part of value.split(',')) {
    const item = part.trim();
    const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(item) || /^([^:\s\[\]]+):(\d+)$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) {
      throw new ContractError(`${key}: expected host:port[,host:port...], got ${JSON.stringify(item)}`);
    }
    out.push({ host: m[1], port });
  }
  return out;
}

/** The first non-empty {hash tag} in s (Redis cluster rule), or null. */
function hashTag(s) {
  const open = s.indexOf('{');
  if (open < 0) return null;
  const close = s.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return null;
  return s.slice(open + 1, close);
}

function checkPgUrl(key, url) {
  if (/^[a-z]+:\/\/[^/?#]*,/i.test(url)) throw new ContractError(`${key} must name exactly one host`);
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new ContractError(`${key} is not a URL`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ContractError(`${key} must start with postgres:// or postgresql://`);
  }
  if (!u.hostname || u.host.includes(',')) {
    throw new ContractError(`${key} must name exactly one host`);
  }
  if (!u.username) throw new ContractError(`${key} has no user`);
  if (!u.pathname || u.pathname === '/') throw new ContractError(`${key} has no database name`);
  // pg merges the parsed connection string OVER the config object, so an sslmode in
  // the URL would silently override DATABASE_SSL. The contract keeps TLS in DATABASE_SSL.
  for (const p of ['ssl', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert']) {
    if (u.searchParams.has(p)) {
      throw new ContractError(`${key} must not carry ${p}= (TLS is controlled by DATABASE_SSL only)`);
    }
  }
  return url; // handed to pg untouched
}

function postgresContract(env, { write = true, read = true } = {}) {
  const c = { ssl: reqBool(env, 'DATABASE_SSL') };
  if (write) c.writeUrl = checkPgUrl('DATABASE_URL', req(env, 'DATABASE_URL'));
  if (read) c.readUrl = checkPgUrl('DATABASE_READ_URL', req(env, 'DATABASE_READ_URL'));
  return c;
}

/** A standalone node's URL (NAME): redis:// or rediss:// as REDIS_TLS says, no credentials. */
function redisUrl(env, name, tls) {
  const url = req(env, name);
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new ContractError(`${name} is not a URL`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ContractError(`${name} must start with redis:// or rediss://`);
  }
  if (u.password || u.username) {
    throw new ContractError(`${name} must not carry credentials (REDIS_PASSWORD is the only source)`);
  }
  if ((u.protocol === 'rediss:') !== tls) {
    throw new ContractError(`${name} scheme ${u.protocol} contradicts REDIS_TLS=${tls}`);
  }
  return url;
}

function redisContract(env, { bullmq = false } = {}) {
  const mode = req(env, 'REDIS_MODE');
  const c = {
    mode,
    password: req(env, 'REDIS_PASSWORD'),
    tls: reqBool(env, 'REDIS_TLS'),
    keyPrefix: req(env, 'REDIS_KEY_PREFIX', { allowEmpty: true }),
  };
  if (mode === 'standalone') {
    c.url = redisUrl(env, 'REDIS_URL', c.tls);
  } else if (mode === 'sentinel') {
    c.sentinels = parseHostPorts('REDIS_SENTINELS', req(env, 'REDIS_SENTINELS'));
    c.name = req(env, 'REDIS_SENTINEL_NAME');
  } else if (mode === 'cluster') {
    c.nodes = parseHostPorts('REDIS_CLUSTER_NODES', req(env, 'REDIS_CLUSTER_NODES'));
  } else {
    throw new ContractError(`REDIS_MODE must be standalone, sentinel or cluster, got ${JSON.stringify(mode)}`);
  }
  if (bullmq) {
    // On a queue Redis of their own (BULLMQ_REDIS_URL) the queues are on
    // a standalone node, whatever REDIS_MODE is.
    const queueMode = env.has('BULLMQ_REDIS_URL') ? 'standalone' : mode;
    c.bullPrefix = req(env, 'BULLMQ_PREFIX');
    if (queueMode === 'cluster' && !hashTag(c.bullPrefix)) {
      throw new ContractError(`BULLMQ_PREFIX must contain a {hash tag} in cluster mode, got ${JSON.stringify(c.bullPrefix)}`);
    }
    c.queues = parseQueues(env.has('BULLMQ_QUEUES') ? req(env, 'BULLMQ_QUEUES') : '', queueMode);
  }
  return c;
}

/**
 * The Redis BullMQ connects to: BULLMQ_REDIS_URL's queue Redis (a standalone
 * node, queue_redis in the spec: no hash tags, whatever REDIS_MODE is), else
 * the phase's own Redis.
 */
function queueContract(env) {
  if (!env.has('BULLMQ_REDIS_URL')) return redisContract(env, { bullmq: true });
  redisContract(env, { bullmq: false }); // the phase's Redis is still the app's
  const tls = reqBool(env, 'REDIS_TLS');
  const c = {
    mode: 'standalone',
    own: true,
    url: redisUrl(env, 'BULLMQ_REDIS_URL', tls),
    password: req(env, 'REDIS_PASSWORD'),
    tls,
    keyPrefix: req(env, 'REDIS_KEY_PREFIX', { allowEmpty: true }),
  };
  c.bullPrefix = req(env, 'BULLMQ_PREFIX');
  c.queues = parseQueues(env.has('BULLMQ_QUEUES') ? req(env, 'BULLMQ_QUEUES') : '', 'standalone');
  return c;
}

/**
 * BULLMQ_QUEUES: `queue=prefix` pairs, comma-separated (absent when no worker
 * sends notifications). In cluster mode every prefix carries a hash tag of its
 * own: all of one queue's keys share a slot, and two queues never share one.
 */
function parseQueues(value, mode) {
  const queues = [];
  if (value === '') return queues;
  for (const pair of value.split(',')) {
    const m = /^([a-z0-9][a-z0-9-]*)=([^=,\s]+)$/.exec(pair.trim());
    if (!m) throw new ContractError(`BULLMQ_QUEUES: expected queue=prefix[,queue=prefix...], got ${JSON.stringify(pair)}`);
    const [, name, prefix] = m;
    if (queues.some((q) => q.name === name)) throw new ContractError(`BULLMQ_QUEUES names ${name} twice`);
    if (mode === 'cluster') {
      const tag = hashTag(prefix);
      if (!tag) throw new ContractError(`BULLMQ_QUEUES: ${name}'s prefix must carry a {hash tag} in cluster mode, got ${JSON.stringify(prefix)}`);
      if (queues.some((q) => hashTag(q.prefix) === tag)) {
        throw new ContractError(`BULLMQ_QUEUES: ${name} shares the hash tag {${tag}} with another queue`);
      }
    }
    queues.push({ name, prefix });
  }
  return queues;
}

// pg falls back to PG* environment variables (PGPASSWORD, PGSSLMODE, PGHOST, ...) for
// anything the connection string leaves out. The contract is the env FILE only, so make
// sure nothing leaks in from the calling shell.
function scrubPgEnvironment() {
  for (const k of Object.keys(process.env)) {
    if (/^PG[A-Z]+$/.test(k)) delete process.env[k];
  }
}

// ---------------------------------------------------------------------------
// driver construction (what a NestJS module factory would do)

function pgConfig(c, url, extra = {}) {
  const cfg = {
    connectionString: url,
    application_name: 'scaleplan-contract',
    connectionTimeoutMillis: 5000,
    query_timeout: 5000,
    // no statement_timeout / options startup parameters: PgBouncer rejects unknown
    // startup parameters unless ignore_startup_parameters lists them.
    ...extra,
  };
  if (c.ssl) cfg.ssl = { rejectUnauthorized: true };
  return cfg;
}

function makePool(c, url, name) {
  const pool = new Pool(pgConfig(c, url, { max: 4, idleTimeoutMillis: 2000 }));
  pool.on('error', onceLogger(`pg pool ${name}`)); // idle client errors must not crash the app
  return pool;
}

const readonlyReconnect = (err) => (/^READONLY/.test(err.message) ? 2 : false);

/**
 * One ioredis client (standalone / sentinel) or cluster for the contract.
 * profile: 'app' (request/response app client), 'writer' (fails fast during failovers,
 * so the writer can move on), 'bullmq' (maxRetriesPerRequest: null as BullMQ requires).
 */
function makeRedis(c, profile = 'app', clusterOptions = {}) {
  const maxRetriesPerRequest = profile === 'bullmq' ? null : profile === 'writer' ? 2 : 5;
  const common = {
    password: c.password,
    connectTimeout: 3000,
    maxRetriesPerRequest,
    enableOfflineQueue: true,
    // a write that lands on a demoted master (sentinel failover without a crash) gets
    // READONLY: reconnect (the sentinel connector then resolves the new master) and resend.
    reconnectOnError: readonlyReconnect,
    ...(profile === 'bullmq' ? {} : { commandTimeout: 3000 }),
    ...(c.tls ? { tls: {} } : {}),
  };
  const retryStrategy = (times) => Math.min(100 * times, 1000);
  let client;
  if (c.mode === 'standalone') {
    // URL first, options second: ioredis lets URL fields win, the URL has no password.
    client = new Redis(c.url, { ...common, retryStrategy });
  } else if (c.mode === 'sentinel') {
    client = new Redis({
      ...common,
      sentinels: c.sentinels.map(({ host, port }) => ({ host, port })),
      name: c.name,
      role: 'master',
      sentinelPassword: c.password,
      retryStrategy,
      sentinelRetryStrategy: retryStrategy,
      sentinelCommandTimeout: 1000,
      // No failoverDetector: when +switch-master arrives while the client is
      // reconnecting (a kill -9 of the master), its disconnect() makes the
      // reconnect throw "Connection is closed" and the client ends for good
      // (ioredis 5.11). A demoted master closes its clients itself, and
      // READONLY reconnects above cover the rest.
      ...(c.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
    });
  } else {
    client = new Cluster(
      c.nodes.map(({ host, port }) => ({ host, port })),
      {
        redisOptions: common, // per-node connections (they do not reconnect: the cluster refreshes slots)
        clusterRetryStrategy: retryStrategy,
        enableOfflineQueue: true,
        enableReadyCheck: true,
        maxRedirections: 16,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        retryDelayOnTryAgain: 100,
        slotsRefreshTimeout: 2000,
        slotsRefreshInterval: 2000,
        ...clusterOptions,
      },
    );
  }
  client.on('error', onceLogger(`redis(${c.mode}/${profile})`));
  return client;
}

function waitRedisReady(client, ms) {
  if (client.status === 'ready') return Promise.resolve();
  let lastError = null;
  let onError;
  let onReady;
  const p = new Promise((resolve, reject) => {
    onReady = resolve;
    onError = (e) => {
      lastError = e;
      // a wrong password will not fix itself: fail now instead of retrying until the timeout
      if (/WRONGPASS|NOAUTH|invalid password|AUTH <password> called without/i.test(errMsg(e))) reject(e);
    };
    client.once('ready', onReady);
    client.on('error', onError);
  });
  return withTimeout(p, ms, 'redis ready')
    .catch((e) => {
      throw lastError && e !== lastError ? new Error(`${errMsg(e)} (last error: ${errMsg(lastError)})`) : e;
    })
    .finally(() => {
      client.off('ready', onReady);
      client.off('error', onError);
    });
}

async function closeRedis(client) {
  if (!client) return;
  if (client.status !== 'end') {
    try {
      await withTimeout(client.quit(), 3000, 'redis quit');
    } catch {
      /* disconnect below */
    }
  }
  // Always disconnect() as well: a quit() that timed out leaves the socket open,
  // which keeps the process alive.
  client.disconnect();
  if (client instanceof Cluster) {
    // A cluster whose slot refresh was in flight may have opened a node
    // connection after the pool was reset: end whatever its pool still holds.
    await new Promise((r) => setTimeout(r, 200));
    for (const node of client.nodes('all')) node.disconnect();
  }
}

async function closePgClient(client) {
  try {
    await withTimeout(client.end(), 1500, 'pg end');
  } catch {
    client.connection?.stream?.destroy();
  }
}

// ---------------------------------------------------------------------------
// subcommand: contract

async function cmdContract(env) {
  const pgc = postgresContract(env);
  const rc = redisContract(env, { bullmq: true }); // the app needs every key at boot
  queueContract(env); // and BullMQ's Redis, where it has its own
  const result = { ok: false, postgres: null, redis: null };
  const writePool = makePool(pgc, pgc.writeUrl, 'write');
  const readPool = makePool(pgc, pgc.readUrl, 'read');
  let redis;
  try {
    // --- PostgreSQL
    log('pg: connecting (DATABASE_URL)');
    const w = (await writePool.query(
      'SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovery, current_database() AS db, current_user AS usr',
    )).rows[0];
    log(`pg: write side db=${w.db} user=${w.usr} server_port=${w.port} in_recovery=${w.recovery}`);
    if (w.recovery) throw new CheckFailed('DATABASE_URL reaches a server in recovery (not a primary)');
    // read side first: the pool is connected before the clock for the delay starts
    const rd = (await readPool.query(
      'SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovery, current_database() AS db',
    )).rows[0];
    log(`pg: read side db=${rd.db} server_port=${rd.port} in_recovery=${rd.recovery}`);
    await writePool.query(
      'CREATE TABLE IF NOT EXISTS app_contract(id bigserial primary key, v text, at timestamptz default now())',
    );
    const value = randomBytes(12).toString('hex');
    const ins = (await writePool.query('INSERT INTO app_contract(v) VALUES ($1) RETURNING id', [value])).rows[0];
    const committedAt = Date.now();
    log(`pg: inserted id=${ins.id} v=${value}; polling DATABASE_READ_URL`);

    let seenAfter = null;
    let lastReadError = null;
    const pollDeadline = committedAt + 1000;
    for (;;) {
      try {
        const r = await readPool.query('SELECT v FROM app_contract WHERE id = $1', [ins.id]);
        if (r.rows.length === 1 && r.rows[0].v === value) {
          seenAfter = Date.now() - committedAt;
          break;
        }
      } catch (e) {
        // 42P01: the table itself has not been replayed on the standby yet
        lastReadError = e;
      }
      if (Date.now() >= pollDeadline) break;
      await sleep(20);
    }
    await writePool.query('DELETE FROM app_contract WHERE id = $1', [ins.id]);
    result.postgres = {
      write_port: w.port,
      read_port: rd.port,
      read_from_standby: rd.recovery,
      replication_delay_ms: seenAfter,
    };
    if (seenAfter === null) {
      throw new CheckFailed(
        `row written through DATABASE_URL not visible through DATABASE_READ_URL within 1000 ms` +
          (lastReadError ? ` (last read error: ${errMsg(lastReadError)})` : ''),
      );
    }
    log(`pg: row visible on the read side after ${seenAfter} ms`);

    // --- Redis
    log(`redis: connecting (${rc.mode})`);
    redis = makeRedis(rc, 'app');
    await waitRedisReady(redis, 10000);
    const pong = await redis.ping();
    if (pong !== 'PONG') throw new CheckFailed(`redis PING answered ${pong}`);
    const run = randomBytes(6).toString('hex');
    const N = 1000;
    const BATCH = 100;
    const key = (i) => `${rc.keyPrefix}contract:${run}:${i}`;
    const val = (i) => `${run}-${i}`;
    for (let i = 0; i < N; i += BATCH) {
      const ops = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) ops.push(redis.set(key(j), val(j), 'EX', 600));
      const rs = await Promise.all(ops);
      const bad = rs.findIndex((r) => r !== 'OK');
      if (bad >= 0) throw new CheckFailed(`SET ${key(i + bad)} answered ${rs[bad]}`);
    }
    let wrong = [];
    for (let i = 0; i < N; i += BATCH) {
      const idx = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) idx.push(j);
      const got = await Promise.all(idx.map((j) => redis.get(key(j))));
      idx.forEach((j, k) => {
        if (got[k] !== val(j)) wrong.push(key(j));
      });
    }
    if (wrong.length) throw new CheckFailed(`${wrong.length} keys read back wrong, e.g. ${wrong.slice(0, 5).join(' ')}`);
    log(`redis: ${N} keys set and read back`);

    // MULTI/EXEC on two keys sharing one hash tag (a cluster refuses cross-slot transactions)
    const base = hashTag(rc.keyPrefix) ? `${rc.keyPrefix}multi:${run}` : `{${rc.keyPrefix}multi:${run}}`;
    const ka = `${base}:a`;
    const kb = `${base}:b`;
    if (hashTag(ka) !== hashTag(kb)) throw new Error('internal: multi keys do not share a hash tag');
    const ex = await redis.multi().set(ka, `a-${run}`, 'EX', 600).set(kb, `b-${run}`, 'EX', 600).exec();
    if (!ex || ex.length !== 2 || ex.some(([e, r]) => e || r !== 'OK')) {
      throw new CheckFailed(`MULTI/EXEC answered ${JSON.stringify(ex)}`);
    }
    const [ga, gb] = await Promise.all([redis.get(ka), redis.get(kb)]);
    if (ga !== `a-${run}` || gb !== `b-${run}`) throw new CheckFailed(`MULTI keys read back ${ga}, ${gb}`);
    log(`redis: MULTI/EXEC wrote ${ka} and ${kb}`);
    result.redis = { mode: rc.mode, keys: N, multi: true };
    result.ok = true;
    return result;
  } catch (e) {
    result.error = errMsg(e);
    if (!(e instanceof CheckFailed)) e = new CheckFailed(errMsg(e));
    e.result = result;
    throw e;
  } finally {
    await closeRedis(redis);
    await Promise.allSettled([writePool.end(), readPool.end()]);
  }
}

// ---------------------------------------------------------------------------
// subcommand: redis-writer / redis-verify

async function cmdRedisWriter(env, flags) {
  const rc = redisContract(env);
  const seconds = numFlag(flags, 'seconds', { min: 0.1 });
  const rate = numFlag(flags, 'rate', { min: 0.1 });
  const out = strFlag(flags, 'out');
  const run = randomBytes(4).toString('hex');
  // A run id in the key: stale keys of an earlier run must not hide a lost write.
  const keyPrefix = `${rc.keyPrefix}writer:${run}:`;
  const client = makeRedis(rc, 'writer');
  const onErr = onceLogger('writer');
  try {
    await waitRedisReady(client, 10000);
    log(`writer: ${rc.mode}, ${rate}/s for ${seconds}s, keys ${keyPrefix}<n>`);
    const acked = [];
    let errors = 0;
    let notReplicated = 0; // sentinel: WAIT said 0 replicas within 1 s
    let firstErrorAt = null;
    let lastErrorAt = null;
    let recoveredAt = null;
    let lastAckAt = null;
    let longestGap = 0;
    let n = 0;
    const start = Date.now();
    const end = start + seconds * 1000;
    const interval = 1000 / rate;
    let next = start;
    while (Date.now() < end) {
      const now = Date.now();
      if (next > now) await sleep(next - now);
      next = Math.max(next, Date.now()) + interval; // no catch-up burst after a stall
      const k = n++;
      try {
        const r = await client.set(keyPrefix + k, String(k), 'EX', 3600);
        if (r !== 'OK') throw new Error(`SET answered ${r}`);
        let ok = true;
        if (rc.mode === 'sentinel') {
          const replicas = await client.wait(1, 1000);
          ok = replicas >= 1;
          if (!ok) notReplicated++;
        }
        if (ok) {
          const t = Date.now() - start;
          if (lastAckAt !== null) longestGap = Math.max(longestGap, t - lastAckAt);
          lastAckAt = t;
          acked.push(k);
          if (lastErrorAt !== null && (recoveredAt === null || recoveredAt < lastErrorAt)) {
            recoveredAt = t;
            log(`writer: acknowledged writes again at ${t} ms (key ${k})`);
          }
        }
      } catch (e) {
        errors++;
        const t = Date.now() - start;
        if (firstErrorAt === null) firstErrorAt = t;
        lastErrorAt = t;
        onErr(e);
      }
    }
    const doc = {
      mode: rc.mode,
      run,
      key_prefix: keyPrefix,
      attempted: n,
      acked,
      errors,
      not_replicated: notReplicated,
      longest_gap_ms: longestGap,
      first_error_at_ms: firstErrorAt,
      recovered_at_ms: recoveredAt,
    };
    writeFileSync(out, JSON.stringify(doc) + '\n');
    const { acked: _a, ...summary } = doc;
    summary.acked = acked.length;
    summary.out = out;
    summary.ok = acked.length > 0 && (errors === 0 || recoveredAt !== null);
    log(
      `writer: attempted ${n}, acked ${acked.length}, errors ${errors}, not replicated ${notReplicated}, ` +
        `longest gap ${longestGap} ms, first error ${firstErrorAt} ms, recovered ${recoveredAt} ms`,
    );
    if (!summary.ok) {
      const e = new CheckFailed('writer did not recover (no acknowledged write after the last error)');
      e.result = summary;
      throw e;
    }
    return summary;
  } finally {
    await closeRedis(client);
  }
}

async function cmdRedisVerify(env, flags) {
  const rc = redisContract(env);
  const inFile = strFlag(flags, 'in');
  let doc;
  try {
    doc = JSON.parse(readFileSync(inFile, 'utf8'));
  } catch (e) {
    throw new ContractError(`cannot read writer output ${inFile}: ${e.message}`);
  }
  if (!Array.isArray(doc.acked) || typeof doc.key_prefix !== 'string') {
    throw new ContractError(`${inFile} is not a redis-writer output`);
  }
  const client = makeRedis(rc, 'app');
  try {
    await waitRedisReady(client, 10000);
    const missing = [];
    const BATCH = 200;
    for (let i = 0; i < doc.acked.length; i += BATCH) {
      const ns = doc.acked.slice(i, i + BATCH);
      const got = await Promise.all(ns.map((k) => client.get(doc.key_prefix + k)));
      ns.forEach((k, j) => {
        if (got[j] !== String(k)) missing.push(k);
      });
    }
    log(`verify: checked ${doc.acked.length} acknowledged keys, ${missing.length} missing`);
    const result = { ok: missing.length === 0, checked: doc.acked.length, missing };
    if (!result.ok) {
      const e = new CheckFailed(`${missing.length} acknowledged writes missing: ${missing.slice(0, 20).join(', ')}`);
      e.result = result;
      throw e;
    }
    return result;
  } finally {
    await closeRedis(client);
  }
}

// ---------------------------------------------------------------------------
// subcommand: read-probe

/**
 * node-postgres named prepared statements through PgBouncer in transaction
 * mode, from two app connections at once: each prepares the same names on
 * whichever server connection PgBouncer lends it, and every execution must
 * return its own arguments (PgBouncer 1.21+ with max_prepared_statements).
 */
async function cmdPrepared(env) {
  const pgc = postgresContract(env);
  const a = new Client(pgConfig(pgc, pgc.writeUrl));
  const b = new Client(pgConfig(pgc, pgc.writeUrl));
  a.on('error', () => {});
  b.on('error', () => {});
  let executions = 0;
  try {
    await a.connect();
    await b.connect();
    for (let round = 0; round < 25; round += 1) {
      const runs = [a, b].flatMap((client, i) => [
        client.query({ name: 'scaleplan_add', text: 'SELECT $1::int + $2::int AS sum', values: [round, i] }),
        client.query({ name: 'scaleplan_echo', text: 'SELECT $1::text AS v', values: [`${i}-${round}`] }),
      ]);
      const results = await Promise.all(runs);
      [0, 1].forEach((i) => {
        const sum = results[2 * i].rows[0].sum;
        const v = results[2 * i + 1].rows[0].v;
        if (sum !== round + i || v !== `${i}-${round}`) {
          throw new CheckFailed(`connection ${i} round ${round}: got ${sum} and ${v}`);
        }
      });
      executions += runs.length;
    }
    log(`pg: ${executions} executions of 2 named statements on 2 connections`);
    return { ok: true, executions };
  } finally {
    await closePgClient(a);
    await closePgClient(b);
  }
}

async function cmdReadProbe(env, flags) {
  const pgc = postgresContract(env, { write: false });
  const seconds = numFlag(flags, 'seconds', { min: 0.1 });
  const onErr = onceLogger('read-probe');
  const attempts = [];
  const start = Date.now();
  const end = start + seconds * 1000;
  let next = start;
  while (Date.now() < end) {
    const now = Date.now();
    if (next > now) await sleep(next - now);
    next += 100;
    const a = { start_ms: Date.now() - start, ok: false };
    const client = new Client(pgConfig(pgc, pgc.readUrl, { connectionTimeoutMillis: 2000, query_timeout: 2000 }));
    client.on('error', () => {}); // reported through the awaited calls below
    try {
      await client.connect();
      const r = await client.query('SELECT 1 AS one');
      a.ok = r.rows[0]?.one === 1;
      if (!a.ok) throw new Error('SELECT 1 returned something else');
    } catch (e) {
      a.error = errMsg(e);
      onErr(e);
    } finally {
      await closePgClient(client);
    }
    a.end_ms = Date.now() - start;
    attempts.push(a);
  }
  // A failure window runs from the start of the first failed attempt to the start of the
  // next successful one (or to the end of the last failed attempt if none followed).
  const windows = [];
  let open = null;
  for (const a of attempts) {
    if (!a.ok && open === null) open = a.start_ms;
    if (a.ok && open !== null) {
      windows.push([open, a.start_ms]);
      open = null;
    }
  }
  if (open !== null) windows.push([open, attempts[attempts.length - 1].end_ms]);
  const failures = attempts.filter((a) => !a.ok).length;
  const longest = windows.reduce((m, [s, e]) => Math.max(m, e - s), 0);
  log(`read-probe: ${attempts.length} attempts, ${failures} failed, longest failure window ${longest} ms`);
  return {
    attempts: attempts.length,
    failures,
    longest_failure_window_ms: longest,
    windows,
  };
}

// ---------------------------------------------------------------------------
// subcommand: bullmq

/** The value of `bullmq_job_count{queue="Q", state="S"}` (or another series) in exportPrometheusMetrics' text. */
function metricValue(text, metric, labels) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const body = line.slice(metric.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries(
      body.split(',').map((kv) => {
        const [k, v] = kv.trim().split('=');
        return [k, JSON.parse(v)];
      }),
    );
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf('}') + 1));
  }
  return null;
}

/**
 * Where a queue's keys live: every key under `<prefix>:<queue>:` on every
 * master (one node outside a cluster), and each key's slot in a cluster.
 */
async function queueKeys(client, mode, prefix, name) {
  const pattern = `${prefix}:${name}:*`.replace(/[?*[\]\\]/g, (c) => (c === '*' ? c : `\\${c}`));
  const nodes = mode === 'cluster' ? client.nodes('master') : [client];
  const found = [];
  for (const node of nodes) {
    const keys = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length) found.push({ node: mode === 'cluster' ? `${node.options.host}:${node.options.port}` : mode, keys });
  }
  const out = { keys: found.reduce((n, f) => n + f.keys.length, 0), nodes: found.map((f) => f.node) };
  if (mode === 'cluster') {
    const slots = new Set();
    for (const { keys } of found) {
      const BATCH = 200;
      for (let i = 0; i < keys.length; i += BATCH) {
        const got = await Promise.all(keys.slice(i, i + BATCH).map((k) => client.cluster('KEYSLOT', k)));
        got.forEach((slot) => slots.add(Number(slot)));
      }
    }
    out.slots = [...slots].sort((a, b) => a - b);
    out.tag_slot = Number(await client.cluster('KEYSLOT', hashTag(prefix)));
  }
  return out;
}

/**
 * The queues of the contract (BULLMQ_QUEUES), or, where no worker sends
 * notifications, one queue on BULLMQ_PREFIX. Per queue: N jobs added while no
 * worker runs (BullMQ's own metrics then count N waiting, and the oldest
 * waiting job is the first added), then a Worker (concurrency 50, with
 * metrics) completes them while a QueueEvents sees each completion; every
 * return value is checked, BullMQ counts N completed and none waiting, and in
 * cluster mode every key of a queue is in its hash tag's slot, on one node,
 * and no two queues share a slot.
 */
async function cmdBullmq(env, flags) {
  const rc = queueContract(env);
  const jobs = numFlag(flags, 'jobs', { min: 1, int: true, dflt: 1000 });
  const timeoutS = numFlag(flags, 'timeout', { min: 1, dflt: 60 });
  const fromContract = rc.queues.length > 0;
  const specs = fromContract ? rc.queues : [{ name: 'push-contract', prefix: rc.bullPrefix }];
  const token = randomBytes(6).toString('hex');
  const onErr = onceLogger('bullmq');
  // Own connections for each part, as a NestJS BullModule would pass them.
  // BullMQ never closes a connection it was handed: we do.
  const conns = [];
  const conn = () => {
    const c = makeRedis(rc, 'bullmq');
    conns.push(c);
    return c;
  };
  const admin = conn();
  const queues = specs.map((q) => ({
    ...q,
    queue: null,
    events: null,
    worker: null,
    results: new Map(),
    seen: new Set(),
    failed: 0,
    done: null,
    resolve: null,
  }));
  for (const q of queues) q.done = new Promise((r) => (q.resolve = r));
  const settle = (q) => {
    if (q.results.size + q.failed >= jobs && q.seen.size + q.failed >= jobs) q.resolve();
  };
  try {
    await waitRedisReady(admin, 15000);
    for (const q of queues) {
      q.queue = new Queue(q.name, { connection: conn(), prefix: q.prefix });
      q.queue.on('error', onErr);
      await withTimeout(q.queue.waitUntilReady(), 15000, `${q.name}: queue ready`);
      await withTimeout(q.queue.obliterate({ force: true }), 30000, `${q.name}: obliterate old queue`); // leftovers of earlier runs
    }
    // Jobs first, with no worker: the backlog BullMQ's own metrics must show.
    const started = Date.now();
    const BULK = 500;
    for (const q of queues) {
      log(`bullmq: queue ${q.prefix}:${q.name}${fromContract ? ' (BULLMQ_QUEUES)' : ' (BULLMQ_PREFIX)'}, adding ${jobs} jobs`);
      for (let i = 0; i < jobs; i += BULK) {
        const bulk = [];
        for (let j = i; j < Math.min(jobs, i + BULK); j++) {
          bulk.push({ name: 'push', data: { i: j, token }, opts: { jobId: `${token}-${j}` } });
        }
        await q.queue.addBulk(bulk);
      }
      const before = await q.queue.exportPrometheusMetrics();
      q.waitingBefore = metricValue(before, 'bullmq_job_count', { queue: q.name, state: 'waiting' });
      // The worker's oldest-job gauge (README): the oldest waiting job first.
      const [oldest] = await q.queue.getJobs(['waiting'], 0, 0, true);
      q.oldestFirst = oldest?.data?.i === 0 && oldest?.data?.token === token;
      q.oldestAgeS = oldest ? (Date.now() - oldest.timestamp) / 1000 : null;
      if (q.waitingBefore !== jobs || !q.oldestFirst) {
        throw new CheckFailed(
          `${q.name}: BullMQ's metrics count ${q.waitingBefore} waiting of ${jobs} added; the oldest waiting job is ${JSON.stringify(oldest?.data)}`,
        );
      }
    }
    for (const q of queues) {
      // From the stream's last event on, whenever its first XREAD runs: no
      // completion can slip past between start-up and the workers.
      const [last] = await admin.xrevrange(`${q.prefix}:${q.name}:events`, '+', '-', 'COUNT', 1);
      q.events = new QueueEvents(q.name, { connection: conn(), prefix: q.prefix, lastEventId: last ? last[0] : '0-0' });
      q.events.on('error', onErr);
      q.events.on('completed', ({ jobId }) => {
        if (jobId.startsWith(`${token}-`)) {
          q.seen.add(jobId);
          settle(q);
        }
      });
      await withTimeout(q.events.waitUntilReady(), 15000, `${q.name}: queue events ready`);
      q.worker = new Worker(
        q.name,
        async (job) => ({ i: job.data.i, square: job.data.i * job.data.i, token: job.data.token, queue: q.name }),
        {
          connection: conn(),
          prefix: q.prefix,
          concurrency: 50,
          autorun: false,
          metrics: { maxDataPoints: MetricsTime.ONE_HOUR },
        },
      );
      q.worker.on('error', onErr);
      q.worker.on('completed', (job, rv) => {
        q.results.set(job.data.i, rv);
        settle(q);
      });
      q.worker.on('failed', (job, e) => {
        q.failed++;
        onErr(e);
        settle(q);
      });
    }
    for (const q of queues) {
      q.worker.run().catch(onErr);
      await withTimeout(q.worker.waitUntilReady(), 15000, `${q.name}: worker ready`);
    }
    try {
      await withTimeout(Promise.all(queues.map((q) => q.done)), timeoutS * 1000, 'waiting for jobs');
    } catch (e) {
      const state = queues.map((q) => `${q.name}: ${q.results.size} completed, ${q.seen.size} completion events, ${q.failed} failed`);
      throw new CheckFailed(`${errMsg(e)}: ${state.join('; ')} of ${jobs} each`);
    }
    const seconds = (Date.now() - started) / 1000;
    const result = { ok: false, jobs, from_contract: fromContract, mode: rc.mode, own_redis: Boolean(rc.own), seconds: Number(seconds.toFixed(3)), queues: [] };
    const problems = [];
    for (const q of queues) {
      // every return value, as the worker reported it and as stored in Redis
      const wrong = [];
      for (let j = 0; j < jobs; j++) {
        const rv = q.results.get(j);
        if (!rv || rv.i !== j || rv.square !== j * j || rv.token !== token || rv.queue !== q.name) wrong.push(j);
      }
      const stored = await q.queue.getJobs(['completed'], 0, -1);
      let storedOk = 0;
      for (const job of stored) {
        const rv = job.returnvalue;
        if (job.data?.token === token && rv && rv.i === job.data.i && rv.square === rv.i * rv.i) storedOk++;
      }
      const after = await q.queue.exportPrometheusMetrics();
      const where = await queueKeys(admin, rc.mode, q.prefix, q.name);
      const doc = {
        name: q.name,
        prefix: q.prefix,
        completed: q.results.size,
        completion_events: q.seen.size,
        failed: q.failed,
        stored_return_values_ok: storedOk,
        waiting_before: q.waitingBefore,
        oldest_waiting_age_s: Number(q.oldestAgeS.toFixed(3)),
        waiting_after: metricValue(after, 'bullmq_job_count', { queue: q.name, state: 'waiting' }),
        completed_total: metricValue(after, 'bullmq_job_completed_total', { queue: q.name }),
        ...where,
      };
      result.queues.push(doc);
      log(
        `bullmq: ${q.name}: ${doc.completed} completed (${doc.completion_events} events), ${doc.failed} failed; ` +
          `BullMQ counts ${doc.waiting_before} waiting before, ${doc.waiting_after} after, ${doc.completed_total} completed; ` +
          `${doc.keys} keys on ${doc.nodes.join(' ')}${doc.slots ? ` in slot(s) ${doc.slots.join(',')} (tag ${doc.tag_slot})` : ''}`,
      );
      if (q.failed || wrong.length || storedOk !== jobs || q.seen.size !== jobs) {
        problems.push(`${q.name}: ${q.failed} failed, ${wrong.length} wrong return values, ${storedOk}/${jobs} stored ok, ${q.seen.size} completion events`);
      }
      if (doc.waiting_after !== 0 || doc.completed_total !== jobs) {
        problems.push(`${q.name}: BullMQ's metrics count ${doc.waiting_after} waiting and ${doc.completed_total} completed after the run`);
      }
      if (doc.keys < jobs) problems.push(`${q.name}: only ${doc.keys} keys under ${q.prefix}:${q.name}:`);
      if (rc.mode === 'cluster') {
        if (doc.slots.length !== 1 || doc.slots[0] !== doc.tag_slot || doc.nodes.length !== 1) {
          problems.push(`${q.name}: keys in slots ${doc.slots.join(',')} on ${doc.nodes.join(' ')}, not all in {${hashTag(q.prefix)}}'s slot ${doc.tag_slot}`);
        }
      }
    }
    if (rc.mode === 'cluster') {
      const slots = result.queues.map((q) => q.tag_slot);
      if (new Set(slots).size !== slots.length) problems.push(`two queues share a slot: ${slots.join(',')}`);
    }
    log(`bullmq: ${queues.length} queue(s) x ${jobs} jobs in ${seconds.toFixed(2)} s`);
    if (problems.length) {
      const e = new CheckFailed(`bullmq: ${problems.join('; ')}`);
      e.result = result;
      throw e;
    }
    result.ok = true;
    return result;
  } finally {
    for (const q of queues) {
      if (q.worker) await withTimeout(q.worker.close(), 10000, 'worker close').catch(onErr);
      if (q.events) await withTimeout(q.events.close(), 10000, 'queue events close').catch(onErr);
      if (q.queue) {
        await withTimeout(q.queue.obliterate({ force: true }), 30000, 'obliterate').catch(onErr);
        await withTimeout(q.queue.close(), 10000, 'queue close').catch(onErr);
      }
    }
    for (const c of conns.reverse()) await closeRedis(c);
  }
}

// ---------------------------------------------------------------------------
// subcommand: pubsub
//
// What the Socket.IO Redis adapter SOCKETIO_ADAPTER names does between app
// replicas. `sharded` (cluster mode, createShardedAdapter): SSUBSCRIBE and
// SPUBLISH on channels whose slots lie on every master, through an ioredis
// Cluster with shardedSubscribers: true (without it ioredis sends every
// SSUBSCRIBE to one node, and a channel of another shard's slot is MOVED);
// every message must arrive. `redis` (createAdapter): SUBSCRIBE and PUBLISH
// on the phase's client.

async function cmdPubsub(env, flags) {
  const rc = redisContract(env);
  const adapter = req(env, 'SOCKETIO_ADAPTER');
  const perMaster = numFlag(flags, 'channels', { min: 1, int: true, dflt: 4 });
  // The counter-proof: a cluster subscriber without shardedSubscribers.
  const plain = flags['plain-subscriber'] !== undefined;
  if ((adapter === 'sharded') !== (rc.mode === 'cluster')) {
    throw new ContractError(`SOCKETIO_ADAPTER=${adapter} does not fit REDIS_MODE=${rc.mode}: sharded is for cluster mode only`);
  }
  const token = randomBytes(6).toString('hex');
  const clients = [];
  const make = (options) => {
    const c = makeRedis(rc, 'app', options);
    clients.push(c);
    return c;
  };
  try {
    const pub = make();
    const sub = make(adapter === 'sharded' && !plain ? { shardedSubscribers: true } : {});
    // Both ready before a subscription: a command queued while the
    // subscriber still connects would follow its SUBSCRIBE, and a
    // connection in subscriber mode refuses it.
    await waitRedisReady(pub, 15000);
    await waitRedisReady(sub, 15000);
    // Channels: in a cluster, perMaster of them in the slots of each master.
    let channels;
    let masters = 1;
    if (adapter === 'sharded') {
      const ranges = await pub.cluster('SLOTS');
      masters = ranges.reduce((set, r) => set.add(`${r[2][0]}:${r[2][1]}`), new Set()).size;
      const owner = (slot) => {
        const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
        return `${r[2][0]}:${r[2][1]}`;
      };
      const byMaster = new Map();
      for (let i = 0; [...byMaster.values()].filter((l) => l.length >= perMaster).length < masters && i < 100000; i++) {
        const channel = `socket.io#${token}#${i}`;
        const node = owner(Number(await pub.cluster('KEYSLOT', channel)));
        const list = byMaster.get(node) ?? [];
        if (list.length < perMaster) list.push(channel);
        byMaster.set(node, list);
      }
      channels = [...byMaster.values()].flat();
      if (byMaster.size !== masters) throw new CheckFailed(`channels found on ${byMaster.size} of ${masters} masters`);
    } else {
      channels = Array.from({ length: perMaster }, (_, i) => `socket.io#${token}#${i}`);
    }
    const received = new Map();
    let resolve;
    const all = new Promise((r) => (resolve = r));
    const onMessage = (channel, message) => {
      if (message === `hello ${channel}`) received.set(channel, message);
      if (received.size === channels.length) resolve();
    };
    if (adapter === 'sharded') {
      sub.on('smessage', onMessage);
      // One channel a call, as the adapter does: channels of different
      // slots in one SSUBSCRIBE are a CROSSSLOT error.
      for (const channel of channels) await withTimeout(sub.ssubscribe(channel), 15000, `ssubscribe ${channel}`);
    } else {
      sub.on('message', onMessage);
      await withTimeout(sub.subscribe(...channels), 15000, 'subscribe');
    }
    for (const channel of channels) {
      const reached = adapter === 'sharded'
        ? await pub.spublish(channel, `hello ${channel}`)
        : await pub.publish(channel, `hello ${channel}`);
      if (reached < 1) throw new CheckFailed(`${channel}: published to ${reached} subscribers`);
    }
    await withTimeout(all, 15000, `${received.size} of ${channels.length} messages`);
    const result = { ok: true, adapter, mode: rc.mode, masters, channels: channels.length, received: received.size };
    log(`pubsub: ${adapter}: ${received.size}/${channels.length} messages over ${masters} master(s)`);
    return result;
  } finally {
    for (const c of clients.reverse()) await closeRedis(c);
  }
}

// ---------------------------------------------------------------------------
// subcommand: migration-writer / migration-verify
//
// The app while `scaleplan migrate` moves its deployment: rows through
// DATABASE_URL and keys through the phase's Redis client, each recorded once
// acknowledged (one JSON line per write in --out, with the time). The env file
// is read again whenever it changes, as an app restarted with new variables
// would: a migration that switches Redis clients rewrites it.

const MIGRATION_TABLE = 'scaleplan_migration_writes';

function envText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

async function cmdMigrationWriter(env, flags, envFile) {
  const stopFile = strFlag(flags, 'stop');
  return migrationWriter(env, {
    seconds: numFlag(flags, 'seconds', { min: 1 }),
    rate: numFlag(flags, 'rate', { min: 0.1 }),
    out: strFlag(flags, 'out'),
    run: strFlag(flags, 'run'),
    stopped: () => existsSync(stopFile),
    envFile,
  });
}

/**
 * The writer as a Compose app service: the contract from the container's
 * environment (Compose fills it from app.env), acknowledged writes appended
 * to ACKS/<hostname>.jsonl (a new container, a new run), the health path on
 * $PORT for Compose's check, and a clean stop on SIGTERM as `docker compose
 * stop` sends it. A restart with new variables is a new container: nothing
 * to watch.
 */
async function cmdAppWriter(env, flags) {
  const dir = strFlag(flags, 'acks');
  const run = hostname();
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
  });
  const port = Number(process.env.PORT || 3000);
  const server = http
    .createServer((req, res) => {
      // The replica's name in the body: a test counts the replicas the
      // edge balances over.
      // Any health path (the spec's health_path is /health/ready).
      res.writeHead(req.url.startsWith('/health') && !stopping ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(`${stopping ? 'stopping' : 'ok'} ${run}\n`);
    })
    .listen(port, '0.0.0.0');
  try {
    return await migrationWriter(env, {
      seconds: 3600,
      rate: numFlag(flags, 'rate', { min: 0.1, dflt: 20 }),
      out: join(dir, `${run}.jsonl`),
      run,
      stopped: () => stopping,
      envFile: null,
    });
  } finally {
    server.close();
  }
}

async function migrationWriter(env, { seconds, rate, out, run, stopped, envFile }) {
  writeFileSync(out, '');
  const ack = (c, n) => appendFileSync(out, JSON.stringify({ c, n, t: Date.now() }) + '\n');

  let text = envText(envFile);
  let pgc = postgresContract(env, { read: false });
  let rc = redisContract(env);
  // Generous timeouts: while PgBouncer holds queries for a primary restart, a
  // query waits instead of failing.
  const makeWritePool = (c) => {
    const pool = new Pool(pgConfig(c, c.writeUrl, { max: 2, query_timeout: 20000, connectionTimeoutMillis: 10000 }));
    pool.on('error', onceLogger('pg pool writer'));
    return pool;
  };
  let pool = makeWritePool(pgc);
  let redis = makeRedis(rc, 'writer');
  await pool.query(`CREATE TABLE IF NOT EXISTS ${MIGRATION_TABLE} (run text, n int, v text, PRIMARY KEY (run, n))`);
  await waitRedisReady(redis, 10000);
  const keyPrefix = `${rc.keyPrefix}migration:${run}:`;
  log(`migration-writer: ${rate}/s each to PostgreSQL and Redis (${rc.mode}), run ${run}`);

  const stats = { pg: { attempted: 0, acked: 0, errors: 0 }, redis: { attempted: 0, acked: 0, errors: 0 } };
  const switches = [];
  const end = Date.now() + seconds * 1000;
  const running = () => Date.now() < end && !stopped();
  const interval = 1000 / rate;

  // The env file, watched: a new Redis mode or address means new clients.
  const watcher = (async () => {
    while (envFile !== null && running()) {
      await sleep(200);
      const now = envText(envFile);
      if (now === null || now === text) continue;
      text = now;
      let next;
      try {
        next = loadEnvFile(envFile);
      } catch (e) {
        log(`migration-writer: ${envFile} changed but does not parse yet: ${errMsg(e)}`);
        continue;
      }
      const nextRc = redisContract(next);
      const nextPg = postgresContract(next, { read: false });
      if (JSON.stringify(nextRc) !== JSON.stringify(rc)) {
        const old = redis;
        rc = nextRc;
        redis = makeRedis(rc, 'writer');
        switches.push({ t: Date.now(), redis: rc.mode });
        log(`migration-writer: ${envFile} changed: Redis is ${rc.mode} now`);
        closeRedis(old).catch(() => {});
      }
      if (nextPg.writeUrl !== pgc.writeUrl) {
        const old = pool;
        pgc = nextPg;
        pool = makeWritePool(pgc);
        switches.push({ t: Date.now(), postgres: true });
        old.end().catch(() => {});
      }
    }
  })();

  async function loop(component, write) {
    const onErr = onceLogger(`migration-writer ${component}`);
    let n = 0;
    let next = Date.now();
    while (running()) {
      const now = Date.now();
      if (next > now) await sleep(next - now);
      next = Math.max(next, Date.now()) + interval;
      const k = n++;
      stats[component].attempted++;
      try {
        if (await write(k)) {
          stats[component].acked++;
          ack(component, k);
        }
      } catch (e) {
        stats[component].errors++;
        onErr(e);
      }
    }
  }

  await Promise.all([
    loop('pg', async (k) => {
      await pool.query(`INSERT INTO ${MIGRATION_TABLE} (run, n, v) VALUES ($1, $2, $3)`, [run, k, `v${k}`]);
      return true;
    }),
    loop('redis', async (k) => {
      const client = redis;
      const mode = rc.mode;
      const r = await client.set(keyPrefix + k, `v${k}`);
      if (r !== 'OK') throw new Error(`SET answered ${r}`);
      // Sentinel: acknowledged once a replica has it too, so a failover
      // cannot take it back.
      if (mode === 'sentinel') return (await client.wait(1, 1000)) >= 1;
      return true;
    }),
    watcher,
  ]);
  await closeRedis(redis);
  await pool.end().catch(() => {});
  log(`migration-writer: pg ${JSON.stringify(stats.pg)}, redis ${JSON.stringify(stats.redis)}`);
  return { ok: stats.pg.acked > 0 && stats.redis.acked > 0, run, key_prefix: keyPrefix, ...stats, switches };
}

async function cmdMigrationVerify(env, flags) {
  const acksFile = strFlag(flags, 'acks');
  const run = strFlag(flags, 'run');
  const pgc = postgresContract(env, { read: false });
  const rc = redisContract(env);
  const acked = { pg: [], redis: [] };
  for (const line of readFileSync(acksFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const a = JSON.parse(line);
    acked[a.c].push(a.n);
  }
  const pool = new Pool(pgConfig(pgc, pgc.writeUrl, { max: 1 }));
  pool.on('error', onceLogger('pg verify'));
  const redis = makeRedis(rc, 'app');
  try {
    const { rows } = await pool.query(`SELECT n, v FROM ${MIGRATION_TABLE} WHERE run = $1`, [run]);
    const stored = new Map(rows.map((r) => [r.n, r.v]));
    const pgMissing = acked.pg.filter((n) => stored.get(n) !== `v${n}`);
    await waitRedisReady(redis, 10000);
    const keyPrefix = `${rc.keyPrefix}migration:${run}:`;
    const redisMissing = [];
    const BATCH = 200;
    for (let i = 0; i < acked.redis.length; i += BATCH) {
      const ns = acked.redis.slice(i, i + BATCH);
      const got = await Promise.all(ns.map((n) => redis.get(keyPrefix + n)));
      ns.forEach((n, j) => {
        if (got[j] !== `v${n}`) redisMissing.push(n);
      });
    }
    const result = {
      ok: pgMissing.length === 0 && redisMissing.length === 0,
      redis_mode: rc.mode,
      pg: { checked: acked.pg.length, missing: pgMissing },
      redis: { checked: acked.redis.length, missing: redisMissing },
    };
    log(`migration-verify: pg ${acked.pg.length} checked, ${pgMissing.length} missing; redis ${acked.redis.length} checked, ${redisMissing.length} missing`);
    if (!result.ok) {
      const e = new CheckFailed(`acknowledged writes missing: pg ${pgMissing.length}, redis ${redisMissing.length}`);
      e.result = result;
      throw e;
    }
    return result;
  } finally {
    await closeRedis(redis);
    await pool.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// subcommand: rooms
//
// Socket.IO across two app replicas, as browsers reach them: a client on
// replica A joins a room, a client on replica B (its own connection, no
// shared session) broadcasts to it, and A receives the data. The app is
// the reference backend (examples/backend): `join` and `broadcast` events.

async function cmdRooms(env, flags) {
  const urls = [strFlag(flags, 'a'), strFlag(flags, 'b')];
  const room = `room-${randomBytes(4).toString('hex')}`;
  const sockets = urls.map((url) => io(url, { transports: ['websocket'], reconnection: false, timeout: 5000 }));
  try {
    await Promise.all(
      sockets.map(
        (s, i) =>
          new Promise((ok, fail) => {
            s.once('connect', ok);
            s.once('connect_error', (e) => fail(new CheckFailed(`${urls[i]}: ${errMsg(e)}`)));
          }),
      ),
    );
    const [a, b] = sockets;
    const joined = await withTimeout(a.timeout(5000).emitWithAck('join', room), 6000, 'join');
    if (joined !== 'joined') throw new CheckFailed(`join answered ${JSON.stringify(joined)}`);
    const data = { token: randomBytes(6).toString('hex') };
    const received = new Promise((ok) => a.once('broadcast', ok));
    // The adapter's subscription settles before the publish.
    await sleep(300);
    const sent = await withTimeout(b.timeout(5000).emitWithAck('broadcast', { room, data }), 6000, 'broadcast');
    if (sent !== 'sent') throw new CheckFailed(`broadcast answered ${JSON.stringify(sent)}`);
    const got = await withTimeout(received, 5000, 'the broadcast on the other replica');
    if (got?.token !== data.token) throw new CheckFailed(`received ${JSON.stringify(got)}`);
    log(`rooms: a broadcast from ${urls[1]} reached a member on ${urls[0]}`);
    return { ok: true, room };
  } finally {
    for (const s of sockets) s.disconnect();
  }
}

// ---------------------------------------------------------------------------
// command line

const USAGE = `usage:
  node app.mjs contract ENVFILE
  node app.mjs redis-writer ENVFILE --seconds S --rate R --out FILE
  node app.mjs redis-verify ENVFILE --in FILE
  node app.mjs prepared ENVFILE
  node app.mjs read-probe ENVFILE --seconds S
  node app.mjs bullmq ENVFILE [--jobs N] [--timeout SECONDS]
  node app.mjs pubsub ENVFILE [--channels PER_MASTER] [--plain-subscriber 1]
  node app.mjs migration-writer ENVFILE --run ID --rate R --seconds MAX --stop FILE --out FILE
  node app.mjs migration-verify ENVFILE --run ID --acks FILE
  node app.mjs app-writer - --acks DIR [--rate R]
  node app.mjs rooms ENVFILE --a URL --b URL
ENVFILE - reads the contract from the process's environment.`;

const COMMANDS = {
  contract: { fn: cmdContract, flags: [], deadline: () => 90 },
  'redis-writer': { fn: cmdRedisWriter, flags: ['seconds', 'rate', 'out'], deadline: (f) => Number(f.seconds) + 60 },
  'redis-verify': { fn: cmdRedisVerify, flags: ['in'], deadline: () => 90 },
  prepared: { fn: cmdPrepared, flags: [], deadline: () => 60 },
  'read-probe': { fn: cmdReadProbe, flags: ['seconds'], deadline: (f) => Number(f.seconds) + 30 },
  'migration-writer': {
    fn: cmdMigrationWriter,
    flags: ['run', 'rate', 'seconds', 'stop', 'out'],
    deadline: (f) => Number(f.seconds) + 60,
  },
  'migration-verify': { fn: cmdMigrationVerify, flags: ['run', 'acks'], deadline: () => 120 },
  'app-writer': { fn: cmdAppWriter, flags: ['acks', 'rate'], deadline: () => 3660 },
  rooms: { fn: cmdRooms, flags: ['a', 'b'], deadline: () => 60 },
  bullmq: { fn: cmdBullmq, flags: ['jobs', 'timeout'], deadline: (f) => Number(f.timeout || 60) + 90 },
  pubsub: { fn: cmdPubsub, flags: ['channels', 'plain-subscriber'], deadline: () => 90 },
};

function numFlag(flags, name, { min, int = false, dflt } = {}) {
  if (flags[name] === undefined) {
    if (dflt !== undefined) return dflt;
    throw new ContractError(`--${name} is required\n${USAGE}`);
  }
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < min || (int && !Number.isInteger(v))) {
    throw new ContractError(`--${name} must be ${int ? 'an integer' : 'a number'} >= ${min}`);
  }
  return v;
}

function strFlag(flags, name) {
  if (!flags[name]) throw new ContractError(`--${name} is required\n${USAGE}`);
  return flags[name];
}

function parseArgs(argv) {
  const [sub, envFile, ...rest] = argv;
  const cmd = COMMANDS[sub];
  if (!cmd || !envFile || envFile.startsWith('--')) throw new ContractError(USAGE);
  const flags = {};
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(rest[i]);
    if (!m || !cmd.flags.includes(m[1])) throw new ContractError(`unknown argument ${rest[i]}\n${USAGE}`);
    let v = m[2];
    if (v === undefined) {
      v = rest[++i];
      if (v === undefined) throw new ContractError(`--${m[1]} needs a value`);
    }
    flags[m[1]] = v;
  }
  return { sub, cmd, envFile, flags };
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    log(errMsg(e));
    emit({ ok: false, usage_error: errMsg(e) });
    process.exitCode = 2;
    return;
  }
  const { sub, cmd, envFile, flags } = parsed;
  const deadlineS = cmd.deadline(flags);
  // Hard bound on the whole run; unref'd, so it never keeps a finished process alive,
  // but it does fire if a leaked handle keeps the process running past the deadline.
  setTimeout(() => {
    log(`${sub}: deadline of ${deadlineS} s passed; active handles: ${process._getActiveHandles().map((h) => h.constructor?.name).join(', ')}`);
    emit({ ok: false, error: `deadline of ${deadlineS} s passed` });
    process.exit(1);
  }, (Number.isFinite(deadlineS) ? deadlineS : 120) * 1000).unref();
  scrubPgEnvironment();
  try {
    const env = loadEnvFile(envFile);
    const result = await cmd.fn(env, flags, envFile);
    emit(result);
    process.exitCode = 0;
  } catch (e) {
    if (e instanceof ContractError) {
      log(`contract error: ${e.message}`);
      emit({ ok: false, contract_error: e.message });
      process.exitCode = 2;
    } else {
      log(`FAILED: ${errMsg(e)}`);
      emit(e.result ? { ...e.result, ok: false, error: errMsg(e) } : { ok: false, error: errMsg(e) });
      process.exitCode = 1;
    }
  }
  // Everything is closed by now; the process must exit on its own. If it does not within
  // 15 s, say which handles leaked (a loaded machine may take some seconds to close a
  // cluster's connections; a leak never closes). A timer, server or pipe left behind is
  // ours and fails the run. A client socket alone, after a run that passed, is one an
  // ioredis Cluster reopened while BullMQ quit it (a slot refresh after a failover races
  // the quit; seen once in CI, on a node that had just taken over): it is named and
  // closed, and the run keeps its result.
  setTimeout(() => {
    const live = process._getActiveHandles();
    const handles = live.map((h) =>
      h.remotePort ? `${h.constructor?.name} ${h.localPort}->${h.remoteAddress}:${h.remotePort}` : h.constructor?.name,
    );
    const clientSockets = live.filter((h) => h.remotePort);
    const onlyClientSockets = clientSockets.length > 0 && live.every((h) => h.remotePort || isStdio(h));
    if (process.exitCode === 0 && onlyClientSockets) {
      log(`process did not exit by itself; closing ${clientSockets.length} client socket(s) a library left open: ${handles.join(', ')}`);
      for (const s of clientSockets) s.destroy();
      process.exit(0);
    }
    log(`process did not exit by itself; active handles: ${handles.join(', ')}`);
    process.exit(1);
  }, 15000).unref();
}

// stdout and stderr show up as handles when they are pipes; they are not leaks.
function isStdio(h) {
  return h === process.stdout || h === process.stderr || h === process.stdin;
}

main();
