/**
 * A TCP proxy that adds a fixed delay in each direction: the distance between two regions, put
 * between processes that run on one machine (the DR drill, the region tests). Each chunk is passed
 * on `rttMs / 2` after it arrived, in order, so a request and its answer take one round trip more.
 * `cut()` drops every connection and refuses new ones (a region unreachable); `heal()` undoes it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  /** The port the proxy listens on (127.0.0.1). */
  port: number;
  rttMs: number;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

/** Writes chunks to `to` one-way-delay after they were read from `from`, keeping their order. */
function pipeDelayed(from: Socket, to: Socket, delayMs: number): void {
  const queue: { at: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    for (let head = queue[0]; head && head.at <= now; head = queue[0]) {
      queue.shift();
      to.write(head.chunk);
    }
    const next = queue[0];
    if (next) timer = setTimeout(flush, next.at - now);
    else if (from.readableEnded) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ at: Date.now() + delayMs, chunk });
    timer ??= setTimeout(flush, delayMs);
  });
  from.on('end', () => {
    if (!queue.length && !timer) to.end();
  });
}

export async function startDelayProxy(target: { host?: string; port: number }, rttMs = 60): Promise<DelayProxy> {
  const oneWay = rttMs / 2;
  const open = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host ?? '127.0.0.1');
    for (const s of [client, upstream]) {
      open.add(s);
      s.setNoDelay(true);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => {
        open.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    pipeDelayed(client, upstream, oneWay);
    pipeDelayed(upstream, client, oneWay);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    rttMs,
    cut() {
      cut = true;
      for (const s of open) s.destroy();
    },
    heal() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
