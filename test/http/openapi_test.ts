/**
 * `GET /openapi.json`: the checked-in document is what `deno task
 * build:openapi` generates from the valibot schemas today (a stale one fails
 * here), a maintained OpenAPI parser (@readme/openapi-parser, which validates
 * against the OpenAPI 3.1 schema) accepts what the function serves, and the
 * per-deployment parts are right: `servers`, the bearer scheme applied only
 * when API keys are set, `/health`'s `smtp` parameter, the package version.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { validate } from "@readme/openapi-parser";
import denoJson from "../../deno.json" with { type: "json" };
import { createApp } from "../../src/http/app.ts";
import { loadConfig } from "../../src/http/config.ts";
import { prebuiltDocument } from "../../src/http/openapi.ts";
import { buildOpenApiDocument, OPENAPI_PATH } from "../../src/http/openapi_build.ts";

function appWith(env: Record<string, string>) {
  return createApp(
    loadConfig({
      SMTP_URL: "smtp://127.0.0.1:2525?tls=none",
      MAIL_FROM: "app@example.com",
      ...env,
    }),
  );
}

// Parsed JSON, checked field by field.
// deno-lint-ignore no-explicit-any
async function documentOf(env: Record<string, string>): Promise<Record<string, any>> {
  const response = await appWith(env).request("https://mail.example.com/openapi.json");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
  return await response.json();
}

describe("GET /openapi.json", () => {
  it("the checked-in documents are what build:openapi generates (run it if this fails)", async () => {
    const generated = buildOpenApiDocument();
    const stale = "is stale: run `deno task build:openapi` and commit it";
    const readable = JSON.parse(await Deno.readTextFile(OPENAPI_PATH));
    assert.deepEqual(readable, generated, `src/http/openapi.json ${stale}`);
    assert.deepEqual(await prebuiltDocument(), generated, `src/http/openapi_packed.ts ${stale}`);
  });

  for (
    const [name, env] of [["with API keys", { API_KEYS: "k-1" }], ["public", {
      ALLOWED_TO: "@example.com",
    }]] as const
  ) {
    it(`is a valid OpenAPI 3.1 document for @readme/openapi-parser (${name})`, async () => {
      const doc = await documentOf(env);
      const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
      assert.equal(result.valid, true, JSON.stringify(result));
      assert.deepEqual(result.warnings ?? [], []);
    });
  }

  it("names the server it was reached at and the package version", async () => {
    const doc = await documentOf({ API_KEYS: "k-1" });
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(doc.servers, [{ url: "https://mail.example.com" }]);
    assert.equal(doc.info.version, denoJson.version);
  });

  it("applies the bearer scheme when API_KEYS is set; /health and itself stay open", async () => {
    const doc = await documentOf({ API_KEYS: "k-1" });
    assert.deepEqual(doc.components.securitySchemes.bearer, {
      type: "http",
      scheme: "bearer",
      description: "One of `API_KEYS`.",
    });
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    assert.equal(doc.paths["/send"].post.security, undefined);
    assert.deepEqual(doc.paths["/health"].get.security, []);
    assert.deepEqual(doc.paths["/openapi.json"].get.security, []);
  });

  it("declares no security for a public endpoint", async () => {
    const doc = await documentOf({ ALLOWED_TO: "@example.com" });
    assert.equal(doc.security, undefined);
    assert.equal(doc.components.securitySchemes, undefined);
  });

  it("documents /health's smtp parameter and the Idempotency-Key header", async () => {
    const doc = await documentOf({ API_KEYS: "k-1" });
    const [smtp] = doc.paths["/health"].get.parameters;
    assert.equal(smtp.name, "smtp");
    assert.equal(smtp.in, "query");
    for (const path of ["/send", "/send/batch"]) {
      const names = doc.paths[path].post.parameters.map((p: { name: string }) => p.name);
      assert.deepEqual(names, ["Idempotency-Key"]);
    }
  });

  it("has no description inside a media type object", async () => {
    const doc = await documentOf({ API_KEYS: "k-1" });
    type Operation = { responses: Record<string, { content?: Record<string, object> }> };
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item as Record<string, Operation>)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            assert.ok(
              !("description" in (media as object)),
              `${method} ${path} ${status} ${type} has a description in its media type`,
            );
          }
        }
      }
    }
  });

  it("describes every send answer of the status table with the Result and the schemas", async () => {
    const doc = await documentOf({ API_KEYS: "k-1" });
    const send = doc.paths["/send"].post;
    assert.deepEqual(send.requestBody.content["application/json"].schema, {
      $ref: "#/components/schemas/Message",
    });
    const statuses = Object.keys(send.responses).sort();
    assert.deepEqual(statuses, [
      "200",
      "400",
      "401",
      "403",
      "409",
      "413",
      "415",
      "422",
      "429",
      "500",
      "501",
      "502",
      "503",
      "504",
    ]);
    assert.deepEqual(send.responses["200"].content["application/json"].schema, {
      $ref: "#/components/schemas/Result",
    });
    const schemas = doc.components.schemas;
    for (
      const field of [
        "from",
        "to",
        "cc",
        "bcc",
        "replyTo",
        "attachments",
        "dsn",
        "allowPartial",
        "token",
      ]
    ) {
      assert.ok(schemas.Message.properties[field], `Message.${field} missing`);
    }
    assert.deepEqual(schemas.Result.properties.status.enum, ["sent", "failed", "cancelled"]);
    const types = schemas.Result.properties.error.properties.type.enum;
    for (const type of ["unknown_outcome", "internal", "unsupported_media_type", "rate_limited"]) {
      assert.ok(types.includes(type), `error.type ${type} missing`);
    }
  });
});
