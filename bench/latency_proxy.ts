/**
 * A user-space TCP proxy for the benchmark: adds a fixed delay in each
 * direction (`tc netem` is not available here) and counts round trips, i.e.
 * how many times the client had to wait for the server before sending again:
 * a client-to-server flight (bytes read from the client) that follows a
 * server-to-client flight on the same connection counts as one round trip.
 * The first counted flight (EHLO) is the wait for connect + greeting. A
 * client that closes its side only after it has received the server's last
 * flight (the reply to QUIT) waited once more, so that close counts too; a
 * TLS `close_notify` sent then is such a flight already.
 *
 * Each counted flight is time-stamped on the shared wall clock
 * ({@linkcode wallClockMs}), so a measurement in another process can report
 * the window it timed and the proxy counts only the flights inside it.
 *
 * @module
 */

/** Milliseconds on the wall clock, sub-millisecond, comparable across processes. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A running proxy. */
export interface LatencyProxy {
  /** The port clients connect to. */
  port: number;
  /** Client-to-server flights that followed a server-to-client flight, over all connections. */
  readonly roundTrips: number;
  /** Round trips counted at wall-clock times in `[fromMs, toMs)`. */
  roundTripsBetween(fromMs: number, toMs: number): number;
  /** Resets the round-trip counter (and forgets the time stamps). */
  reset(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Options for {@linkcode startLatencyProxy}. */
export interface LatencyProxyOptions {
  /** Delay added in each direction, in ms (a round trip costs twice this). */
  delayMs: number;
  /** Called with every chunk read, for tracing (`deno task bench` sets it with BENCH_TRACE=1). */
  onChunk?: (chunk: { fromClient: boolean; bytes: Uint8Array; counted: boolean }) => void;
}

/** What one direction of a proxied connection reports. */
interface PumpHooks {
  /** A chunk was read (and will be forwarded after the delay). */
  data(bytes: Uint8Array): void;
  /** A chunk was written to the other side. */
  delivered?(): void;
  /** The sender closed its side. */
  end?(): void;
}

/** Proxies 127.0.0.1:<port> to `target`, delaying and counting. */
export function startLatencyProxy(
  target: { hostname: string; port: number },
  options: LatencyProxyOptions,
): LatencyProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let flights: number[] = [];

  async function pump(from: Deno.Conn, to: Deno.Conn, hooks: PumpHooks): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let chain = Promise.resolve();
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) {
          hooks.end?.();
          break;
        }
        const bytes = buffer.slice(0, n);
        hooks.data(bytes);
        const due = performance.now() + options.delayMs;
        // Keep order while delaying each chunk by the same amount.
        chain = chain.then(async () => {
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          let written = 0;
          while (written < bytes.length) written += await to.write(bytes.subarray(written));
          hooks.delivered?.();
        }).catch(() => {});
      }
    } catch {
      // connection reset: tear down below
    }
    await chain;
    // Pass the half-close on; the other side may already be gone.
    await Promise.resolve().then(() => to.closeWrite()).catch(() => {});
  }

  (async () => {
    for await (const client of listener) {
      let upstream: Deno.TcpConn;
      try {
        upstream = await Deno.connect(target);
      } catch {
        client.close();
        continue;
      }
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      conns.add(client);
      conns.add(upstream);
      let lastFromServer = false;
      let undeliveredFromServer = 0;
      const both = Promise.all([
        pump(client, upstream, {
          data(bytes) {
            options.onChunk?.({ fromClient: true, bytes, counted: lastFromServer });
            if (lastFromServer) flights.push(wallClockMs());
            lastFromServer = false;
          },
          // A client that closes after it has received the server's last flight
          // waited for it (the reply to QUIT): that wait is a round trip too.
          end() {
            if (lastFromServer && undeliveredFromServer === 0) flights.push(wallClockMs());
            lastFromServer = false;
          },
        }),
        pump(upstream, client, {
          data(bytes) {
            options.onChunk?.({ fromClient: false, bytes, counted: false });
            lastFromServer = true;
            undeliveredFromServer++;
          },
          delivered() {
            undeliveredFromServer--;
          },
        }),
      ]);
      both.finally(() => {
        for (const conn of [client, upstream]) {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed
          }
        }
      });
    }
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    get roundTrips() {
      return flights.length;
    },
    roundTripsBetween(fromMs, toMs) {
      return flights.filter((at) => at >= fromMs && at < toMs).length;
    },
    reset() {
      flights = [];
    },
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
      return Promise.resolve();
    },
  };
}
