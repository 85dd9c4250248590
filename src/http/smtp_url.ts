/**
 * `SMTP_URL`: `smtp://[user[:pass]@]host[:port][?tls=…&insecure_auth=1]` or
 * `smtps://…`, parsed into the parts the SMTP settings are made of.
 *
 * @module
 */

import type { TlsMode } from "../smtp/client.ts";
import { commandSafe, hostName, percentDecoded, ValueProblem } from "./config_values.ts";

/** The SMTP connection described by `SMTP_URL`. */
export interface SmtpUrl {
  host: string;
  port: number;
  tls: TlsMode;
  user?: string;
  pass?: string;
  insecureAuth: boolean;
}

/** Parses `smtp://[user[:pass]@]host[:port][?tls=…&insecure_auth=1]` or `smtps://…`. */
export function smtpUrl(text: string): SmtpUrl {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ValueProblem("is not a URL like smtp://user:pass@smtp.example.com:587");
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== "smtp" && scheme !== "smtps") {
    throw new ValueProblem("must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)");
  }
  if (url.pathname !== "" && url.pathname !== "/") {
    throw new ValueProblem("must not have a path: smtp://user:pass@host:port");
  }
  if (url.hash !== "") throw new ValueProblem("must not have a #fragment");
  const host = hostName(url.hostname);
  let tls: TlsMode = scheme === "smtps" ? "implicit" : "starttls";
  let insecureAuth = false;
  for (const [key, value] of url.searchParams) {
    if (key === "tls") {
      if (scheme === "smtps") {
        throw new ValueProblem("?tls= only applies to smtp:// (smtps:// is always implicit TLS)");
      }
      if (!["starttls", "opportunistic", "none"].includes(value)) {
        throw new ValueProblem("?tls= must be opportunistic, none or starttls");
      }
      tls = value as TlsMode;
    } else if (key === "insecure_auth") {
      if (value !== "1" && value !== "0") throw new ValueProblem("&insecure_auth= must be 1 or 0");
      insecureAuth = value === "1";
    } else {
      // The key is not quoted: an unencoded "?" in a password makes the rest of it a "key".
      throw new ValueProblem(
        "has an unknown query parameter (only tls and insecure_auth are allowed; " +
          "percent-encode ? and # in the user name and password)",
      );
    }
  }
  if (insecureAuth && tls !== "none") {
    throw new ValueProblem("&insecure_auth=1 only applies with ?tls=none");
  }
  const port = url.port === "" ? (tls === "implicit" ? 465 : 587) : Number(url.port);
  if (port < 1 || port > 65535) throw new ValueProblem("has a port outside 1..65535");
  const user = url.username === "" ? undefined : percentDecoded(url.username, "user name");
  const pass = url.password === "" ? undefined : percentDecoded(url.password, "password");
  commandSafe("the user name")(user ?? "");
  commandSafe("the password")(pass ?? "");
  return { host, port, tls, user, pass, insecureAuth };
}
