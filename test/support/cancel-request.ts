import net from 'node:net';

/** A CancelRequest (16 bytes: length, code 80877102, process id, secret) sent by hand to a gateway on `port`, as psql's Ctrl-C does; resolves once the gateway closed it. */
export async function sendCancelRequest(port: number, processId: number, secretKey: number): Promise<void> {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processId | 0, 8);
  packet.writeInt32BE(secretKey | 0, 12);
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    socket.once('connect', () => socket.end(packet));
    socket.once('close', () => resolve());
    socket.resume();
  });
}
