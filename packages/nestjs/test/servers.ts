// Real Redis servers for the tests, on 127.0.0.1: a standalone node, a
// master with a replica and a sentinel, and a three-master cluster. Each
// runs from its own temporary directory and is stopped when the test ends.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PASSWORD = 'test-Redis-4k2';

export class Servers {
  private readonly procs: ChildProcess[] = [];
  private readonly dirs: string[] = [];

  private dir(): string {
    const d = mkdtempSync(join(tmpdir(), 'scaleplan-nestjs-'));
    this.dirs.push(d);
    return d;
  }

  private cli(port: number, ...args: string[]): string {
    const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '-a', PASSWORD, '--no-auth-warning', ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    return (r.stdout ?? '').trim();
  }

  private async until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async server(port: number, extra: string[] = []): Promise<void> {
    const dir = this.dir();
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', PASSWORD, '--masterauth', PASSWORD, '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.procs.push(proc);
    // What it said, for the error when it exits before answering (a port
    // in use, say).
    let said = '';
    const keep = (chunk: Buffer) => {
      said = (said + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    await this.until(`redis on ${port}`, () => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`redis-server on ${port} exited (${proc.exitCode ?? proc.signalCode}):\n${said}`);
      }
      return this.cli(port, 'PING') === 'PONG';
    });
  }

  /** The keys of the node on `port` that match `pattern` (KEYS: test data only). */
  keys(port: number, pattern: string): string[] {
    return this.cli(port, 'KEYS', pattern).split('\n').filter((k) => k !== '');
  }

  async standalone(port: number): Promise<void> {
    await this.server(port);
  }

  /** A master, its replica and one sentinel watching it as `name`. */
  async sentinel(master: number, replica: number, sentinel: number, name: string): Promise<void> {
    await this.server(master);
    await this.server(replica, ['--replicaof', '127.0.0.1', String(master)]);
    await this.until('the replica in sync', () => this.cli(master, 'INFO', 'replication').includes('state=online'));
    const dir = this.dir();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${sentinel}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master} 1`,
        `sentinel auth-pass ${name} ${PASSWORD}`,
        `requirepass ${PASSWORD}`,
        `sentinel sentinel-pass ${PASSWORD}`,
        '',
      ].join('\n'),
    );
    this.procs.push(spawn('redis-sentinel', [conf], { stdio: 'ignore' }));
    await this.until('the sentinel', () => this.cli(sentinel, 'SENTINEL', 'get-master-addr-by-name', name).includes(String(master)));
  }

  /** Three masters, every slot assigned. */
  async cluster(ports: number[]): Promise<void> {
    for (const port of ports) await this.server(port, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']);
    const create = spawnSync(
      'redis-cli',
      ['-a', PASSWORD, '--no-auth-warning', '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0) throw new Error(`cluster create: ${create.stdout}${create.stderr}`);
    await this.until('the cluster ok', () => ports.every((p) => this.cli(p, 'CLUSTER', 'INFO').includes('cluster_state:ok')));
  }

  stop(): void {
    for (const p of this.procs.splice(0)) p.kill('SIGKILL');
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** The contract's variables for a Redis mode (PostgreSQL named, never reached here). */
export function contractEnv(redis: Record<string, string>): Record<string, string> {
  return {
    DATABASE_URL: 'postgres://app:pw@127.0.0.1:1/sikka',
    DATABASE_READ_URL: 'postgres://app:pw@127.0.0.1:1/sikka_ro',
    DATABASE_SSL: 'false',
    REDIS_PASSWORD: PASSWORD,
    REDIS_TLS: 'false',
    REDIS_KEY_PREFIX: 'sikka:',
    ...redis,
  };
}
