/**
 * Deno subprocesses for end-to-end tests: each runs in the repository root
 * with a clean environment, so only what the test hands it configures it.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);
/** What Deno itself needs from our environment (cache, temp dir, PATH); nothing else leaks in. */
const INHERITED = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"];

/** A loopback port that nothing listens on right now, for a subprocess to listen on. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Starts `deno <args>` in the repository root with exactly `env` (plus what
 * Deno needs, and `NO_COLOR`) as its environment, stdin closed and stdout and
 * stderr piped: the caller must read both streams to their end.
 */
export function spawnDeno(args: string[], env: Record<string, string>): Deno.ChildProcess {
  const inherited: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = Deno.env.get(name);
    if (value !== undefined) inherited[name] = value;
  }
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
