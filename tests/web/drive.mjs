#!/usr/bin/env node
// Drives noVNC 1.x (tests/web/node_modules/@novnc/novnc) in Debian's headless Chromium against an
// RFB-over-WebSocket server, for kvnc's integration tests (see tests/support/novnc.rs).
//
//   node drive.mjs --url ws://127.0.0.1:PORT/ --out DIR
//        [--encodings 7,-26]   force the SetEncodings list (index.html appends the pseudo-encodings noVNC needs)
//        [--quality N] [--compression N] [--password PW] [--username NAME] [--shared 0|1]
//        [--type TEXT]         type TEXT as real key presses (US layout; Shift for upper case/symbols;
//                              "\n" is Enter, "\t" is Tab)
//        [--keys Enter,F12,Control+Alt+Delete]   playwright key names, pressed after --type
//        [--wait-ms N]         fixed wait after connect/typing (then the stability wait, if given too)
//        [--until-stable-ms N] wait until the canvas has not changed for N ms (default 500 unless
//                              only --wait-ms is given), bounded by --timeout-ms
//        [--timeout-ms N]      overall budget from launch (default 9000)
//
// Writes DIR/canvas.png (the exact canvas pixels read with getImageData, RGB 8-bit, no screenshot
// scaling), DIR/result.json and DIR/result.txt (the same facts as `key=value` lines, one value per
// line, with `\` `\n` `\r` escaped as `\\` `\n` `\r`; `error=` and `console=` may repeat).
// Exit status: 0 when connected, a framebuffer update was painted, no disconnect before the driver's own,
// a clean final disconnect and no page/console errors; 1 otherwise; 2 on bad usage; 3 when the
// driver itself failed (e.g. Chromium did not start) – result files are still written when possible.
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { keyForChar } from './us_keys.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.KVNC_CHROMIUM || '/usr/bin/chromium';
const T0 = Date.now();
const since = () => Date.now() - T0;

// ------------------------------------------------------------------------------------------------
// Arguments
function usage(msg) {
  if (msg) console.error('drive.mjs: ' + msg);
  console.error('usage: node drive.mjs --url ws://127.0.0.1:PORT/ --out DIR [--encodings LIST] [--quality N] ' +
    '[--compression N] [--password PW] [--shared 0|1] [--type TEXT] [--keys K1,K2] [--wait-ms N] ' +
    '[--until-stable-ms N] [--timeout-ms N]');
  process.exit(2);
}
const VALUED = ['url', 'out', 'encodings', 'quality', 'compression', 'password', 'username', 'shared', 'type', 'keys',
  'wait-ms', 'until-stable-ms', 'timeout-ms'];
const args = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') usage();
    let name, value;
    if (a.startsWith('--') && a.includes('=')) {
      name = a.slice(2, a.indexOf('='));
      value = a.slice(a.indexOf('=') + 1);
    } else if (a.startsWith('--')) {
      name = a.slice(2);
      if (i + 1 >= argv.length) usage(`--${name} needs a value`);
      value = argv[++i];
    } else {
      usage('unexpected argument ' + a);
    }
    if (!VALUED.includes(name)) usage('unknown option --' + name);
    args[name] = value;
  }
}
if (!args.url) usage('--url is required');
if (!args.out) usage('--out is required');
const intArg = (name, min, max) => {
  if (args[name] === undefined) return null;
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) usage(`--${name} must be an integer in ${min}..${max}`);
  return v;
};
const quality = intArg('quality', 0, 9);
const compression = intArg('compression', 0, 9);
const waitMs = intArg('wait-ms', 0, 600000);
let untilStableMs = intArg('until-stable-ms', 0, 600000);
if (untilStableMs === null && waitMs === null) untilStableMs = 500;
const timeoutMs = intArg('timeout-ms', 1000, 600000) ?? 9000;
if (args.encodings !== undefined && !/^\s*-?\d+(\s*,\s*-?\d+)*\s*$/.test(args.encodings)) {
  usage('--encodings must be a comma-separated list of integers');
}
const keys = args.keys ? args.keys.split(',').map(k => k.trim()).filter(Boolean) : [];
const outDir = path.resolve(args.out);
fs.mkdirSync(outDir, { recursive: true });
for (const f of ['canvas.png', 'result.json', 'result.txt']) fs.rmSync(path.join(outDir, f), { force: true });

// ------------------------------------------------------------------------------------------------
// Result bookkeeping; written on every exit path.
const result = {
  connected: false,      // the 'connect' event fired
  painted: false,        // at least one FramebufferUpdate completed
  disconnected: false,   // a 'disconnect' event came before the driver disconnected on purpose
  clean: false,          // clean flag of the disconnect event (early one, else the driver's own)
  errors: [],            // console errors, page errors, security failures, driver failures
  console: [],           // every console message of the page ("[level] text")
  width: 0, height: 0,   // canvas (= framebuffer) size
  stable: false,         // the canvas stopped changing for --until-stable-ms within the budget
  events: [],
  securityFailure: null, credentialsRequired: false, desktopName: null,
  qemuExtKeyAcked: false,          // server sent the -258 pseudo-rect
  continuousUpdates: false,        // noVNC enabled continuous updates (server sent EndOfContinuousUpdates)
  sentEncodings: [],               // every SetEncodings list sent
  keyEvents: [],                   // {kind:'qemu'|'key', keysym, down, scancode}
  keyEventsQemu: 0, keyEventsPlain: 0,
  fbu: 0, rects: {},               // completed updates; completed rects per encoding number
  alphaNot255: 0,                  // canvas pixels whose alpha was not 255 (should be 0)
  chromium: null,
  timings: {},                     // ms since driver start
  args: { ...args, password: args.password === undefined ? undefined : '***' },
};
const mark = name => { result.timings[name] = since(); };

function esc(v) {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}
function writeResults() {
  result.timings.total = since();
  result.keyEventsQemu = result.keyEvents.filter(k => k.kind === 'qemu').length;
  result.keyEventsPlain = result.keyEvents.filter(k => k.kind === 'key').length;
  fs.writeFileSync(path.join(outDir, 'result.json'), JSON.stringify(result, null, 2) + '\n');
  const lines = [];
  const kv = (k, v) => lines.push(k + '=' + esc(v ?? ''));
  for (const k of ['connected', 'painted', 'disconnected', 'clean', 'width', 'height', 'stable', 'credentialsRequired',
    'qemuExtKeyAcked', 'continuousUpdates', 'keyEventsQemu', 'keyEventsPlain', 'fbu', 'alphaNot255']) {
    kv(k, result[k]);
  }
  kv('securityFailure', result.securityFailure === null ? '' : JSON.stringify(result.securityFailure));
  kv('desktopName', result.desktopName);
  kv('sentEncodings', (result.sentEncodings.at(-1) || []).join(','));
  kv('rects', Object.entries(result.rects).map(([e, n]) => `${e}:${n}`).join(','));
  kv('keys', result.keyEvents.map(k => `${k.kind}:${k.down ? 'd' : 'u'}:${k.keysym}:${k.scancode ?? ''}`).join(','));
  for (const [k, v] of Object.entries(result.timings)) kv('ms.' + k, v);
  for (const e of result.errors) kv('error', e);
  for (const c of result.console) kv('console', c);
  fs.writeFileSync(path.join(outDir, 'result.txt'), lines.join('\n') + '\n');
}
function exitCode() {
  const ok = result.connected && result.painted && !result.disconnected && result.clean && result.errors.length === 0;
  return ok ? 0 : 1;
}

// ------------------------------------------------------------------------------------------------
// PNG (RGB 8-bit) encoder: node's zlib + a CRC-32 table; no dependency.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(bufs) {
  let c = 0xffffffff;
  for (const b of bufs) for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const t = Buffer.from(type, 'latin1');
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32([t, data]));
  return Buffer.concat([len, t, data, crc]);
}
function encodePngRgb(width, height, rgb) {
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter: none
    rgb.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0; // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw, { level: 3 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------------------------------------------
// Static file server for index.html and node_modules (module scripts need HTTP, not file://).
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm',
  '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };
function startHttp() {
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.resolve(HERE, '.' + (p === '/' ? '/index.html' : p));
    if (!file.startsWith(HERE + path.sep)) { res.writeHead(403); res.end(); return; }
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404); res.end('not found'); return; }
      res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream',
        'Cache-Control': 'no-store' });
      res.end(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}


// ------------------------------------------------------------------------------------------------
let browser = null, httpServer = null, page = null;
let finished = false;
async function finish(code) {
  if (finished) return;
  finished = true;
  try { writeResults(); } catch (e) { console.error('drive.mjs: writing results: ' + e); code = 3; }
  try { if (browser) await browser.close(); } catch { /* ignore */ }
  try { if (httpServer) httpServer.close(); } catch { /* ignore */ }
  console.log(`drive.mjs: exit ${code} connected=${result.connected} painted=${result.painted} ` +
    `clean=${result.clean} ${result.width}x${result.height} errors=${result.errors.length} ${since()} ms`);
  process.exit(code);
}
// Hard watchdog: the page or Chromium hanging must not hang the test.
const watchdog = setTimeout(() => {
  result.errors.push(`driver watchdog: gave up after ${timeoutMs + 8000} ms`);
  finish(3);
}, timeoutMs + 8000);
watchdog.unref();

async function pageState() {
  return page.evaluate(() => ({
    state: window.__state, events: window.__events, errors: window.__errors, console: window.__console,
    sentEncodings: window.__sentEncodings, keys: window.__keys, fbu: window.__fbu, rects: window.__rects,
    qemu: !!(window.rfb && window.rfb._qemuExtKeyEventSupported),
    cu: !!(window.rfb && window.rfb._enabledContinuousUpdates),
  }));
}
function absorb(s) {
  result.events = s.events;
  result.console = s.console;
  result.sentEncodings = s.sentEncodings;
  result.keyEvents = s.keys;
  result.fbu = s.fbu;
  result.rects = s.rects;
  result.qemuExtKeyAcked = s.qemu;
  result.continuousUpdates = s.cu;
  for (const ev of s.events) {
    if (ev.type === 'connect') result.connected = true;
    if (ev.type === 'securityfailure') result.securityFailure = { status: ev.status, reason: ev.reason };
    if (ev.type === 'credentialsrequired') result.credentialsRequired = true;
    if (ev.type === 'desktopname') result.desktopName = ev.name;
  }
  result.painted = s.fbu > 0;
}
const pageErrors = [];
const sleep = ms => new Promise(r => setTimeout(r, ms));
// Hash of the canvas pixels, computed in the page.
const canvasHash = () => page.evaluate(() => {
  const c = window.rfb && window.rfb._canvas;
  if (!c || !c.width || !c.height) return 'empty';
  const d = new Uint32Array(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.buffer);
  let h1 = 0x811c9dc5, h2 = 0;
  for (let i = 0; i < d.length; i++) { h1 = Math.imul(h1 ^ d[i], 16777619); h2 = (h2 + d[i] * (i + 1)) | 0; }
  return `${c.width}x${c.height}:${h1 >>> 0}:${h2 >>> 0}`;
});

async function main() {
  httpServer = await startHttp();
  const httpPort = httpServer.address().port;
  mark('http');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install chromium; run scripts/test)`);
  // chromium.launch gives every run a fresh temporary --user-data-dir and removes it on close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 15000,
    // kvnc's wss:// certificate is self-signed in the tests.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--ignore-certificate-errors',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
  result.chromium = browser.version();
  mark('launched');
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  mark('newPage');
  page.on('pageerror', e => pageErrors.push('pageerror: ' + (e.stack || e.message)));
  page.on('crash', () => pageErrors.push('page crashed'));

  const q = new URLSearchParams();
  q.set('url', args.url);
  if (quality !== null) q.set('quality', String(quality));
  if (compression !== null) q.set('compression', String(compression));
  if (args.password !== undefined) q.set('password', args.password);
  if (args.username !== undefined) q.set('username', args.username);
  if (args.shared !== undefined) q.set('shared', args.shared);
  if (args.encodings !== undefined) q.set('encodings', args.encodings.replace(/\s+/g, ''));
  await page.goto(`http://127.0.0.1:${httpPort}/index.html?${q}`, { waitUntil: 'load', timeout: 10000 });
  mark('loaded');
  result.timings.pageModuleReady = await page.evaluate(() => window.__moduleAt);  // page clock

  const budgetLeft = () => Math.max(0, timeoutMs - since());
  // 1. connected (or failed)
  try {
    await page.waitForFunction(() => window.__state === 'connected' || window.__state === 'disconnected',
      null, { timeout: Math.max(1000, budgetLeft()), polling: 20 });
  } catch {
    result.errors.push('timed out waiting for the connection');
  }
  absorb(await pageState());
  if (!result.connected) return;
  mark('connected');

  // 2. first complete FramebufferUpdate painted
  try {
    await page.waitForFunction(() => window.__fbu > 0 || window.__state === 'disconnected', null,
      { timeout: Math.max(1000, budgetLeft()), polling: 20 });
  } catch {
    result.errors.push('timed out waiting for the first framebuffer update');
  }
  absorb(await pageState());
  if (!result.painted) return;
  mark('firstUpdate');

  // 3. input
  if (args.type !== undefined || keys.length) {
    await page.evaluate(() => window.rfb.focus());
    for (const ch of args.type ?? '') {
      const k = keyForChar(ch);
      if (k) await page.keyboard.press(k);
      else result.errors.push(`cannot type ${JSON.stringify(ch)}: not on the US keyboard layout`);
    }
    for (const k of keys) await page.keyboard.press(k);
    mark('typed');
  }

  // 4. settle
  if (waitMs !== null) await sleep(Math.min(waitMs, budgetLeft()));
  if (untilStableMs !== null) {
    let last = await canvasHash();
    let lastChange = Date.now();
    while (true) {
      if (Date.now() - lastChange >= untilStableMs) { result.stable = true; break; }
      if (budgetLeft() <= 0) break;
      if (await page.evaluate(() => window.__state === 'disconnected')) break;
      await sleep(Math.min(50, Math.max(5, untilStableMs / 5)));
      const h = await canvasHash();
      if (h !== last) { last = h; lastChange = Date.now(); }
    }
    if (!result.stable) result.console.push(`[driver] canvas still changing after the ${timeoutMs} ms budget`);
  }
  mark('settled');

  // 5. pixels: exact canvas contents via getImageData, as RGB, base64 through a Blob.
  const pix = await page.evaluate(async () => {
    const c = window.rfb._canvas;
    const w = c.width, h = c.height;
    const d = c.getContext('2d').getImageData(0, 0, w, h).data;
    const rgb = new Uint8Array(w * h * 3);
    let alphaNot255 = 0;
    for (let i = 0, j = 0; i < d.length; i += 4, j += 3) {
      rgb[j] = d[i]; rgb[j + 1] = d[i + 1]; rgb[j + 2] = d[i + 2];
      if (d[i + 3] !== 255) alphaNot255++;
    }
    const b64 = await new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result.slice(r.result.indexOf(',') + 1));
      r.onerror = () => reject(r.error);
      r.readAsDataURL(new Blob([rgb]));
    });
    return { w, h, b64, alphaNot255 };
  });
  result.width = pix.w;
  result.height = pix.h;
  result.alphaNot255 = pix.alphaNot255;
  const rgb = Buffer.from(pix.b64, 'base64');
  if (rgb.length !== pix.w * pix.h * 3) throw new Error(`canvas transfer: got ${rgb.length} bytes for ${pix.w}x${pix.h}`);
  fs.writeFileSync(path.join(outDir, 'canvas.png'), encodePngRgb(pix.w, pix.h, rgb));
  mark('captured');

  // 6. early disconnect? then our own, which should be clean
  const s = await pageState();
  absorb(s);
  const early = s.events.find(e => e.type === 'disconnect');
  if (early) {
    result.disconnected = true;
    result.clean = early.clean;
  } else {
    await page.evaluate(() => window.rfb.disconnect());
    try {
      await page.waitForFunction(() => window.__state === 'disconnected', null, { timeout: 3000, polling: 20 });
    } catch {
      result.errors.push('no disconnect event after rfb.disconnect()');
    }
    const after = await pageState();
    absorb(after);
    const ev = after.events.find(e => e.type === 'disconnect');
    result.clean = !!(ev && ev.clean);
  }
  mark('disconnected');
}

let code;
try {
  await main();
  code = null;
} catch (e) {
  result.errors.push('driver: ' + (e && e.stack || e));
  code = 3;
}
// Gather whatever the page recorded (also after failures) and decide.
if (page) {
  try {
    const s = await pageState();
    absorb(s);
    const ev = s.events.find(e => e.type === 'disconnect');
    if (ev && !result.timings.disconnected) { result.disconnected = true; result.clean = ev.clean; }
    for (const e of s.errors) result.errors.push(e);
  } catch (e) {
    // Page gone (crash): fall back to what playwright saw.
    result.errors.push('reading the page state: ' + e.message.split('\n')[0]);
    for (const pe of pageErrors) result.errors.push(pe);
  }
} else {
  for (const pe of pageErrors) result.errors.push(pe);
}
if (result.securityFailure) result.errors.push('securityfailure: ' + JSON.stringify(result.securityFailure));
if (result.credentialsRequired && !result.connected) result.errors.push('credentialsrequired: the server asked for credentials');
await finish(code ?? exitCode());
