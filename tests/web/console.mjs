#!/usr/bin/env node
// Drives kvnc's own web console (the page kvnc serves at /, src/console/) in Debian's headless
// Chromium for tests/console.rs, one command at a time, so the Rust test can check kvnc's side
// (the demo screen, HID reports, the API) between the steps.
//
//   node console.mjs --out DIR
//
// Reads one JSON command per line on stdin and answers each with one line on stdout:
// `@@{"id":N,"ok":true,"value":...}` or `@@{"id":N,"ok":false,"error":"..."}` (other stdout
// lines are Chromium's or playwright's chatter). Commands ({"id": N, "op": ..., ...}):
//   open {url, width?, height?}    a new page at url (Chromium starts on the first open)
//   url                            the page's URL now
//   reload                         reloads the page (its cache kept)
//   text {selector}                textContent of the first match, trimmed
//   wait_text {selector, pattern, timeout_ms?}   until the text matches the RegExp pattern
//   value {selector}               the current value of an input, textarea or select
//   attr {selector, name}          an attribute (null when absent)
//   wait_attr {selector, name, value, timeout_ms?}
//   visible {selector}             whether it is visible
//   wait_visible {selector, timeout_ms?}
//   click {selector}               a real mouse click on it
//   fill {selector, text}          types into an input or textarea (replacing its value)
//   select {selector, value}       picks an option of a <select> (fires 'change')
//   keys {keys: [...]}             playwright key names pressed in turn ("Enter", "NumLock", ...)
//   type_us {text}                 text as US-layout key presses (Shift for capitals and symbols)
//   canvas {path}                  the screen canvas's exact pixels as PNG (toDataURL); {width, height}
//   screenshot {path}              the whole page as a person sees it
//   log                            {console: [...], errors: [...]}: page console messages, and
//                                  page errors, failed requests, CSP violations and console errors
//   close                          closes Chromium and exits
// The page is driven only through its own elements: nothing is evaluated in it but reads of
// the DOM, so kvnc's Content-Security-Policy applies as it would for a person.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { keyForChar } from './us_keys.mjs';

const CHROMIUM = process.env.KVNC_CHROMIUM || '/usr/bin/chromium';
/// With no command for this long the driver gives up (the test died without closing it).
const IDLE_EXIT_MS = 180000;
const DEFAULT_WAIT_MS = 15000;

const argv = process.argv.slice(2);
const outIndex = argv.indexOf('--out');
if (outIndex < 0 || !argv[outIndex + 1]) {
  console.error('usage: node console.mjs --out DIR');
  process.exit(2);
}
const outDir = path.resolve(argv[outIndex + 1]);
fs.mkdirSync(outDir, { recursive: true });

let browser = null;
let context = null;
let page = null;
const consoleLines = [];
const errors = [];

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const reply = message => process.stdout.write('@@' + JSON.stringify(message) + '\n');

async function launch() {
  if (browser) return;
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install chromium; run scripts/test)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20000,
    // kvnc's certificate is self-signed in the tests: accepted in the handshake itself (the
    // context's ignoreHTTPSErrors alone lets the first handshakes fail with an alert first).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--ignore-certificate-errors',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

async function open({ url, width = 1280, height = 860 }) {
  await launch();
  if (context) await context.close();
  context = await browser.newContext({ viewport: { width, height }, ignoreHTTPSErrors: true });
  page = await context.newPage();
  page.on('console', message => {
    // Where it came from: a failed API call names the URL only here.
    const where = message.location() && message.location().url ? ` (${message.location().url})` : '';
    consoleLines.push(`[${message.type()}] ${message.text()}${where}`);
    // CSP violations and failed loads are reported as console errors.
    if (message.type() === 'error') errors.push(`console: ${message.text()}${where}`);
  });
  page.on('pageerror', error => errors.push('page error: ' + (error.stack || error.message)));
  page.on('requestfailed', request => {
    // The page's own WebSocket ending is not a failed load.
    if (request.resourceType() !== 'websocket') {
      errors.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
    }
  });
  page.on('crash', () => errors.push('page crashed'));
  const response = await page.goto(url, { waitUntil: 'load', timeout: 20000 });
  return { status: response ? response.status() : null };
}

function needPage() {
  if (!page) throw new Error('no page: send "open" first');
  return page;
}

async function text(selector) {
  return ((await needPage().locator(selector).first().textContent({ timeout: 5000 })) ?? '').trim();
}

async function waitFor(what, probe, done, timeoutMs) {
  const deadline = Date.now() + (timeoutMs ?? DEFAULT_WAIT_MS);
  let last;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

/** A US key for `ch`; the console driver types only what a US keyboard has. */
function usKey(ch) {
  const key = keyForChar(ch);
  if (key === null) throw new Error(`cannot type ${JSON.stringify(ch)} on a US keyboard`);
  return key;
}

const ops = {
  open,
  url: async () => needPage().url(),
  reload: async () => {
    const response = await needPage().reload({ waitUntil: 'load', timeout: 20000 });
    return { status: response ? response.status() : null };
  },
  text: async ({ selector }) => text(selector),
  wait_text: async ({ selector, pattern, timeout_ms }) => {
    const re = new RegExp(pattern);
    return waitFor(`${selector} to match /${pattern}/`, () => text(selector), t => re.test(t), timeout_ms);
  },
  value: async ({ selector }) => needPage().locator(selector).first().inputValue({ timeout: 5000 }),
  attr: async ({ selector, name }) => needPage().locator(selector).first().getAttribute(name, { timeout: 5000 }),
  wait_attr: async ({ selector, name, value, timeout_ms }) => waitFor(`${selector}[${name}=${value}]`,
    () => needPage().locator(selector).first().getAttribute(name, { timeout: 5000 }), v => v === value, timeout_ms),
  visible: async ({ selector }) => needPage().locator(selector).first().isVisible(),
  wait_visible: async ({ selector, timeout_ms }) => {
    await needPage().locator(selector).first().waitFor({ state: 'visible', timeout: timeout_ms ?? DEFAULT_WAIT_MS });
    return true;
  },
  click: async ({ selector }) => { await needPage().locator(selector).first().click({ timeout: 5000 }); return true; },
  fill: async ({ selector, text: value }) => {
    await needPage().locator(selector).first().fill(value, { timeout: 5000 });
    return true;
  },
  select: async ({ selector, value }) => needPage().locator(selector).first().selectOption(value, { timeout: 5000 }),
  keys: async ({ keys }) => {
    for (const key of keys) await needPage().keyboard.press(key);
    return true;
  },
  type_us: async ({ text: value }) => {
    for (const ch of value) await needPage().keyboard.press(usKey(ch));
    return true;
  },
  canvas: async ({ path: file }) => {
    const canvas = needPage().locator('#screen canvas').first();
    const { width, height, url } = await canvas.evaluate(c => ({ width: c.width, height: c.height,
      url: c.width && c.height ? c.toDataURL('image/png') : '' }), null, { timeout: 5000 });
    if (!url) throw new Error(`the canvas is empty (${width}x${height})`);
    fs.writeFileSync(file, Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
    return { width, height };
  },
  screenshot: async ({ path: file }) => { await needPage().screenshot({ path: file }); return file; },
  log: async () => ({ console: consoleLines, errors }),
  close: async () => {
    await finish(0);
    return true;
  },
};

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  try { if (browser) await browser.close(); } catch { /* already gone */ }
  process.exit(code);
}

let idle = setTimeout(() => finish(3), IDLE_EXIT_MS);
const lines = readline.createInterface({ input: process.stdin });
// Commands run one after another, in the order they came.
let queue = Promise.resolve();
lines.on('line', line => {
  clearTimeout(idle);
  idle = setTimeout(() => finish(3), IDLE_EXIT_MS);
  queue = queue.then(async () => {
    let command;
    try {
      command = JSON.parse(line);
    } catch (e) {
      reply({ id: null, ok: false, error: 'bad command: ' + e.message });
      return;
    }
    const op = ops[command.op];
    if (!op) {
      reply({ id: command.id, ok: false, error: 'unknown op ' + command.op });
      return;
    }
    try {
      reply({ id: command.id, ok: true, value: (await op(command)) ?? null });
    } catch (e) {
      reply({ id: command.id, ok: false, error: String(e && e.message || e).split('\n')[0] });
    }
  });
});
lines.on('close', () => queue.then(() => finish(0)));
