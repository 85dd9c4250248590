/**
 * Debian's Chromium (/usr/bin/chromium) driven by npm:playwright-core, for the
 * suites that run real pages: where it is missing such a suite skips with a
 * clear message, and fails in CI.
 *
 * @example
 * ```ts
 * describe("my page", { skip: chromiumSkipReason("the page suite") }, () => {
 *   let browser: Browser;
 *   before(async () => browser = await launchChromium());
 *   after(() => browser?.close());
 * });
 * ```
 *
 * @module
 */

import type { Browser } from "playwright-core";
import { skipOutsideCi } from "./skip.ts";

const CHROMIUM = "/usr/bin/chromium";

/**
 * Why `suite` cannot run here (Chromium is missing), or `undefined` when it
 * can; use it as `describe`'s `skip`. Throws instead in CI.
 */
export function chromiumSkipReason(suite: string): string | undefined {
  try {
    Deno.statSync(CHROMIUM);
    return undefined;
  } catch {
    return skipOutsideCi(
      `Chromium is not installed at ${CHROMIUM} (apt-get install chromium): skipping ${suite}.`,
    );
  }
}

/** Launches headless Chromium without its sandbox (tests run as root in a container). */
export async function launchChromium(): Promise<Browser> {
  // Imported on use: a suite that skips never loads playwright-core.
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox"],
  });
}
