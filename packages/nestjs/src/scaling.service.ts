// The phase this deployment runs, its modelled capacity (scaling.json,
// which `scaleplan build` writes for each phase), and this replica's live
// use of the resources the model counts per replica.

import { Inject, Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ScalingMetrics } from './metrics';
import { OPTIONS } from './tokens';

/** scaling.json as scaleplan renders it (see docs/app-contract.md). */
export interface ScalingFile {
  project: string;
  phase: { name: string; title: string; users: { min: number; max: number } };
  capacity: {
    users: number;
    bottleneck: string;
    headroom: number;
    resources: Array<{ resource: string; users: number | null; supply: { amount: number; unit: string; units: number }; work: string }>;
  };
  app: { replicas: number; cpu: number; max_connections_per_replica: number };
  workload: {
    requests_per_user_per_min: number;
    db_queries_per_request: number;
    read_ratio: number;
    redis_ops_per_request: number;
  };
  alerts: { warning: number; critical: number };
}

export interface ScalingModuleOptions {
  /** scaling.json's path (default: $SCALEPLAN_SCALING_FILE, else ./scaling.json). */
  scalingFile?: string;
  /** The variables to read the contract from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** How long a replica stays up, unready, once it starts to shut down (default 5000 ms). */
  drainMs?: number;
}

@Injectable()
export class ScalingService {
  readonly file: ScalingFile;
  private lastCpu = process.cpuUsage();
  private lastAt = process.hrtime.bigint();

  constructor(@Inject(OPTIONS) options: ScalingModuleOptions, private readonly metrics: ScalingMetrics) {
    const path = options.scalingFile ?? process.env.SCALEPLAN_SCALING_FILE ?? 'scaling.json';
    try {
      this.file = JSON.parse(readFileSync(path, 'utf8')) as ScalingFile;
    } catch (e) {
      throw new Error(`cannot read the phase's scaling.json at ${path}: ${(e as Error).message}`);
    }
  }

  phase(): ScalingFile['phase'] & { project: string } {
    return { project: this.file.project, ...this.file.phase };
  }

  capacity(): ScalingFile['capacity'] {
    return this.file.capacity;
  }

  /** This replica's use of what the model gives each replica: 0 to 1 (and above, past the model). */
  async status(): Promise<{
    replica: string;
    phase: string;
    websocket: { open: number; per_replica: number; utilisation: number };
    cpu: { cores: number; limit: number; utilisation: number };
    level: 'ok' | 'warning' | 'critical';
  }> {
    const open = (await this.metrics.websockets.get()).values[0]?.value ?? 0;
    const perReplica = this.file.app.max_connections_per_replica;
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage(this.lastCpu);
    const seconds = Number(now - this.lastAt) / 1e9;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const cores = seconds > 0 ? (cpu.user + cpu.system) / 1e6 / seconds : 0;
    const ws = perReplica > 0 ? open / perReplica : 0;
    const cpuUse = this.file.app.cpu > 0 ? cores / this.file.app.cpu : 0;
    const worst = Math.max(ws, cpuUse);
    const { warning, critical } = this.file.alerts;
    return {
      replica: hostname(),
      phase: this.file.phase.name,
      websocket: { open, per_replica: perReplica, utilisation: ws },
      cpu: { cores, limit: this.file.app.cpu, utilisation: cpuUse },
      level: worst >= critical ? 'critical' : worst >= warning ? 'warning' : 'ok',
    };
  }
}
