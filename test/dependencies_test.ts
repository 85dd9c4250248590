/**
 * The dependency layout that keeps `deno task dev` small: `deno.json` and `deno.lock`
 * hold only the packages the function, the dev server and the library import, because
 * Deno installs every package of the lockfile (and every npm entry of the config) on
 * the first start, whatever the entrypoint. Test and bench packages live in
 * `test/deno.json` and `bench/deno.json`, each with its own lockfile; both repeat the
 * run-time entries, so tests run the versions that ship.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const TOOL_CONFIGS = ["test", "bench"];
/** Where the run-time imports are: everything `deno.json` maps must be imported from here. */
const RUN_TIME_DIRS = ["src", "functions"];

interface Lockfile {
  specifiers?: Record<string, string>;
  workspace?: { dependencies?: string[] };
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(path, ROOT))) as T;
}

async function importsOf(dir: string): Promise<Record<string, string>> {
  const config = await readJson<{ imports?: Record<string, string> }>(`${dir}deno.json`);
  return config.imports ?? {};
}

/** The bare specifiers (`from "x"`, `import("x")`) of every TypeScript file below `dir`. */
async function bareSpecifiersBelow(dir: URL, found = new Set<string>()): Promise<Set<string>> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory && entry.name !== "node_modules") {
      await bareSpecifiersBelow(url, found);
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      const text = await Deno.readTextFile(url);
      for (const match of text.matchAll(/(?:\bfrom|\bimport\s*\(?)\s*"([^".\/][^"]*)"/g)) {
        found.add(match[1]);
      }
    }
  }
  return found;
}

describe("dependency layout", () => {
  it("test/deno.json and bench/deno.json map every run-time import exactly as deno.json", async () => {
    const runTime = await importsOf("");
    for (const dir of TOOL_CONFIGS) {
      const tool = await importsOf(`${dir}/`);
      for (const [name, target] of Object.entries(runTime)) {
        assert.equal(
          tool[name],
          target,
          `${dir}/deno.json maps "${name}" to ${
            tool[name]
          }, deno.json to ${target}: copy the entry`,
        );
      }
    }
  });

  it("test and bench lock the run-time packages at the versions deno.lock ships", async () => {
    const runTime = (await readJson<Lockfile>("deno.lock")).specifiers ?? {};
    for (const dir of TOOL_CONFIGS) {
      const tool = (await readJson<Lockfile>(`${dir}/deno.lock`)).specifiers ?? {};
      for (const [specifier, version] of Object.entries(runTime)) {
        assert.equal(
          tool[specifier],
          version,
          `${dir}/deno.lock has ${specifier} at ${tool[specifier]}, deno.lock at ${version}: ` +
            `copy deno.lock to ${dir}/deno.lock and run deno install --config ${dir}/deno.json`,
        );
      }
    }
  });

  it("deno.lock holds only what deno.json imports, so a first start installs nothing else", async () => {
    const lock = await readJson<Lockfile>("deno.lock");
    const declared = new Set(lock.workspace?.dependencies ?? []);
    const extra = Object.keys(lock.specifiers ?? {}).filter((specifier) =>
      !declared.has(specifier)
    );
    assert.deepEqual(
      extra,
      [],
      `deno.lock locks ${extra.join(", ")}, which deno.json does not import (a test run with the ` +
        `root config?): restore deno.lock from git, run tests with --config test/deno.json`,
    );
  });

  it("every package deno.json maps is imported by src/ or functions/", async () => {
    const used = new Set<string>();
    for (const dir of RUN_TIME_DIRS) await bareSpecifiersBelow(new URL(`${dir}/`, ROOT), used);
    const unused = Object.keys(await importsOf("")).filter((name) =>
      ![...used].some((specifier) =>
        name.endsWith("/") ? specifier.startsWith(name) : specifier === name ||
          specifier.startsWith(`${name}/`)
      )
    );
    assert.deepEqual(
      unused,
      [],
      `deno.json maps ${unused.join(", ")}, which no run-time module imports: move it to ` +
        `test/deno.json or bench/deno.json (every deno.json import is installed by deno task dev)`,
    );
  });
});
