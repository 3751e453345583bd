// The connection contract: the variables every scaleplan target gives the
// app (out/<phase>/<target>/app.env, ECS task definitions), read and
// checked once. Nothing else configures a connection: no PG* variable, no
// URL credentials, no second source of TLS.

/** A variable that is missing or malformed; the message names it. */
export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTopology =
  | { mode: 'standalone'; url: string }
  | { mode: 'sentinel'; sentinels: HostPort[]; name: string }
  | { mode: 'cluster'; nodes: HostPort[] };

export type RedisContract = RedisTopology & {
  password: string;
  tls: boolean;
  /** The app's own keys start with this (`<project>:`). */
  keyPrefix: string;
};

export interface QueuePrefix {
  queue: string;
  prefix: string;
}

export interface Contract {
  postgres: { writeUrl: string; readUrl: string; ssl: boolean };
  redis: RedisContract;
  /**
   * BullMQ's prefixes; null where the phase runs no queues (BULLMQ_PREFIX
   * unset): its Redis may evict, which BullMQ's jobs and locks must never be.
   */
  bullmq: {
    /** BullMQ's prefix for a queue BULLMQ_QUEUES does not name. */
    defaultPrefix: string;
    queues: QueuePrefix[];
    /**
     * The Redis every Queue, Worker and QueueEvents connects to: the
     * phase's own, or BULLMQ_REDIS_URL's standalone queue Redis.
     */
    redis: RedisContract;
  } | null;
  /** `redis`: createAdapter (PUBLISH); `sharded`: createShardedAdapter (SPUBLISH, cluster mode). */
  socketioAdapter: 'redis' | 'sharded';
}

type Env = Record<string, string | undefined>;

function required(env: Env, key: string, allowEmpty = false): string {
  const value = env[key];
  if (value === undefined) throw new ContractError(`${key} is not set`);
  if (!allowEmpty && value === '') throw new ContractError(`${key} is empty`);
  return value;
}

function flag(env: Env, key: string): boolean {
  const value = required(env, key);
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new ContractError(`${key} must be true or false, not ${JSON.stringify(value)}`);
}

function hostPorts(key: string, value: string): HostPort[] {
  return value.split(',').map((part) => {
    const item = part.trim();
    const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(item) ?? /^([^:\s[\]]+):(\d+)$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) {
      throw new ContractError(`${key}: expected host:port[,host:port...], not ${JSON.stringify(item)}`);
    }
    return { host: m[1], port };
  });
}

/** The first non-empty `{hash tag}` of a key, as Redis Cluster reads it. */
export function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return null;
  return key.slice(open + 1, close);
}

function databaseUrl(key: string, url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ContractError(`${key} is not a URL`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ContractError(`${key} must start with postgres://`);
  }
  if (!u.hostname || u.host.includes(',')) throw new ContractError(`${key} must name exactly one host`);
  if (!u.username) throw new ContractError(`${key} names no user`);
  if (u.pathname === '' || u.pathname === '/') throw new ContractError(`${key} names no database`);
  // pg lets the URL's TLS parameters override the config object: TLS is
  // DATABASE_SSL's alone.
  for (const p of ['ssl', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert']) {
    if (u.searchParams.has(p)) throw new ContractError(`${key} must not carry ${p}= (DATABASE_SSL sets TLS)`);
  }
  return url;
}

/** A standalone node's URL: redis:// or rediss:// as REDIS_TLS says, no credentials. */
function redisUrl(env: Env, key: string, tls: boolean): string {
  const url = required(env, key);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ContractError(`${key} is not a URL`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ContractError(`${key} must start with redis:// or rediss://`);
  }
  if (u.username || u.password) {
    throw new ContractError(`${key} must not carry credentials (REDIS_PASSWORD does)`);
  }
  if ((u.protocol === 'rediss:') !== tls) {
    throw new ContractError(`${key}'s scheme ${u.protocol} contradicts REDIS_TLS=${tls}`);
  }
  return url;
}

function redisTopology(env: Env, tls: boolean): RedisTopology {
  const mode = required(env, 'REDIS_MODE');
  switch (mode) {
    case 'standalone':
      return { mode, url: redisUrl(env, 'REDIS_URL', tls) };
    case 'sentinel':
      return {
        mode,
        sentinels: hostPorts('REDIS_SENTINELS', required(env, 'REDIS_SENTINELS')),
        name: required(env, 'REDIS_SENTINEL_NAME'),
      };
    case 'cluster':
      return { mode, nodes: hostPorts('REDIS_CLUSTER_NODES', required(env, 'REDIS_CLUSTER_NODES')) };
    default:
      throw new ContractError(`REDIS_MODE must be standalone, sentinel or cluster, not ${JSON.stringify(mode)}`);
  }
}

function queues(value: string | undefined, cluster: boolean): QueuePrefix[] {
  if (value === undefined || value === '') return [];
  const out: QueuePrefix[] = [];
  for (const pair of value.split(',')) {
    const m = /^([a-z0-9][a-z0-9-]*)=([^=,\s]+)$/.exec(pair.trim());
    if (!m) throw new ContractError(`BULLMQ_QUEUES: expected queue=prefix[,queue=prefix...], not ${JSON.stringify(pair)}`);
    const [, queue, prefix] = m;
    if (out.some((q) => q.queue === queue)) throw new ContractError(`BULLMQ_QUEUES names ${queue} twice`);
    if (cluster) {
      const tag = hashTag(prefix);
      if (!tag) throw new ContractError(`BULLMQ_QUEUES: ${queue}'s prefix needs a {hash tag} in cluster mode`);
      if (out.some((q) => hashTag(q.prefix) === tag)) {
        throw new ContractError(`BULLMQ_QUEUES: ${queue} shares the hash tag {${tag}} with another queue`);
      }
    }
    out.push({ queue, prefix });
  }
  return out;
}

/** The contract from `env` (the process's environment by default). */
export function readContract(env: Env = process.env): Contract {
  const tls = flag(env, 'REDIS_TLS');
  const topology = redisTopology(env, tls);
  const cluster = topology.mode === 'cluster';
  const defaultPrefix = env.BULLMQ_PREFIX;
  if (defaultPrefix === undefined && env.BULLMQ_QUEUES !== undefined) {
    throw new ContractError('BULLMQ_QUEUES is set without BULLMQ_PREFIX');
  }
  if (defaultPrefix === undefined && env.BULLMQ_REDIS_URL !== undefined) {
    throw new ContractError('BULLMQ_REDIS_URL is set without BULLMQ_PREFIX');
  }
  // A queue Redis of their own is one standalone node: the queues' keys
  // need no hash tags there, whatever the phase's Redis is.
  const ownRedis = env.BULLMQ_REDIS_URL !== undefined;
  const queuesOnCluster = cluster && !ownRedis;
  if (defaultPrefix !== undefined && queuesOnCluster && !hashTag(defaultPrefix)) {
    throw new ContractError('BULLMQ_PREFIX needs a {hash tag} in cluster mode');
  }
  const adapter = required(env, 'SOCKETIO_ADAPTER');
  if (adapter !== 'redis' && adapter !== 'sharded') {
    throw new ContractError(`SOCKETIO_ADAPTER must be redis or sharded, not ${JSON.stringify(adapter)}`);
  }
  if ((adapter === 'sharded') !== cluster) {
    throw new ContractError(`SOCKETIO_ADAPTER=${adapter} does not fit REDIS_MODE=${topology.mode}`);
  }
  const redis: RedisContract = {
    ...topology,
    password: required(env, 'REDIS_PASSWORD'),
    tls,
    keyPrefix: required(env, 'REDIS_KEY_PREFIX', true),
  };
  return {
    postgres: {
      writeUrl: databaseUrl('DATABASE_URL', required(env, 'DATABASE_URL')),
      readUrl: databaseUrl('DATABASE_READ_URL', required(env, 'DATABASE_READ_URL')),
      ssl: flag(env, 'DATABASE_SSL'),
    },
    redis,
    bullmq:
      defaultPrefix === undefined
        ? null
        : {
            defaultPrefix,
            queues: queues(env.BULLMQ_QUEUES, queuesOnCluster),
            redis: ownRedis
              ? { mode: 'standalone', url: redisUrl(env, 'BULLMQ_REDIS_URL', tls), password: redis.password, tls, keyPrefix: redis.keyPrefix }
              : redis,
          },
    socketioAdapter: adapter,
  };
}

/** The BullMQ prefix of `queue`: its own from BULLMQ_QUEUES, else the default. */
export function queuePrefix(contract: Contract, queue: string): string {
  const bullmq = contract.bullmq;
  if (!bullmq) {
    throw new ContractError(
      `queue ${queue}: this phase runs no queues (no BULLMQ_PREFIX): declare them (app.queues: true) so its Redis stops evicting`,
    );
  }
  return bullmq.queues.find((q) => q.queue === queue)?.prefix ?? bullmq.defaultPrefix;
}

/** pg reads PG* variables for whatever a URL leaves out: the contract is the only source. */
export function scrubPgEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  for (const key of Object.keys(env)) {
    if (/^PG[A-Z]+$/.test(key)) delete env[key];
  }
}
