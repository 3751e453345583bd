import { Controller, Get, Module, Query } from '@nestjs/common';
import { ScalingModule } from '@scaleplan/nestjs';
import { Notifications, NotificationsController } from './notifications';
import { RoomsGateway } from './rooms.gateway';
import { WorkService } from './work.service';

@Controller()
class WorkController {
  constructor(private readonly work: WorkService) {}

  /** One modelled request of user `user`. */
  @Get('work')
  request(@Query('user') user?: string): Promise<{ reads: number; writes: number; redis: number }> {
    const n = Number.parseInt(user ?? '', 10);
    return this.work.request(Number.isFinite(n) ? n : Math.floor(Math.random() * 1_000_000));
  }
}

@Module({
  imports: [ScalingModule.forRoot()],
  controllers: [WorkController, NotificationsController],
  providers: [WorkService, RoomsGateway, Notifications],
})
export class AppModule {}
