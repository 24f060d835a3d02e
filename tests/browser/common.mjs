// What the browser scripts share: Chromium's binary and flags (HOST_RULES sends the test hosts
// to 127.0.0.1), the results every script prints as one JSON line, `check` (which prints them
// and exits 1 on the first failure), the mock WeChat's counters, and a deadline after which a
// script gives up instead of hanging.
//
// Env: CHROMIUM (binary), HOST_RULES (Chromium --host-resolver-rules), DEADLINE_MS (default
// 120000).
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const chromiumArgs = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  `--host-resolver-rules=${process.env.HOST_RULES}`,
];

export const results = {};

export function check(name, ok, detail) {
  results[name] = ok ? "ok" : `FAILED: ${detail}`;
  if (!ok) {
    console.log(JSON.stringify(results));
    process.exit(1);
  }
}

// The results so far, as the script's last line.
export function report() {
  console.log(JSON.stringify(results));
}

// Headless Chromium with the suite's flags.
export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
}

// The mock WeChat's counters (`GET /mock/stats`).
export async function stats(mock) {
  return (await fetch(`${mock}/mock/stats`)).json();
}

const deadline = Number(process.env.DEADLINE_MS || 120000);
setTimeout(() => {
  results.deadline = `FAILED: still running after ${deadline} ms`;
  console.log(JSON.stringify(results));
  process.exit(2);
}, deadline).unref();
