#!/usr/bin/env node
// The lockstep command: checks that this Node.js can run the CLI before loading any of it, so an older
// Node says so in one line instead of failing on syntax or a missing API with a stack trace. Plain
// JavaScript without newer syntax on purpose: Node 14 and later can read this file. The minimum is
// package.json's engines.node, its one home.
import { readFileSync } from "node:fs";

function versionParts(text) {
  const match = /(\d+)\.(\d+)\.(\d+)/.exec(text || "");
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

function olderThan(have, want) {
  for (let i = 0; i < 3; i++) if (have[i] !== want[i]) return have[i] < want[i];
  return false;
}

const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const minimum = versionParts(packageJson.engines?.node);
const running = versionParts(process.versions.node);
if (minimum && running && olderThan(running, minimum)) {
  process.stderr.write(
    `lockstep: needs Node.js ${minimum.join(".")} or newer, and this is Node.js ${process.versions.node}: install a newer Node.js (https://nodejs.org) or put it first in PATH\n`,
  );
  process.exit(2);
}
import("../src/cli/main.ts").catch((error) => {
  process.stderr.write(`lockstep: ${error?.stack ?? String(error)}\n`);
  process.exit(2);
});
