import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../src/http/config.ts";

const SECRET_PASS = "Pa55:w0rd/S3cret%";
const SECRET_KEY = "key-9f8e7d6c5b4a3210";

/** The problems `loadConfig` reports for `env`; fails when it does not throw. */
function problemsOf(env: Record<string, string | undefined>, development = false): string[] {
  try {
    loadConfig(env, { development });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    for (const problem of error.problems) assert.ok(error.message.includes(problem));
    return error.problems;
  }
  assert.fail("loadConfig accepted the configuration");
}

const base = { SMTP_URL: "smtp://smtp.example.com", API_KEYS: SECRET_KEY };

describe("loadConfig: SMTP_URL", () => {
  it("defaults to STARTTLS on 587 and the contract's limits", () => {
    const config = loadConfig(base);
    assert.deepEqual(config.smtp, {
      host: "smtp.example.com",
      port: 587,
      tls: "starttls",
      timeoutMs: 30000,
      pool: { maxConnections: 5 },
    });
    assert.equal(config.maxMessageBytes, 26214400);
    assert.equal(config.maxRecipients, 50);
    assert.equal(config.maxBatch, 100);
    assert.equal(config.keepaliveMs, 15000);
    assert.deepEqual(config.apiKeys, [SECRET_KEY]);
    assert.deepEqual(config.corsOrigins, []);
    assert.equal(config.allowedTo, undefined);
    assert.equal(config.development, false);
  });

  it("uses implicit TLS on 465 for smtps://", () => {
    const { smtp } = loadConfig({ ...base, SMTP_URL: "smtps://mail.example.org" });
    assert.equal(smtp.tls, "implicit");
    assert.equal(smtp.port, 465);
  });

  it("percent-decodes user and password", () => {
    const url = `smtp://us%40er:${encodeURIComponent(SECRET_PASS)}@[::1]:2525`;
    const { smtp } = loadConfig({ ...base, SMTP_URL: url });
    assert.deepEqual(smtp.auth, { username: "us@er", password: SECRET_PASS });
    assert.equal(smtp.host, "::1");
    assert.equal(smtp.port, 2525);
  });

  it("reads ?tls=opportunistic and ?tls=none&insecure_auth=1", () => {
    assert.equal(
      loadConfig({ ...base, SMTP_URL: "smtp://h.example?tls=opportunistic" }).smtp.tls,
      "opportunistic",
    );
    const { smtp } = loadConfig({
      ...base,
      SMTP_URL: "smtp://u:p@127.0.0.1:25?tls=none&insecure_auth=1",
    });
    assert.equal(smtp.tls, "none");
    assert.equal(smtp.allowInsecureAuth, true);
    assert.equal(
      loadConfig({ ...base, SMTP_URL: "smtp://127.0.0.1:25?tls=none" }).smtp.tls,
      "none",
    );
  });

  it("refuses credentials over ?tls=none without insecure_auth=1", () => {
    const url = `smtp://user:${encodeURIComponent(SECRET_PASS)}@127.0.0.1?tls=none`;
    const [problem] = problemsOf({ ...base, SMTP_URL: url });
    assert.match(problem, /SMTP_URL.*insecure_auth=1/);
    assert.ok(!problem.includes(SECRET_PASS) && !problem.includes("Pa55"));
  });

  it("lets SMTP_USER / SMTP_PASS complete a URL without credentials (secrets kept apart)", () => {
    const { smtp } = loadConfig({ ...base, SMTP_USER: "ann", SMTP_PASS: SECRET_PASS });
    assert.deepEqual(smtp.auth, { username: "ann", password: SECRET_PASS });
  });

  for (
    const [what, url, pattern] of [
      ["another scheme", "https://smtp.example.com", /SMTP_URL must start with smtp:\/\//],
      ["a host:port without scheme", "smtp.example.com:587", /SMTP_URL must start with smtp:\/\//],
      ["an unparsable URL", "smtp://[zz-bad", /SMTP_URL is not a URL/],
      ["a path", "smtp://smtp.example.com/inbox", /SMTP_URL must not have a path/],
      ["an unknown query parameter", "smtp://h.example?secure=1", /SMTP_URL has an unknown query/],
      ["a bad tls value", "smtp://h.example?tls=maybe", /SMTP_URL \?tls= must be/],
      ["tls on smtps", "smtps://h.example?tls=none", /SMTP_URL \?tls= only applies to smtp/],
      ["insecure_auth with TLS", "smtp://h.example?insecure_auth=1", /insecure_auth=1 only/],
      ["a port out of range", "smtp://h.example:0", /SMTP_URL has a port outside/],
      ["a bad host", "smtp://bad_host!/", /SMTP_URL must be a host name/],
      ["bad percent-encoding", "smtp://u:Pa55%E0%A4%A@h.example", /SMTP_URL has a malformed/],
      ["CR in the password", `smtp://u:a%0Db${SECRET_PASS.slice(0, 4)}@h.example`, /CR, LF/],
    ] as const
  ) {
    it(`refuses ${what}, naming SMTP_URL and not echoing it`, () => {
      const problems = problemsOf({ ...base, SMTP_URL: url });
      assert.equal(problems.length, 1);
      assert.match(problems[0], pattern);
      assert.ok(!problems[0].includes(url), "the URL is echoed");
      assert.ok(!problems[0].includes("Pa55"), "the password is echoed");
    });
  }
});

describe("loadConfig: SMTP_HOST and friends", () => {
  const hostBase = { SMTP_HOST: "smtp.example.com", API_KEYS: SECRET_KEY };

  it("builds the same options from separate variables", () => {
    const { smtp } = loadConfig({
      ...hostBase,
      SMTP_PORT: "465",
      SMTP_USER: "ann",
      SMTP_PASS: SECRET_PASS,
      SMTP_AUTH: "CRAM-MD5",
      SMTP_NAME: "edge.example.com",
      SMTP_TIMEOUT_MS: "5000",
      SMTP_POOL_MAX: "12",
    });
    assert.deepEqual(smtp, {
      host: "smtp.example.com",
      port: 465,
      tls: "implicit",
      timeoutMs: 5000,
      pool: { maxConnections: 12 },
      name: "edge.example.com",
      auth: { username: "ann", password: SECRET_PASS, mechanism: "cram-md5" },
    });
  });

  it("passes the access token for xoauth2 in SMTP_PASS", () => {
    const { smtp } = loadConfig({
      ...hostBase,
      SMTP_USER: "ann@example.com",
      SMTP_PASS: "ya29.token",
      SMTP_AUTH: "xoauth2",
    });
    assert.deepEqual(smtp.auth, {
      username: "ann@example.com",
      accessToken: "ya29.token",
      mechanism: "xoauth2",
    });
  });

  it("honours SMTP_TLS and SMTP_INSECURE_AUTH", () => {
    const { smtp } = loadConfig({
      ...hostBase,
      SMTP_TLS: "none",
      SMTP_PORT: "2525",
      SMTP_USER: "u",
      SMTP_PASS: "p",
      SMTP_INSECURE_AUTH: "1",
    });
    assert.equal(smtp.tls, "none");
    assert.equal(smtp.port, 2525);
    assert.equal(smtp.allowInsecureAuth, true);
    const problems = problemsOf({
      ...hostBase,
      SMTP_TLS: "none",
      SMTP_USER: "u",
      SMTP_PASS: SECRET_PASS,
    });
    assert.match(problems[0], /SMTP_INSECURE_AUTH=1/);
  });

  it("accepts SMTP_CA_CERT, also with literal \\n from a one-line .env", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert.deepEqual(loadConfig({ ...hostBase, SMTP_CA_CERT: pem }).smtp.caCerts, [pem]);
    const oneLine = pem.replaceAll("\n", "\\n");
    assert.deepEqual(loadConfig({ ...hostBase, SMTP_CA_CERT: oneLine }).smtp.caCerts, [pem]);
  });

  it("refuses SMTP_URL together with SMTP_HOST", () => {
    const problems = problemsOf({ ...base, SMTP_HOST: "other.example.com" });
    assert.deepEqual(problems, ["SMTP_URL and SMTP_HOST are both set: use one of them."]);
  });

  it("refuses a configuration without SMTP server", () => {
    const [problem] = problemsOf({ API_KEYS: SECRET_KEY });
    assert.match(problem, /SMTP_URL.*SMTP_HOST/);
  });

  it("refuses host-only settings beside SMTP_URL and doubled credentials", () => {
    const problems = problemsOf({
      SMTP_URL: "smtp://u:p@h.example",
      API_KEYS: SECRET_KEY,
      SMTP_PORT: "25",
      SMTP_TLS: "none",
      SMTP_USER: "v",
      SMTP_PASS: SECRET_PASS,
    });
    assert.equal(problems.length, 4);
    assert.match(problems.join("\n"), /SMTP_PORT only applies with SMTP_HOST/);
    assert.match(problems.join("\n"), /SMTP_TLS only applies with SMTP_HOST/);
    assert.match(problems.join("\n"), /SMTP_USER is set and SMTP_URL has a user name/);
    assert.match(problems.join("\n"), /SMTP_PASS is set and SMTP_URL has a password/);
    assert.ok(!problems.join("\n").includes(SECRET_PASS));
  });

  it("refuses half credentials and SMTP_AUTH without a user", () => {
    assert.match(problemsOf({ ...hostBase, SMTP_USER: "ann" })[0], /no password/);
    assert.match(problemsOf({ ...hostBase, SMTP_PASS: SECRET_PASS })[0], /no user name/);
    assert.match(problemsOf({ ...hostBase, SMTP_AUTH: "plain" })[0], /SMTP_AUTH is set/);
  });
});

describe("loadConfig: every bad variable is named, values never echoed", () => {
  const bad: Record<string, [string, RegExp]> = {
    SMTP_HOST: ["not a host!", /^SMTP_HOST must be a host name/],
    SMTP_PORT: ["70000", /^SMTP_PORT must be a whole number from 1 to 65535/],
    SMTP_TLS: ["ssl", /^SMTP_TLS must be one of starttls, implicit, opportunistic, none/],
    SMTP_INSECURE_AUTH: ["perhaps", /^SMTP_INSECURE_AUTH must be 1 or 0/],
    SMTP_USER: ["ann\r\nRSET", /^SMTP_USER the user name must not contain CR, LF or NUL/],
    SMTP_PASS: [`${SECRET_PASS}\n`, /^SMTP_PASS the password must not contain CR, LF or NUL/],
    SMTP_CA_CERT: ["xyzzy-not-pem", /^SMTP_CA_CERT must hold one or more PEM/],
    SMTP_AUTH: ["gssapi", /^SMTP_AUTH must be one of plain, login, cram-md5, xoauth2/],
    SMTP_NAME: ["edge_node\r\n", /^SMTP_NAME must be a host name/],
    SMTP_TIMEOUT_MS: ["0", /^SMTP_TIMEOUT_MS must be a whole number from 1 to 2147483647/],
    SMTP_POOL_MAX: ["0", /^SMTP_POOL_MAX must be a whole number from 1 to 1000/],
    MAIL_FROM: ["Ann <ann-at-example.com>", /^MAIL_FROM is not a valid address: /],
    ALLOWED_FROM: ["ann@example.com, bob", /^ALLOWED_FROM entry 2 is not an address or @domain/],
    ALLOWED_TO: ["@exa_mple.com", /^ALLOWED_TO entry 1 is not an address or @domain/],
    API_KEYS: [`ok-key,${SECRET_KEY} with space`, /^API_KEYS key 2 has characters/],
    CORS_ORIGINS: ["https://app.example.com/path", /^CORS_ORIGINS entry 1 is not an origin/],
    MAX_MESSAGE_BYTES: ["10MB", /^MAX_MESSAGE_BYTES must be a whole number/],
    MAX_RECIPIENTS: ["-1", /^MAX_RECIPIENTS must be a whole number/],
    MAX_BATCH: ["1.5", /^MAX_BATCH must be a whole number/],
    RATE_LIMIT: ["100 per hour", /^RATE_LIMIT must be off or <messages>\/<window>/],
    TRUST_PROXY: ["maybe", /^TRUST_PROXY must be 1 or 0/],
    IDEMPOTENCY_TTL_S: ["1d", /^IDEMPOTENCY_TTL_S must be a whole number/],
  };
  // ALLOWED_TO too, so that a bad CORS_ORIGINS is its only problem.
  const hostBase = {
    SMTP_HOST: "smtp.example.com",
    API_KEYS: SECRET_KEY,
    ALLOWED_TO: "@example.com",
  };

  for (const [name, [value, pattern]] of Object.entries(bad)) {
    it(`${name}`, () => {
      const problems = problemsOf({ ...hostBase, [name]: value });
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0], pattern);
      for (const part of value.split(/[\s,<>@]+/).filter((p) => p.length >= 4)) {
        assert.ok(!problems[0].includes(part), `${name}: the value is echoed (${part})`);
      }
    });
  }

  it("reports all problems at once, one per variable", () => {
    const env = Object.fromEntries(Object.entries(bad).map(([name, [value]]) => [name, value]));
    const problems = problemsOf({ ...env, API_KEYS: SECRET_KEY });
    const named = new Set(problems.map((problem) => problem.split(" ")[0]));
    for (const name of Object.keys(bad)) {
      if (name !== "API_KEYS") assert.ok(named.has(name), `${name} not reported`);
    }
    assert.equal(problems.length, Object.keys(bad).length - 1);
  });

  it("reports how variables combine even when a single one is also bad", () => {
    // One start-up attempt lists everything to fix: the bad value and the open relay.
    const problems = problemsOf({ SMTP_HOST: "smtp.example.com", MAX_BATCH: "x" });
    assert.equal(problems.length, 2);
    assert.match(problems[0], /^MAX_BATCH /);
    assert.match(problems[1], /open relay/i);
    const both = problemsOf({
      SMTP_HOST: "h.example",
      SMTP_URL: "smtp://h.example",
      SMTP_PORT: "0",
    });
    assert.ok(both.some((p) => /^SMTP_PORT /.test(p)));
    assert.ok(both.some((p) => /both set/.test(p)));
  });

  it("never quotes what follows an unencoded ? in a password", () => {
    const problems = problemsOf({
      SMTP_URL: "smtp://user:1234?hunter2secret@smtp.example.com",
      API_KEYS: SECRET_KEY,
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^SMTP_URL has an unknown query parameter .*percent-encode \?/);
    assert.doesNotMatch(problems[0], /hunter2|1234|smtp\.example/);
  });

  it("refuses a timeout beyond what a timer can wait", () => {
    const problems = problemsOf({ ...base, SMTP_TIMEOUT_MS: "3000000000" });
    assert.deepEqual(problems, ["SMTP_TIMEOUT_MS must be a whole number from 1 to 2147483647."]);
  });

  it("treats blank variables as unset", () => {
    const config = loadConfig({ ...hostBase, SMTP_PORT: "", MAX_BATCH: " ", CORS_ORIGINS: "" });
    assert.equal(config.smtp.port, 587);
    assert.equal(config.maxBatch, 100);
  });
});

describe("loadConfig: no open relay", () => {
  it("refuses a public endpoint without ALLOWED_TO, saying so", () => {
    const problems = problemsOf({ SMTP_URL: "smtp://h.example" });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /open relay/i);
    assert.match(problems[0], /API_KEYS/);
    assert.match(problems[0], /ALLOWED_TO/);
  });

  it("allows a public endpoint with ALLOWED_TO", () => {
    const config = loadConfig({ SMTP_URL: "smtp://h.example", ALLOWED_TO: "@example.com" });
    assert.deepEqual(config.apiKeys, []);
    assert.deepEqual(config.allowedTo, { addresses: [], domains: ["example.com"] });
  });

  it("an API_KEYS of only commas is an error, not a public endpoint", () => {
    assert.match(problemsOf({ SMTP_URL: "smtp://h.example", API_KEYS: " , " })[0], /API_KEYS/);
  });

  it("development mode is the exception, and then allows any sender", () => {
    const config = loadConfig({ SMTP_URL: "smtp://127.0.0.1:2525" }, { development: true });
    assert.equal(config.development, true);
    assert.equal(config.allowedFrom, undefined);
    assert.equal(config.allowedTo, undefined);
  });
});

describe("loadConfig: allowlists", () => {
  it("normalise entries to the RCPT form (IDN to A-labels, domain lowercased)", () => {
    const config = loadConfig({
      ...base,
      ALLOWED_TO: "Ann@Bücher.Example, @EXAMPLE.org, Bob <bob@Example.NET>",
    });
    assert.deepEqual(config.allowedTo, {
      addresses: ["Ann@xn--bcher-kva.example", "bob@example.net"],
      domains: ["example.org"],
    });
  });

  it("ALLOWED_FROM defaults to MAIL_FROM only, and MAIL_FROM is always allowed", () => {
    const only = loadConfig({ ...base, MAIL_FROM: "Shop <Shop@Example.COM>" });
    assert.equal(only.mailFrom, "Shop <Shop@Example.COM>");
    assert.deepEqual(only.allowedFrom, { addresses: ["Shop@example.com"], domains: [] });
    const both = loadConfig({
      ...base,
      MAIL_FROM: "shop@example.com",
      ALLOWED_FROM: "@news.example",
    });
    assert.deepEqual(both.allowedFrom, {
      addresses: ["shop@example.com"],
      domains: ["news.example"],
    });
    assert.deepEqual(loadConfig(base).allowedFrom, { addresses: [], domains: [] });
  });

  it("CORS_ORIGINS lists origins, with or without a trailing slash, or *", () => {
    const config = loadConfig({
      ...base,
      CORS_ORIGINS: "https://app.example.com/, http://localhost:5173,*",
      ALLOWED_TO: "owner@example.com",
    });
    assert.deepEqual(config.corsOrigins, ["https://app.example.com", "http://localhost:5173", "*"]);
  });
});

describe("loadConfig: browsers, rate limits, idempotency", () => {
  it("with CORS_ORIGINS, ALLOWED_TO is required even with API_KEYS (a page's key is public)", () => {
    const problems = problemsOf({ ...base, CORS_ORIGINS: "https://site.example" });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /ALLOWED_TO/);
    assert.match(problems[0], /CORS_ORIGINS/);
    const config = loadConfig({
      ...base,
      CORS_ORIGINS: "https://site.example",
      ALLOWED_TO: "owner@site.example",
    });
    assert.deepEqual(config.allowedTo, { addresses: ["owner@site.example"], domains: [] });
  });

  it("defaults: 60/1h for public callers, none for server callers, a day of idempotency", () => {
    const config = loadConfig(base);
    assert.deepEqual(config.rateLimit, { public: { limit: 60, windowMs: 3_600_000 } });
    assert.equal(config.trustProxy, false);
    assert.equal(config.idempotencyTtlMs, 86_400_000);
    assert.equal(config.kvPath, undefined);
    assert.equal(config.store, true);
  });

  it("development mode (mail stays in the embedded server) has no default rate limit", () => {
    const dev = { SMTP_URL: "smtp://127.0.0.1:2525?tls=none" };
    assert.deepEqual(loadConfig(dev, { development: true }).rateLimit, {});
    assert.deepEqual(loadConfig({ ...dev, RATE_LIMIT: "5/1m" }, { development: true }).rateLimit, {
      public: { limit: 5, windowMs: 60_000 },
      server: { limit: 5, windowMs: 60_000 },
    });
  });

  it("RATE_LIMIT applies to every caller; off turns it off", () => {
    const cases: [string, { limit: number; windowMs: number }][] = [
      ["20/60s", { limit: 20, windowMs: 60_000 }],
      ["500/1h", { limit: 500, windowMs: 3_600_000 }],
      ["10000/1d", { limit: 10_000, windowMs: 86_400_000 }],
      ["5/m", { limit: 5, windowMs: 60_000 }],
    ];
    for (const [text, limit] of cases) {
      assert.deepEqual(loadConfig({ ...base, RATE_LIMIT: text }).rateLimit, {
        public: limit,
        server: limit,
      });
    }
    assert.deepEqual(loadConfig({ ...base, RATE_LIMIT: "OFF" }).rateLimit, {});
  });

  it("names RATE_LIMIT, TRUST_PROXY and IDEMPOTENCY_TTL_S when their values are wrong", () => {
    for (const text of ["60", "60/1w", "0/1h", "10/0s", "ten/1h", "1/400d"]) {
      const problems = problemsOf({ ...base, RATE_LIMIT: text });
      assert.equal(problems.length, 1, text);
      assert.match(problems[0], /^RATE_LIMIT must be off or <messages>\/<window>/);
    }
    assert.match(problemsOf({ ...base, TRUST_PROXY: "maybe" })[0], /^TRUST_PROXY must be 1 or 0/);
    assert.match(problemsOf({ ...base, IDEMPOTENCY_TTL_S: "0" })[0], /^IDEMPOTENCY_TTL_S must/);
    const config = loadConfig({
      ...base,
      TRUST_PROXY: "1",
      IDEMPOTENCY_TTL_S: "60",
      KV_PATH: "/tmp/x.sqlite3",
    });
    assert.equal(config.trustProxy, true);
    assert.equal(config.idempotencyTtlMs, 60_000);
    assert.equal(config.kvPath, "/tmp/x.sqlite3");
  });

  it("without a store, a public configuration must say RATE_LIMIT=off, and says why", () => {
    const publicEnv = { SMTP_URL: "smtp://smtp.example.com", ALLOWED_TO: "me@example.com" };
    const refuse = (env: Record<string, string>) => {
      try {
        loadConfig(env, { store: false });
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems;
      }
      assert.fail("loadConfig accepted the configuration");
    };
    const [problem] = refuse(publicEnv);
    assert.match(problem, /RATE_LIMIT/);
    assert.match(problem, /no store/);
    assert.match(
      refuse({ ...base, CORS_ORIGINS: "https://a.example", ALLOWED_TO: "me@a.example" })[0],
      /RATE_LIMIT/,
    );
    // Asking for a limit without a store is refused too; off, or a server-only set-up, is fine.
    assert.match(refuse({ ...base, RATE_LIMIT: "10/1h" })[0], /RATE_LIMIT is set/);
    assert.equal(loadConfig({ ...publicEnv, RATE_LIMIT: "off" }, { store: false }).store, false);
    assert.deepEqual(loadConfig(base, { store: false }).rateLimit.server, undefined);
  });
});
