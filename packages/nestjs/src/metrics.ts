// What the generated monitoring reads from the app's /metrics: the open
// WebSocket connections, the process's CPU (prom-client's default
// process_cpu_seconds_total), BullMQ's job counts and the age of each
// queue's oldest waiting job.

import { Injectable } from '@nestjs/common';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The names scaleplan's rules and alerts use (src/plan/monitoring.rs). */
export const WEBSOCKET_METRIC = 'scaleplan_app_websocket_connections';
export const OLDEST_JOB_AGE_METRIC = 'scaleplan_queue_oldest_job_age_seconds';

@Injectable()
export class ScalingMetrics {
  readonly registry = new Registry();
  readonly websockets = new Gauge({
    name: WEBSOCKET_METRIC,
    help: 'Open WebSocket (Socket.IO) connections on this replica',
    registers: [this.registry],
  });
  readonly oldestJobAge = new Gauge({
    name: OLDEST_JOB_AGE_METRIC,
    help: 'Age of the oldest waiting job of each queue, in seconds',
    labelNames: ['queue'],
    registers: [this.registry],
  });
  /** Text BullMQ exports for its queues, appended to the registry's. */
  private readonly extra: Array<() => Promise<string>> = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Another exporter's text (a BullMQ queue's exportPrometheusMetrics). */
  addText(source: () => Promise<string>): void {
    this.extra.push(source);
  }

  async text(): Promise<string> {
    // The other exporters first: reading a queue also sets its oldest
    // job's age in the registry.
    const extra: string[] = [];
    for (const source of this.extra) {
      extra.push(await source().catch(() => ''));
    }
    // Each queue's text repeats its families' HELP and TYPE lines: one
    // family is declared once in the exposition format.
    const seen = new Set<string>();
    const lines: string[] = [];
    for (const text of [await this.registry.metrics(), ...extra]) {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        if (line.startsWith('#')) {
          if (seen.has(line)) continue;
          seen.add(line);
        }
        lines.push(line);
      }
    }
    return lines.join('\n') + '\n';
  }
}
