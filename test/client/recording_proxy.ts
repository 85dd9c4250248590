/**
 * A reverse proxy in front of the function, as a client meets one in
 * production: it records the requests it forwards (to check the headers the
 * client sent), and has two paths that misbehave the way proxies do:
 * `/down/…` answers nginx's HTML 502 page (the upstream is unreachable), and
 * `/cut/…` forwards an event stream but drops the connection after the first
 * `status` event (a proxy timeout or restart).
 *
 * @module
 */

/** One request the proxy received. */
export interface RecordedRequest {
  /** The path, with the query. */
  path: string;
  /** The request headers as received. */
  headers: Headers;
}

/** A running recording proxy. */
export interface RecordingProxy {
  /** Its base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request so far, in order. */
  requests: RecordedRequest[];
  /** Stops listening. */
  close(): Promise<void>;
}

const NGINX_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
  "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/** Starts a proxy on a free loopback port that forwards to `upstream`. */
export function startRecordingProxy(upstream: string): RecordingProxy {
  const requests: RecordedRequest[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      requests.push({ path: url.pathname + url.search, headers: new Headers(request.headers) });
      if (url.pathname.startsWith("/down/")) {
        await request.body?.cancel();
        return new Response(NGINX_502, {
          status: 502,
          headers: { "Content-Type": "text/html" },
        });
      }
      const cut = url.pathname.startsWith("/cut/");
      const headers = new Headers(request.headers);
      headers.delete("host");
      const answer = await fetch(upstream + url.pathname.replace(/^\/cut/, "") + url.search, {
        method: request.method,
        headers,
        body: request.body,
      });
      return new Response(cut ? cutAfterFirstStatus(answer.body!) : answer.body, {
        status: answer.status,
        headers: answer.headers,
      });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** Passes the stream through up to the end of its first `status` event, then ends it. */
function cutAfterFirstStatus(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const encoder = new TextEncoder();
  let received = "";
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      const from = received.length;
      received += value;
      const status = /event: status\n[^]*?\n\n/.exec(received);
      if (status === null) return controller.enqueue(encoder.encode(value));
      controller.enqueue(encoder.encode(received.slice(from, status.index + status[0].length)));
      await reader.cancel();
      controller.close();
    },
    cancel: () => reader.cancel(),
  });
}
