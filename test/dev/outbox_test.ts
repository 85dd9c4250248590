import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  createOutboxRoutes,
  isOutboxId,
  listOutbox,
  readOutboxMessage,
  saveOutboxMessage,
} from "../../src/dev/outbox.ts";

const encoder = new TextEncoder();

function message(headers: string[], body = "body\r\n"): Uint8Array {
  return encoder.encode([...headers, "", body].join("\r\n"));
}

describe("outbox", () => {
  let dir: string;
  let outside: string;
  const older = message([
    "From: =?UTF-8?Q?=C3=84nne?= <ann@example.com>",
    "To: Bob <bob@example.com>,",
    " cy@example.org",
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?=",
  ]);
  const newer = message(["From: zoe@example.com", "Subject: second"], "x\n\nFrom: not@header\n");
  let olderId: string;
  let newerId: string;

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "edgemail-outbox-" });
    outside = await Deno.makeTempDir({ prefix: "edgemail-outside-" });
    await Deno.writeTextFile(`${outside}/secret.eml`, "Subject: secret\r\n\r\n");
    newerId = (await saveOutboxMessage(dir, newer, {
      receivedAt: new Date("2026-11-21T23:15:00.124Z"),
    })).id;
    olderId = (await saveOutboxMessage(
      dir,
      ReadableStream.from([older.subarray(0, 9), older.subarray(9)]),
      {
        receivedAt: new Date("2026-11-21T23:15:00.123Z"),
      },
    )).id;
    // Files the outbox did not write are not messages.
    await Deno.writeTextFile(`${dir}/notes.txt`, "Subject: no\r\n\r\n");
    await Deno.writeTextFile(`${dir}/.incoming-abcdefghjk.eml`, "Subject: partial\r\n");
  });

  after(async () => {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  });

  it("names files <timestamp>-<id>.eml, sortable by arrival", async () => {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.ok(names.includes(`20261121T231500123Z-${olderId}.eml`));
    assert.ok(names.includes(`20261121T231500124Z-${newerId}.eml`));
    assert.ok(isOutboxId(olderId) && isOutboxId(newerId));
    assert.notEqual(olderId, newerId);
  });

  /** What the outbox must list for the two messages above (ids are known after `before`). */
  function expectedListing() {
    return [
      {
        id: newerId,
        date: "2026-11-21T23:15:00.124Z",
        from: "zoe@example.com",
        to: [],
        subject: "second",
        size: newer.length,
      },
      {
        id: olderId,
        date: "2026-11-21T23:15:00.123Z",
        from: "Änne <ann@example.com>",
        to: ["Bob <bob@example.com>", "cy@example.org"],
        subject: "Grüße",
        size: older.length,
      },
    ];
  }

  it("lists messages newest first with decoded header fields", async () => {
    assert.deepEqual(await listOutbox(dir), expectedListing());
  });

  it("treats a missing folder as an empty outbox", async () => {
    assert.deepEqual(await listOutbox(`${dir}/missing`), []);
    assert.equal(await readOutboxMessage(`${dir}/missing`, olderId), undefined);
  });

  it("reads a message back byte for byte", async () => {
    assert.deepEqual(await readOutboxMessage(dir, olderId), older);
    assert.deepEqual(await readOutboxMessage(dir, newerId), newer);
  });

  it("answers undefined for an unknown id and throws for something that is not an id", async () => {
    assert.equal(await readOutboxMessage(dir, "0000000000"), undefined);
    for (const id of ["../secret", "..%2Fsecret", "", "ABCDEFGHJK", `${olderId}.eml`]) {
      await assert.rejects(readOutboxMessage(dir, id), TypeError);
    }
  });

  describe("routes", () => {
    const request = (path: string, init?: RequestInit) =>
      createOutboxRoutes(dir).request(`http://localhost${path}`, init);

    it("GET /outbox lists the outbox as JSON", async () => {
      const response = await request("/outbox");
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      assert.deepEqual(await response.json(), expectedListing());
    });

    it("GET /outbox/:id answers the raw message as message/rfc822", async () => {
      const response = await request(`/outbox/${olderId}`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "message/rfc822");
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), older);
    });

    it("answers 404 JSON for an unknown id", async () => {
      const response = await request("/outbox/0000000000");
      assert.equal(response.status, 404);
      const body = await response.json();
      assert.equal(body.error.type, "not_found");
      assert.equal(typeof body.error.message, "string");
    });

    it("answers 500 JSON when the outbox cannot be read", async () => {
      const response = await createOutboxRoutes(`${outside}/secret.eml`).request(
        "http://localhost/outbox",
      );
      assert.equal(response.status, 500);
      assert.equal((await response.json()).error.type, "outbox");
    });

    it("refuses path traversal with 400 JSON", async () => {
      const relative = `..%2F${outside.slice(outside.lastIndexOf("/") + 1)}%2Fsecret`;
      for (const id of [relative, "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "notes.txt"]) {
        const response = await request(`/outbox/${id}`);
        assert.equal(response.status, 400, id);
        const body = await response.json();
        assert.equal(body.error.type, "validation");
        assert.doesNotMatch(JSON.stringify(body), /secret|passwd|notes/);
      }
    });
  });
});
