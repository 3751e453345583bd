// Rooms across every replica: a client that emits `join` with a room's
// name joins it; one that emits `broadcast` with `{ room, data }` makes
// every member, on every replica (the module's Redis adapter), receive a
// `broadcast` event carrying `data`.

import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';

@WebSocketGateway()
export class RoomsGateway {
  @WebSocketServer() server!: Server;

  @SubscribeMessage('join')
  async join(@ConnectedSocket() socket: Socket, @MessageBody() room: unknown): Promise<string> {
    if (typeof room !== 'string' || room.length === 0 || room.length > 200) return 'bad room';
    await socket.join(room);
    return 'joined';
  }

  @SubscribeMessage('broadcast')
  broadcast(@MessageBody() message: { room?: unknown; data?: unknown }): string {
    if (typeof message?.room !== 'string') return 'bad room';
    this.server.to(message.room).emit('broadcast', message.data);
    return 'sent';
  }
}
