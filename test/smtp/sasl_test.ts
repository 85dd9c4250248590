import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { SMTPServer } from "smtp-server";
import {
  chooseMechanism,
  createSaslClient,
  credentialForms,
  echoesCredentials,
  isSaslMechanism,
  SASL_CANCEL,
  type SaslClient,
  type SaslCredentials,
  type SaslMechanism,
} from "../../src/smtp/sasl.ts";

/** Base64 of UTF-8, by node's Buffer: an encoder independent of the one under test. */
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString("utf8");

const SECRET = "hunter2-SECRET";
const TOKEN = "ya29.TOKEN-SECRET";

/** Asserts `fn` throws a TypeError whose message names `field` and holds no `secret`. */
function assertFieldError(fn: () => unknown, field: string, secret: string): void {
  assert.throws(fn, (error: Error) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.ok(error.message.includes(field), error.message);
    assert.ok(!error.message.includes(secret), "the message holds no secret");
    return true;
  });
}

describe("createSaslClient: PLAIN", () => {
  it("sends NUL user NUL password as the initial response", async () => {
    const client = createSaslClient("PLAIN", { username: "user", password: "pass" });
    assert.equal(client.mechanism, "PLAIN");
    assert.equal(client.initialResponse, b64("\0user\0pass"));
    assert.equal(client.initialResponse, "AHVzZXIAcGFzcw==");
    // Without the initial response on the AUTH line, the empty 334 gets it.
    assert.equal(await client.respond(""), "AHVzZXIAcGFzcw==");
    assert.equal(await client.respond(""), SASL_CANCEL);
  });

  it("encodes non-ASCII credentials as UTF-8", () => {
    const client = createSaslClient("plain" as SaslMechanism, {
      username: "jörg@exämple.de",
      password: "pässwörd✓€😀",
    });
    assert.equal(client.initialResponse, b64("\0jörg@exämple.de\0pässwörd✓€😀"));
  });

  it("cancels on an unexpected challenge", async () => {
    const client = createSaslClient("PLAIN", { username: "user", password: "pass" });
    assert.equal(await client.respond(b64("what?")), SASL_CANCEL);
  });

  it("refuses NUL in the username or password, naming the field only", () => {
    const user = "a\0SECRETUSER";
    assertFieldError(
      () => createSaslClient("PLAIN", { username: user, password: "p" }),
      "auth.username",
      "SECRETUSER",
    );
    assertFieldError(
      () => createSaslClient("PLAIN", { username: "u", password: `x\0${SECRET}` }),
      "auth.password",
      SECRET,
    );
  });
});

describe("createSaslClient: LOGIN", () => {
  it("answers the Username: and Password: prompts", async () => {
    const client = createSaslClient("LOGIN", { username: "user", password: "pässword" });
    assert.equal(client.initialResponse, undefined);
    assert.equal(await client.respond("VXNlcm5hbWU6"), b64("user"));
    assert.equal(await client.respond("UGFzc3dvcmQ6"), b64("pässword"));
    assert.equal(await client.respond("UGFzc3dvcmQ6"), SASL_CANCEL);
  });

  it("reads the prompt, whatever its case and order", async () => {
    const client = createSaslClient("LOGIN", { username: "user", password: "pass" });
    assert.equal(await client.respond(b64("PASSWORD")), b64("pass"));
    assert.equal(await client.respond(b64("user name:")), b64("user"));
  });

  it("falls back to the order for prompts it cannot read", async () => {
    const client = createSaslClient("LOGIN", { username: "user", password: "pass" });
    assert.equal(await client.respond(b64("Benutzername:")), b64("user"));
    assert.equal(await client.respond("%%%not base64"), b64("pass"));
  });
});

describe("createSaslClient: CRAM-MD5", () => {
  it("answers the RFC 2195 example challenge", async () => {
    const client = createSaslClient("CRAM-MD5", { username: "tim", password: "tanstaaftanstaaf" });
    assert.equal(client.initialResponse, undefined);
    const answer = await client.respond("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    assert.equal(answer, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    assert.equal(unb64(answer), "tim b913a602c7eda7a495b4e6e7334d3890");
  });

  it("cancels on an empty, non-base64 or second challenge", async () => {
    const credentials = { username: "tim", password: "x" };
    assert.equal(await createSaslClient("CRAM-MD5", credentials).respond(""), SASL_CANCEL);
    assert.equal(await createSaslClient("CRAM-MD5", credentials).respond("%%%"), SASL_CANCEL);
    const client = createSaslClient("CRAM-MD5", credentials);
    assert.notEqual(await client.respond(b64("<1.2@host>")), SASL_CANCEL);
    assert.equal(await client.respond(b64("<1.2@host>")), SASL_CANCEL);
  });
});

describe("createSaslClient: XOAUTH2", () => {
  it("sends user=…^Aauth=Bearer …^A^A (Google's documented example)", () => {
    const client = createSaslClient("XOAUTH2", {
      username: "someuser@example.com",
      accessToken: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
    });
    assert.equal(
      client.initialResponse,
      "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr" +
        "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==",
    );
  });

  it("answers the error challenge with an empty line", async () => {
    const client = createSaslClient("XOAUTH2", { username: "u@example.com", accessToken: TOKEN });
    const error = b64(JSON.stringify({ status: "401", schemes: "bearer", scope: "x" }));
    assert.equal(await client.respond(error), "");
  });

  it("sends the token on an empty first challenge, then empty lines", async () => {
    const client = createSaslClient("XOAUTH2", { username: "u@example.com", accessToken: TOKEN });
    assert.equal(await client.respond(""), client.initialResponse);
    assert.equal(await client.respond(b64("{}")), "");
  });

  it("uses the password as the token when XOAUTH2 is asked for by name", () => {
    const client = createSaslClient("XOAUTH2", { username: "u", password: TOKEN });
    assert.equal(unb64(client.initialResponse!), `user=u\x01auth=Bearer ${TOKEN}\x01\x01`);
  });

  it("refuses \\x01 in the username or token, naming the field only", () => {
    assertFieldError(
      () => createSaslClient("XOAUTH2", { username: "u", accessToken: `a\x01${TOKEN}` }),
      "auth.accessToken",
      TOKEN,
    );
    assertFieldError(
      () => createSaslClient("XOAUTH2", { username: "SECRETUSER\x01v", accessToken: TOKEN }),
      "auth.username",
      "SECRETUSER",
    );
  });
});

describe("createSaslClient: argument errors", () => {
  const cases: [string, string, SaslCredentials, string][] = [
    ["empty username", "PLAIN", { username: "", password: SECRET }, "auth.username"],
    ["no password for PLAIN", "PLAIN", { username: "u", accessToken: TOKEN }, "auth.password"],
    ["no password for LOGIN", "LOGIN", { username: "u" }, "auth.password"],
    ["no password for CRAM-MD5", "CRAM-MD5", { username: "u" }, "auth.password"],
    ["no token for XOAUTH2", "XOAUTH2", { username: "u" }, "auth.accessToken"],
    ["empty token for XOAUTH2", "XOAUTH2", { username: "u", accessToken: "" }, "auth.accessToken"],
    ["unknown mechanism", "GSSAPI", { username: "u", password: SECRET }, "auth.mechanism"],
  ];
  for (const [name, mechanism, credentials, field] of cases) {
    it(`${name}: TypeError naming the field, no secret`, () => {
      const fn = () => createSaslClient(mechanism as SaslMechanism, credentials);
      assertFieldError(fn, field, SECRET);
      assertFieldError(fn, field, TOKEN);
    });
  }
});

describe("chooseMechanism", () => {
  const password = { username: "u", password: SECRET };
  const token = { username: "u", accessToken: TOKEN };
  const both = { username: "u", password: SECRET, accessToken: TOKEN };
  const cases: [string, string[], SaslCredentials, SaslMechanism | undefined][] = [
    ["PLAIN first", ["LOGIN", "CRAM-MD5", "PLAIN"], password, "PLAIN"],
    ["LOGIN over CRAM-MD5", ["CRAM-MD5", "LOGIN"], password, "LOGIN"],
    ["CRAM-MD5 when alone", ["CRAM-MD5", "GSSAPI"], password, "CRAM-MD5"],
    ["names in any case", ["login", "plain"], password, "PLAIN"],
    ["XOAUTH2 with a token", ["PLAIN", "LOGIN", "XOAUTH2"], token, "XOAUTH2"],
    ["XOAUTH2 first with both", ["PLAIN", "XOAUTH2"], both, "XOAUTH2"],
    ["password when XOAUTH2 is not offered", ["PLAIN"], both, "PLAIN"],
    ["nothing for a token without XOAUTH2", ["PLAIN", "LOGIN"], token, undefined],
    ["nothing for a password with only XOAUTH2", ["XOAUTH2"], password, undefined],
    ["nothing known offered", ["GSSAPI", "NTLM"], both, undefined],
    ["nothing offered", [], both, undefined],
  ];
  for (const [name, offered, credentials, expected] of cases) {
    it(name, () => assert.equal(chooseMechanism(offered, credentials), expected));
  }

  it("takes the preferred mechanism when offered, in any case", () => {
    assert.equal(chooseMechanism(["PLAIN", "CRAM-MD5"], password, "cram-md5"), "CRAM-MD5");
    assert.equal(chooseMechanism(["plain", "xoauth2"], password, "XOAUTH2"), "XOAUTH2");
  });

  it("throws when the preferred mechanism is not offered, listing the offer", () => {
    assert.throws(() => chooseMechanism(["PLAIN", "LOGIN"], password, "cram-md5"), {
      name: "TypeError",
      message: /does not offer AUTH CRAM-MD5 \(it offers PLAIN LOGIN\)/,
    });
    assert.throws(() => chooseMechanism([], password, "PLAIN"), {
      name: "TypeError",
      message: /it offers none/,
    });
  });

  it("throws on an unknown preferred mechanism without echoing it", () => {
    assert.throws(() => chooseMechanism(["PLAIN"], password, "X-SECRET-MECH"), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /auth\.mechanism must be one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2/);
      assert.ok(!error.message.includes("SECRET"));
      return true;
    });
  });

  it("isSaslMechanism knows the four names in any case", () => {
    for (const name of ["plain", "LOGIN", "Cram-Md5", "xoauth2"]) assert.ok(isSaslMechanism(name));
    for (const name of ["GSSAPI", "", "PLAIN "]) assert.ok(!isSaslMechanism(name));
  });
});

// Real exchanges with npm:smtp-server, whose SASL parsers are independent of ours.
describe("SASL against smtp-server", () => {
  const accounts = new Map([
    ["ann@example.com", SECRET],
    ["jörg@exämple.de", "pässwörd ✓€😀 with spaces"],
  ]);
  const tokens = new Map([["ann@example.com", TOKEN]]);
  const seen: { method: string; username: string; password?: string; accessToken?: string }[] = [];
  let server: SMTPServer;
  let port = 0;

  before(async () => {
    server = new SMTPServer({
      authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
      allowInsecureAuth: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onAuth(auth, _session, callback) {
        seen.push({
          method: auth.method,
          username: auth.username ?? "",
          password: auth.password ?? undefined,
          accessToken: auth.accessToken,
        });
        const expected = accounts.get(auth.username ?? "");
        let ok = false;
        if (auth.method === "XOAUTH2") {
          ok = tokens.get(auth.username ?? "") === auth.accessToken;
          if (!ok) {
            const data = { status: "401", schemes: "bearer", scope: "https://mail.google.com/" };
            return callback(null, { data });
          }
        } else if (auth.method === "CRAM-MD5") {
          ok = expected !== undefined && auth.validatePassword!(expected);
        } else {
          ok = expected !== undefined && auth.password === expected;
        }
        callback(null, ok ? { user: auth.username } : undefined);
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.server.address() as { port: number }).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** One SMTP session: EHLO, AUTH with `make(offered)`, QUIT; returns the AUTH outcome. */
  async function authenticate(
    make: (offered: string[]) => SaslClient,
    options: { initialResponse?: boolean } = {},
  ): Promise<{ code: number; text: string; challenges: string[] }> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const decoder = new TextDecoder();
    let pending = "";
    const readLine = async (): Promise<string> => {
      while (!pending.includes("\r\n")) {
        const buffer = new Uint8Array(4096);
        const n = await conn.read(buffer);
        if (n === null) throw new Error("server closed the connection");
        pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      }
      const end = pending.indexOf("\r\n");
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      return line;
    };
    const readReply = async () => {
      const lines: string[] = [];
      let line: string;
      do lines.push(line = await readLine()); while (line[3] === "-");
      return { code: Number(line.slice(0, 3)), lines: lines.map((l) => l.slice(4)) };
    };
    const send = (line: string) => conn.write(new TextEncoder().encode(line + "\r\n"));
    try {
      assert.equal((await readReply()).code, 220);
      await send("EHLO client.test");
      const ehlo = await readReply();
      const authLine = ehlo.lines.find((l) => l.toUpperCase().startsWith("AUTH "));
      const client = make(authLine?.split(" ").slice(1) ?? []);
      const initial = options.initialResponse !== false ? client.initialResponse : undefined;
      await send(`AUTH ${client.mechanism}${initial === undefined ? "" : ` ${initial}`}`);
      const challenges: string[] = [];
      for (let round = 0; round < 5; round++) {
        const reply = await readReply();
        if (reply.code !== 334) {
          await send("QUIT");
          await readReply();
          return { code: reply.code, text: reply.lines.join("\n"), challenges };
        }
        challenges.push(reply.lines[0]);
        await send(await client.respond(reply.lines[0]));
      }
      throw new Error("too many challenges");
    } finally {
      conn.close();
    }
  }

  for (const [username, password] of accounts) {
    for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as const) {
      it(`${mechanism} authenticates ${username}`, async () => {
        const credentials = { username, password };
        const result = await authenticate((offered) =>
          createSaslClient(chooseMechanism(offered, credentials, mechanism)!, credentials)
        );
        assert.equal(result.code, 235, result.text);
        const last = seen.at(-1)!;
        assert.equal(last.method, mechanism);
        assert.equal(last.username, username);
        if (mechanism !== "CRAM-MD5") assert.equal(last.password, password);
      });
    }
  }

  it("the automatic choice against smtp-server's offer authenticates", async () => {
    const credentials = { username: "ann@example.com", password: SECRET };
    const result = await authenticate((offered) => {
      assert.deepEqual(offered, ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]);
      return createSaslClient(chooseMechanism(offered, credentials)!, credentials);
    });
    assert.equal(result.code, 235);
    assert.equal(seen.at(-1)!.method, "PLAIN");
  });

  it("a wrong password is refused with 535", async () => {
    for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as const) {
      const credentials = { username: "ann@example.com", password: "wrong" };
      const result = await authenticate(() => createSaslClient(mechanism, credentials));
      assert.equal(result.code, 535, mechanism);
    }
  });

  it("PLAIN works without the initial response (empty 334 first)", async () => {
    const credentials = { username: "ann@example.com", password: SECRET };
    const result = await authenticate(() => createSaslClient("PLAIN", credentials), {
      initialResponse: false,
    });
    assert.equal(result.code, 235);
    assert.deepEqual(result.challenges, [""]);
  });

  it("XOAUTH2 authenticates with a good token, with or without the initial response", async () => {
    const credentials = { username: "ann@example.com", accessToken: TOKEN };
    for (const initialResponse of [true, false]) {
      const result = await authenticate(
        (offered) => createSaslClient(chooseMechanism(offered, credentials)!, credentials),
        { initialResponse },
      );
      assert.equal(result.code, 235);
      assert.equal(seen.at(-1)!.accessToken, TOKEN);
    }
  });

  it("XOAUTH2 with a bad token: the JSON error challenge, an empty answer, then 535", async () => {
    const credentials = { username: "ann@example.com", accessToken: "expired" };
    const result = await authenticate(() => createSaslClient("XOAUTH2", credentials));
    assert.equal(result.code, 535);
    assert.equal(result.challenges.length, 1);
    assert.equal(JSON.parse(unb64(result.challenges[0])).status, "401");
  });
});

describe("credentialForms and echoesCredentials", () => {
  const credentials = { username: "ann@example.com", password: "open-sesame-42" };
  const forms = credentialForms(credentials);

  it("lists the parts and the base64 responses of PLAIN, LOGIN and XOAUTH2", () => {
    for (
      const form of [
        "ann@example.com",
        "open-sesame-42",
        btoa("open-sesame-42"),
        btoa("ann@example.com"),
        btoa("\0ann@example.com\0open-sesame-42"),
        btoa("user=ann@example.com\x01auth=Bearer open-sesame-42\x01\x01"),
      ]
    ) {
      assert.ok(forms.includes(form), form);
    }
  });

  it("finds a whole form, or any 8-character run of a longer one, in any case", () => {
    const plain = btoa("\0ann@example.com\0open-sesame-42");
    assert.ok(echoesCredentials(`535 bad response on '${plain}'`, forms));
    assert.ok(echoesCredentials(`535 bad response on '${plain.slice(5, 14)}...'`, forms));
    assert.ok(echoesCredentials("535 5.7.8 no such user ANN@EXAMPLE.COM", forms));
    assert.ok(!echoesCredentials("535 5.7.8 Authentication credentials invalid", forms));
  });
});
