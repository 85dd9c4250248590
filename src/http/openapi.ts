/**
 * `GET /openapi.json`: the prebuilt OpenAPI 3.1 document (generated from the
 * valibot schemas by `deno task build:openapi`; readable in `openapi.json`,
 * carried gzipped in `openapi_packed.ts` to keep the Worker small), with the
 * parts that depend on the deployment filled in per request: `servers` (the
 * origin the request came to) and, when `API_KEYS` is set, the bearer scheme
 * applied to the send routes.
 *
 * @module
 */

import type { Handler } from "hono";
import type { Config } from "./config.ts";
import { OPENAPI_GZIP_BASE64 } from "./openapi_packed.ts";

type Document = Record<string, unknown> & { components: Record<string, unknown> };

let unpacked: Promise<Document> | undefined;

/** The prebuilt document, unpacked once per isolate. */
export function prebuiltDocument(): Promise<Document> {
  unpacked ??= (async () => {
    const gzipped = Uint8Array.from(atob(OPENAPI_GZIP_BASE64), (char) => char.charCodeAt(0));
    const stream = new Blob([gzipped]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text()) as Document;
  })();
  return unpacked;
}

/** The document for a deployment reached at `origin`. */
export async function openApiDocument(
  config: Config,
  origin: string,
): Promise<Record<string, unknown>> {
  const { components, ...rest } = await prebuiltDocument();
  const servers = [{ url: origin }];
  if (config.apiKeys.length > 0) {
    return { ...rest, servers, components, security: [{ bearer: [] }] };
  }
  // A public endpoint: no scheme to declare.
  const { securitySchemes: _, ...schemas } = components;
  return { ...rest, servers, components: schemas };
}

/** The `GET /openapi.json` handler. */
export function openApiHandler(config: Config): Handler {
  return async (c) => c.json(await openApiDocument(config, new URL(c.req.url).origin));
}
