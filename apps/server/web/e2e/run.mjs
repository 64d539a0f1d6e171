// Browser tests: real Chromium against a running Larder at $LARDER_URL.
// Run: LARDER_URL=http://127.0.0.1:PORT node e2e/run.mjs [name-filter]
// The restart test needs LARDER_RESTART_CMD too (restarts the server on the
// same port and database, returns when it is ready); without it, it fails.
// Nothing is ever skipped.

import { chromium } from 'playwright-core';

import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { ARTIFACTS, BASE, TestFailure, unexpectedErrors } from './helpers.mjs';
import { tests } from './tests.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

if (!BASE) {
  console.error('LARDER_URL is not set: start a server and pass its URL, e.g. LARDER_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const health = await fetch(`${BASE}/healthz`).catch((error) => error);
if (!(health instanceof Response) || !health.ok) {
  console.error(`no Larder answering at ${BASE}/healthz: ${health instanceof Response ? health.status : health.message}`);
  process.exit(2);
}

// Screenshots of an earlier run (above all its FAILED-* ones) would mislead: start clean.
for (const file of readdirSync(ARTIFACTS)) if (file.endsWith('.png')) rmSync(path.join(ARTIFACTS, file));

const filter = process.argv[2];
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
let failed = 0;
let passed = 0;
const started = Date.now();
const selected = tests.filter((test) => !filter || test.name.includes(filter));
if (selected.length === 0) {
  console.error(`no test matches "${filter}"`);
  await browser.close();
  process.exit(2);
}

for (const test of selected) {
  const users = [];
  const t0 = Date.now();
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new TestFailure(`timed out after ${test.timeoutMs / 1000} s`)), test.timeoutMs);
    });
    await Promise.race([test.run({ browser, users }), timeout]);
    const errors = users.flatMap((u) => unexpectedErrors(u).map((e) => `${u.sub}: ${e}`));
    if (errors.length) throw new TestFailure(`browser console errors:\n    ${errors.join('\n    ')}`);
    console.log(`ok    ${test.name} (${Date.now() - t0} ms)`);
    passed++;
  } catch (error) {
    failed++;
    console.log(`FAIL  ${test.name} (${Date.now() - t0} ms)\n    ${error instanceof TestFailure ? error.message : error.stack}`);
    for (const u of users) {
      await u.page.screenshot({ path: path.join(ARTIFACTS, `FAILED-${test.name.replace(/\W+/g, '-')}-${u.sub}.png`), fullPage: true }).catch(() => {});
    }
  } finally {
    clearTimeout(timer);
    for (const u of users) await u.context.close().catch(() => {});
  }
}

await browser.close();
console.log(`\n${failed ? 'FAILED' : 'passed'}: ${passed} passed, ${failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
