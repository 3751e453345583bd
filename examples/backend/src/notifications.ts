// Notifications through BullMQ: POST /notifications queues one, the worker
// (in every replica) sends it. The queue is the first one the contract
// names (BULLMQ_QUEUES), else `notifications` on the default prefix.

import { Body, Controller, Inject, Injectable, Post, type OnModuleInit } from '@nestjs/common';
import { CONTRACT, ScalingQueues, type Contract } from '@scaleplan/nestjs';

@Injectable()
export class Notifications implements OnModuleInit {
  readonly queue: string;
  sent = 0;

  constructor(@Inject(CONTRACT) contract: Contract, private readonly queues: ScalingQueues) {
    this.queue = contract.bullmq?.queues[0]?.queue ?? 'notifications';
  }

  onModuleInit(): void {
    this.queues.worker<{ user: number; text: string }>(
      this.queue,
      async (job) => {
        // The send itself (a push service's call) is outside this example.
        this.sent += 1;
        return { delivered: job.data.user };
      },
      { concurrency: 8 },
    );
  }

  async add(user: number, text: string): Promise<string | undefined> {
    const job = await this.queues.queue(this.queue).add('notify', { user, text }, { removeOnComplete: 1000, removeOnFail: 1000 });
    return job.id;
  }
}

@Controller('notifications')
export class NotificationsController {
  constructor(private readonly notifications: Notifications) {}

  @Post()
  async create(@Body() body: { user?: number; text?: string }): Promise<{ id: string | undefined; queue: string }> {
    const id = await this.notifications.add(Number(body?.user ?? 0), String(body?.text ?? ''));
    return { id, queue: this.notifications.queue };
  }
}
