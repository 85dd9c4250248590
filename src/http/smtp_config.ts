/**
 * The SMTP client options of the HTTP function, combined from `SMTP_URL` or
 * `SMTP_HOST` and the other `SMTP_*` variables, with the defaults filled in
 * and the problems of how they combine reported.
 *
 * @module
 */

import type { SmtpAuth, SmtpClientOptions, TlsMode } from "../smtp/client.ts";
import type { SmtpUrl } from "./smtp_url.ts";

/** SMTP settings with the defaults filled in. */
export type ResolvedSmtpOptions = SmtpClientOptions & { port: number; tls: TlsMode };

/** The default of `SMTP_TIMEOUT_MS` (contract section 2). */
export const DEFAULT_SMTP_TIMEOUT_MS = 30_000;

/** The default of `SMTP_POOL_MAX` (contract section 2), the client's own default too. */
export const DEFAULT_SMTP_POOL_MAX = 5;

/** The parsed `SMTP_*` variables that {@linkcode smtpOptions} combines. */
export interface SmtpVariables {
  /** `SMTP_URL`, parsed. */
  SMTP_URL?: SmtpUrl;
  /** `SMTP_HOST`. */
  SMTP_HOST?: string;
  /** `SMTP_PORT`. */
  SMTP_PORT?: number;
  /** `SMTP_USER`. */
  SMTP_USER?: string;
  /** `SMTP_PASS`. */
  SMTP_PASS?: string;
  /** `SMTP_TLS`. */
  SMTP_TLS?: TlsMode;
  /** `SMTP_INSECURE_AUTH`. */
  SMTP_INSECURE_AUTH?: boolean;
  /** `SMTP_CA_CERT`, PEM. */
  SMTP_CA_CERT?: string;
  /** `SMTP_AUTH`, a mechanism name in lowercase. */
  SMTP_AUTH?: string;
  /** `SMTP_NAME`, the EHLO name. */
  SMTP_NAME?: string;
  /** `SMTP_TIMEOUT_MS`. */
  SMTP_TIMEOUT_MS?: number;
  /** `SMTP_POOL_MAX`: most connections open at once per isolate. */
  SMTP_POOL_MAX?: number;
}

/** Combines `SMTP_URL` or `SMTP_HOST` and friends into client options; pushes problems. */
export function smtpOptions(
  vars: SmtpVariables,
  problems: string[],
): ResolvedSmtpOptions | undefined {
  const url = vars.SMTP_URL;
  if (url !== undefined) {
    for (const name of ["SMTP_PORT", "SMTP_TLS", "SMTP_INSECURE_AUTH"] as const) {
      if (vars[name] !== undefined) {
        problems.push(`${name} only applies with SMTP_HOST: put it into SMTP_URL instead.`);
      }
    }
    if (url.user !== undefined && vars.SMTP_USER !== undefined) {
      problems.push("SMTP_USER is set and SMTP_URL has a user name too: use one of them.");
    }
    if (url.pass !== undefined && vars.SMTP_PASS !== undefined) {
      problems.push("SMTP_PASS is set and SMTP_URL has a password too: use one of them.");
    }
  }
  const tls = url?.tls ?? vars.SMTP_TLS ?? (vars.SMTP_PORT === 465 ? "implicit" : "starttls");
  const options: ResolvedSmtpOptions = {
    host: url?.host ?? vars.SMTP_HOST!,
    port: url?.port ?? vars.SMTP_PORT ?? (tls === "implicit" ? 465 : 587),
    tls,
    timeoutMs: vars.SMTP_TIMEOUT_MS ?? DEFAULT_SMTP_TIMEOUT_MS,
    pool: { maxConnections: vars.SMTP_POOL_MAX ?? DEFAULT_SMTP_POOL_MAX },
  };
  if (vars.SMTP_NAME !== undefined) options.name = vars.SMTP_NAME;
  if (vars.SMTP_CA_CERT !== undefined) options.caCerts = [vars.SMTP_CA_CERT];
  const auth = smtpAuth(url?.user ?? vars.SMTP_USER, url?.pass ?? vars.SMTP_PASS, vars, problems);
  if (auth !== undefined) {
    options.auth = auth;
    const insecure = url?.insecureAuth ?? vars.SMTP_INSECURE_AUTH ?? false;
    if (tls === "none" && !insecure) {
      problems.push(
        url !== undefined
          ? "SMTP_URL has credentials with ?tls=none, which would send them unencrypted: add " +
            "&insecure_auth=1 to allow that (trusted networks only), or use TLS."
          : "SMTP_USER is set with SMTP_TLS=none, which would send the password unencrypted: " +
            "set SMTP_INSECURE_AUTH=1 to allow that (trusted networks only), or use TLS.",
      );
    }
    if (tls === "none" && insecure) options.allowInsecureAuth = true;
  }
  return options;
}

/** The credentials from a user name and password, and `SMTP_AUTH`; pushes problems. */
function smtpAuth(
  user: string | undefined,
  pass: string | undefined,
  vars: SmtpVariables,
  problems: string[],
): SmtpAuth | undefined {
  if (user === undefined && pass === undefined) {
    if (vars.SMTP_AUTH !== undefined) {
      problems.push("SMTP_AUTH is set but there is no user name (SMTP_USER or SMTP_URL).");
    }
    return undefined;
  }
  if (user === undefined) {
    problems.push("A password is set but no user name: set SMTP_USER or put it into SMTP_URL.");
    return undefined;
  }
  if (pass === undefined) {
    problems.push(
      "A user name is set but no password: set SMTP_PASS or put it into SMTP_URL (user:pass@).",
    );
    return undefined;
  }
  if (vars.SMTP_AUTH === "xoauth2") {
    return { username: user, accessToken: pass, mechanism: "xoauth2" };
  }
  return vars.SMTP_AUTH === undefined
    ? { username: user, password: pass }
    : { username: user, password: pass, mechanism: vars.SMTP_AUTH };
}
