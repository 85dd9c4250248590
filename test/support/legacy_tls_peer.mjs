// A TLS peer that offers only TLS 1.0 and 1.1 (OpenSSL, through Node's node:tls),
// speaking just enough SMTP to get to STARTTLS: what a client that refuses old TLS
// must meet for real. Deno's own node:tls cannot serve TLS 1.1, so this runs under Node.
//
// Usage: node legacy_tls_peer.mjs starttls|implicit, with LEGACY_CERT and LEGACY_KEY (PEM)
// in the environment. Reports one JSON object per line on stdout: { port }, then
// { line } per command received (its verb), { secure } or { tlsError } per handshake.
import * as net from "node:net";
import * as tls from "node:tls";
import process from "node:process";

const implicit = process.argv[2] === "implicit";
const context = tls.createSecureContext({
  cert: process.env.LEGACY_CERT,
  key: process.env.LEGACY_KEY,
  minVersion: "TLSv1",
  maxVersion: "TLSv1.1",
  // OpenSSL 3 refuses TLS < 1.2 at its default security level.
  ciphers: "DEFAULT:@SECLEVEL=0",
});

function report(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function startTls(socket) {
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
  secure.once("secure", () => {
    report({ secure: secure.getProtocol() });
    secure.end("421 4.7.0 legacy.test closing\r\n");
  });
  secure.once("error", (error) => {
    report({ tlsError: error.message });
    socket.destroy();
  });
}

const server = net.createServer((socket) => {
  socket.on("error", () => {});
  if (implicit) return startTls(socket);
  socket.write("220 legacy.test ESMTP\r\n");
  let pending = "";
  const onData = (chunk) => {
    pending += chunk.toString("latin1");
    for (let end = pending.indexOf("\r\n"); end >= 0; end = pending.indexOf("\r\n")) {
      const verb = pending.slice(0, end).split(" ")[0].toUpperCase();
      pending = pending.slice(end + 2);
      report({ line: verb });
      if (verb === "EHLO") socket.write("250-legacy.test\r\n250 STARTTLS\r\n");
      else if (verb === "QUIT") socket.end("221 2.0.0 Bye\r\n");
      else if (verb !== "STARTTLS") socket.write("502 5.5.1 Not here\r\n");
      else {
        socket.off("data", onData);
        socket.write("220 2.0.0 Ready to start TLS\r\n");
        startTls(socket);
        return;
      }
    }
  };
  socket.on("data", onData);
});
server.listen(0, "127.0.0.1", () => report({ port: server.address().port }));
process.on("SIGTERM", () => process.exit(0));
