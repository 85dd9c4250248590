/**
 * A user-space TCP proxy for the benchmark: adds a fixed delay in each
 * direction (`tc netem` is not available here) and counts round trips, i.e.
 * how many times the client had to wait for the server before sending again.
 *
 * @module
 */

/** A running proxy. */
export interface LatencyProxy {
  /** The port clients connect to. */
  port: number;
  /** Client-to-server flights that followed a server-to-client flight, over all connections. */
  readonly roundTrips: number;
  /** Resets the round-trip counter. */
  reset(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Options for {@linkcode startLatencyProxy}. */
export interface LatencyProxyOptions {
  /** Delay added in each direction, in ms (a round trip costs twice this). */
  delayMs: number;
}

/** Proxies 127.0.0.1:<port> to `target`, delaying and counting. */
export function startLatencyProxy(
  target: { hostname: string; port: number },
  options: LatencyProxyOptions,
): LatencyProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let roundTrips = 0;

  async function pump(
    from: Deno.Conn,
    to: Deno.Conn,
    onData: () => void,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let chain = Promise.resolve();
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        onData();
        const bytes = buffer.slice(0, n);
        const due = performance.now() + options.delayMs;
        // Keep order while delaying each chunk by the same amount.
        chain = chain.then(async () => {
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          let written = 0;
          while (written < bytes.length) written += await to.write(bytes.subarray(written));
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
      const both = Promise.all([
        pump(client, upstream, () => {
          if (lastFromServer) roundTrips++;
          lastFromServer = false;
        }),
        pump(upstream, client, () => {
          lastFromServer = true;
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
      return roundTrips;
    },
    reset() {
      roundTrips = 0;
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
