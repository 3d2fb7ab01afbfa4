// kvnc's web console (index.html). noVNC's RFB class shows the target's screen and carries the
// keyboard and mouse over a WebSocket to this same origin; kvnc's control API (/api/..., see
// src/control/api.rs) presses key combinations, types text, sets the layout and the mouse mode,
// attaches virtual media and tells the host's and the capture's state.
//
// Credentials are asked for when kvnc asks (noVNC's 'credentialsrequired'), kept in this module's
// memory only (never in the URL, web storage, cookies or the console), and given to the API as
// an `Authorization: Basic` header on same-origin requests made with `credentials: 'omit'`, so
// the browser neither keeps them nor pops up its own login box on a 401.
//
// Plain ES modules, no build step: build.rs embeds this file as it is.

import RFB from './novnc.js';

// How often the host's state (and the media, while their panel is open) is read again.
const POLL_MS = 5000;
// How long a success message stays; errors stay until the next message.
const MESSAGE_MS = 6000;

// Layouts offered in the selector (xkeyboard-config names; kvnc compiles any of them).
const LAYOUTS = [
  ['us', 'English (US)'], ['us(intl)', 'English (US, intl.)'], ['gb', 'English (UK)'],
  ['de', 'German'], ['de(nodeadkeys)', 'German (no dead keys)'], ['ch', 'Swiss German'],
  ['ch(fr)', 'Swiss French'], ['fr', 'French'], ['be', 'Belgian'], ['es', 'Spanish'],
  ['it', 'Italian'], ['pt', 'Portuguese'], ['br', 'Portuguese (Brazil)'], ['nl', 'Dutch'],
  ['se', 'Swedish'], ['no', 'Norwegian'], ['dk', 'Danish'], ['fi', 'Finnish'], ['pl', 'Polish'],
  ['cz', 'Czech'], ['hu', 'Hungarian'], ['tr', 'Turkish'], ['jp', 'Japanese'],
  ['us(dvorak)', 'English (Dvorak)'],
];

const MEDIA_MODES = { cdrom: 'CD-ROM', 'read-only': 'read-only disk', 'read-write': 'read-write disk' };

const $ = id => document.getElementById(id);
const el = {
  status: $('status'), leds: $('leds'), ledNum: $('led-num'), ledCaps: $('led-caps'), ledScroll: $('led-scroll'),
  cad: $('cad'), combo: $('combo'), pasteToggle: $('paste-toggle'), layout: $('layout'), mouseMode: $('mouse-mode'),
  mediaToggle: $('media-toggle'), scale: $('scale'), fullscreen: $('fullscreen'), reconnect: $('reconnect'),
  host: $('host'), message: $('message'), screen: $('screen'),
  pastePanel: $('paste-panel'), pasteText: $('paste-text'), pasteSend: $('paste-send'), pasteClose: $('paste-close'),
  mediaPanel: $('media-panel'), mediaState: $('media-state'), mediaControls: $('media-controls'),
  mediaImage: $('media-image'), mediaMode: $('media-mode'), mediaAttach: $('media-attach'),
  mediaEject: $('media-eject'), mediaRefresh: $('media-refresh'), mediaClose: $('media-close'),
  hostDetails: $('host-details'),
  login: $('login'), loginForm: $('login-form'), loginWhy: $('login-why'), loginUserRow: $('login-user-row'),
  loginUser: $('login-user'), loginPassword: $('login-password'), loginCancel: $('login-cancel'),
  verify: $('verify'), verifyFingerprint: $('verify-fingerprint'), verifyApprove: $('verify-approve'),
  verifyReject: $('verify-reject'),
};

let rfb = null;
// 'connecting' | 'connected' | 'disconnected', of the current `rfb`.
let state = 'disconnected';
// What the user entered, { password } or { username, password }; null until kvnc asks.
let credentials = null;
// The kinds of credentials noVNC waits for (while the login box is open), else null.
let asked = null;
// Words for a login that failed, kept over the 'disconnect' that follows it.
let failure = null;
// The current attempt reached 'connect'.
let reached = false;
let desktopName = '';
// Why the API refused our login: not asked again until a new login (each refusal counts
// towards kvnc's blacklist of the address).
let apiRefused = null;
let pollTimer = null;
let messageTimer = null;
// RSA key fingerprints approved on this page, so a reconnect does not ask again.
const approvedKeys = new Set();

// ------------------------------------------------------------------------------------------------
// Words on the page

function setStatus(text, kind) {
  el.status.textContent = text;
  el.status.dataset.kind = kind;
}

function showMessage(text, kind) {
  clearTimeout(messageTimer);
  el.message.textContent = text;
  el.message.dataset.kind = kind;
  el.message.hidden = false;
  if (kind === 'ok') messageTimer = setTimeout(() => { el.message.hidden = true; }, MESSAGE_MS);
}

function setLeds(byte) {
  // QEMU LED state (rfbproto pseudo-encoding -261): bit 0 Scroll, bit 1 Num, bit 2 Caps Lock.
  const show = (led, on) => { led.dataset.state = byte === null ? 'unknown' : on ? 'on' : 'off'; };
  show(el.ledScroll, byte & 1);
  show(el.ledNum, byte & 2);
  show(el.ledCaps, byte & 4);
  el.leds.title = byte === null ? "The target's keyboard LEDs (not known yet)" : "The target's keyboard LEDs";
}

function bytesInWords(n) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) { n /= 1024; unit++; }
  return `${unit ? n.toFixed(1) : n} ${units[unit]}`;
}

// ------------------------------------------------------------------------------------------------
// The RFB connection

function websocketUrl() {
  // The same origin and path as this page: kvnc takes WebSockets on any path of its port, and
  // a page behind a reverse proxy keeps its prefix.
  const url = new URL('.', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

function connect() {
  if (rfb) {
    const old = rfb;
    rfb = null;
    // noVNC logs an error when a connection that already ended is ended again.
    if (state !== 'disconnected') old.disconnect();
  }
  failure = null;
  reached = false;
  state = 'connecting';
  el.reconnect.hidden = true;
  setControls(false);
  setLeds(null);
  setStatus(`Connecting to kvnc at ${location.host}…`, 'busy');
  const options = { shared: true };
  if (credentials) options.credentials = { ...credentials };
  let me;
  try {
    me = new RFB(el.screen, websocketUrl(), options);
  } catch (e) {
    state = 'disconnected';
    setStatus(`Cannot connect: ${e.message}`, 'error');
    el.reconnect.hidden = false;
    return;
  }
  rfb = me;
  me.scaleViewport = el.scale.checked;
  me.resizeSession = false;
  me.focusOnClick = true;
  me.showDotCursor = true;
  watchLeds(me);
  // Events of a connection that was replaced are ignored.
  const on = (type, handler) => me.addEventListener(type, e => { if (me === rfb) handler(e); });
  on('connect', connected);
  on('disconnect', e => disconnected(e.detail.clean));
  on('credentialsrequired', e => askCredentials(e.detail.types));
  on('securityfailure', e => loginFailed(e.detail.status, e.detail.reason));
  on('serververification', e => verifyServer(me, e.detail));
  on('desktopname', e => {
    desktopName = e.detail.name;
    document.title = `${desktopName} – kvnc`;
    if (state === 'connected') setStatus(`Connected to ${desktopName}`, 'ok');
  });
}

function connected() {
  state = 'connected';
  reached = true;
  asked = null;
  closeDialog(el.login);
  closeDialog(el.verify);
  setStatus(`Connected to ${desktopName || `kvnc at ${location.host}`}`, 'ok');
  setControls(true);
  rfb.focus();
  poll();
}

function disconnected(clean) {
  state = 'disconnected';
  stopPolling();
  setControls(false);
  setLeds(null);
  closeDialog(el.verify);
  el.reconnect.hidden = false;
  // What was read while connected is not known any more.
  el.host.textContent = '';
  if (el.message.dataset.kind === 'ok') el.message.hidden = true;
  if (asked) {
    // kvnc closes a connection that has not logged in after its handshake timeout (30 s by
    // default): the box stays open, and logging in starts a new connection.
    setStatus('kvnc closed the connection while waiting for the login: log in to connect again', 'error');
    // Said in the box too: the status line is behind it.
    el.loginWhy.textContent = 'kvnc stopped waiting for the login and closed the connection. ' +
      'Log in to connect again.';
    return;
  }
  closeDialog(el.login);
  if (failure) {
    setStatus(failure, 'error');
  } else if (!reached) {
    // The browser does not say why a WebSocket failed; these are the usual reasons.
    setStatus(`Could not connect to kvnc at ${location.host}: the connection was refused or closed ` +
      '(kvnc stopped, or refusing this address for a while after failed logins)', 'error');
  } else if (clean) {
    setStatus('Disconnected: kvnc closed the connection', 'error');
  } else {
    setStatus('Disconnected: the connection to kvnc was lost', 'error');
  }
}

function askCredentials(types) {
  asked = types;
  const needsUser = types.includes('username');
  el.loginUserRow.hidden = !needsUser;
  el.loginWhy.textContent = needsUser
    ? 'kvnc asks for a user name and password.'
    : 'kvnc asks for its password.';
  setStatus('Waiting for the login…', 'busy');
  if (!el.login.open) el.login.showModal();
  (needsUser && !el.loginUser.value ? el.loginUser : el.loginPassword).focus();
}

function loginFailed(status, reason) {
  // RFB's SecurityResult: 1 failed, 2 too many attempts; kvnc also sends its reason.
  const words = reason || (status === 2 ? 'too many attempts' : 'the login was refused');
  failure = `Login failed: ${words}. Reconnect to try again.`;
  // They were wrong: ask again next time, and keep them from the API.
  credentials = null;
  apiRefused = null;
  setStatus(failure, 'error');
}

async function verifyServer(me, detail) {
  if (detail.type !== 'RSA') {
    failure = `Not connected: kvnc offered a server key of an unknown kind (${detail.type})`;
    me.disconnect();
    return;
  }
  // RealVNC's form, which kvnc logs and TigerVNC shows: the first 8 bytes of SHA-1 over the key
  // as kvnc sent it.
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', detail.publickey));
  const fingerprint = Array.from(digest.slice(0, 8), b => b.toString(16).padStart(2, '0')).join('-');
  if (me !== rfb) return;
  if (approvedKeys.has(fingerprint)) {
    me.approveServer();
    return;
  }
  el.verifyFingerprint.textContent = fingerprint;
  el.verify.dataset.fingerprint = fingerprint;
  setStatus("Check kvnc's key fingerprint…", 'busy');
  el.verify.showModal();
  el.verifyApprove.focus();
}

el.verifyApprove.addEventListener('click', () => {
  approvedKeys.add(el.verify.dataset.fingerprint);
  closeDialog(el.verify);
  setStatus('Server key approved; logging in…', 'busy');
  if (rfb) rfb.approveServer();
});
el.verifyReject.addEventListener('click', () => {
  closeDialog(el.verify);
  failure = "Not connected: kvnc's key was not approved";
  if (rfb) rfb.disconnect();
});
el.verify.addEventListener('cancel', e => { e.preventDefault(); el.verifyReject.click(); });

el.loginForm.addEventListener('submit', e => {
  e.preventDefault();
  const entered = { password: el.loginPassword.value };
  if (!el.loginUserRow.hidden) entered.username = el.loginUser.value;
  // Not left in the page once sent.
  el.loginPassword.value = '';
  credentials = entered;
  apiRefused = null;
  closeDialog(el.login);
  if (rfb && state === 'connecting' && asked) {
    asked = null;
    setStatus('Logging in…', 'busy');
    rfb.sendCredentials(entered);
  } else {
    asked = null;
    connect();
  }
});
el.loginCancel.addEventListener('click', () => {
  asked = null;
  closeDialog(el.login);
  failure = 'Not connected: the login was cancelled';
  if (rfb && state !== 'disconnected') rfb.disconnect();
  else setStatus(failure, 'error');
});
el.login.addEventListener('cancel', e => { e.preventDefault(); el.loginCancel.click(); });

function closeDialog(dialog) {
  if (dialog.open) dialog.close();
}

// noVNC 1.7 reads the server's LED state (QEMU LED pseudo-encoding) but keeps it private and
// drops Scroll Lock: wrap the private handler to see the byte. The version is pinned in the
// lockfile; should a later noVNC rename it, the LEDs just stay "unknown".
function watchLeds(me) {
  const original = me._handleLedEvent;
  if (typeof original !== 'function') {
    el.leds.title = "The target's keyboard LEDs are not available with this noVNC";
    return;
  }
  me._handleLedEvent = function handleLedEvent() {
    const sock = this._sock;
    const byte = sock && !sock.rQwait('LED status', 1) ? sock.rQpeek8() : null;
    const done = original.call(this);
    if (done && byte !== null && me === rfb) setLeds(byte);
    return done;
  };
}

// ------------------------------------------------------------------------------------------------
// The control API

class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

function basicToken({ username = '', password }) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// Tries again after a request got no answer at all (never after an answer), where doing it twice
// does no harm: reads, and setting what is already set (not keys or text: they would be typed
// twice).
const RETRIES = 2;
const RETRY_MS = 500;

async function api(method, path, body, { idempotent = method === 'GET' } = {}) {
  if (apiRefused) throw new ApiError(401, apiRefused);
  const headers = { Accept: 'application/json' };
  // kvnc's API takes any user name with the VNC password, so one login serves both.
  if (credentials) headers.Authorization = `Basic ${basicToken(credentials)}`;
  const init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  for (let attempt = 0; !response; attempt++) {
    try {
      response = await fetch(new URL(`api/${path}`, location.href), init);
    } catch {
      if (!idempotent || attempt >= RETRIES) throw new ApiError(0, 'kvnc did not answer');
      await new Promise(resolve => setTimeout(resolve, RETRY_MS));
    }
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  if (response.ok) return data;
  const reason = (data && data.error) || `HTTP status ${response.status}`;
  if (response.status === 401) {
    apiRefused = `kvnc's control API refused this login (${reason})`;
    throw new ApiError(401, apiRefused);
  }
  throw new ApiError(response.status, reason);
}

// Runs an API change and says how it went; returns its answer, or null.
async function act(failed, method, path, body, done, options) {
  try {
    const data = await api(method, path, body, options);
    showMessage(done(data), 'ok');
    return data;
  } catch (e) {
    showMessage(`${failed}: ${e.message}`, 'error');
    return null;
  } finally {
    // Keys go back to the target's screen, unless the user is in a field of the page.
    const active = document.activeElement;
    if (rfb && state === 'connected' && !(active && active.matches('textarea, input, select'))) rfb.focus();
  }
}

function setControls(enabled) {
  for (const control of [el.cad, el.combo, el.pasteSend, el.layout, el.mouseMode]) control.disabled = !enabled;
}

// ------------------------------------------------------------------------------------------------
// Host and capture state

async function refreshStatus() {
  try {
    const [status, viewers] = await Promise.all([api('GET', 'status'), api('GET', 'viewers')]);
    // The status counts every connection (page loads and API calls too); people are the viewers
    // that logged in.
    renderStatus(status, viewers.filter(viewer => viewer.logged_in).length);
  } catch (e) {
    el.host.textContent = `Host state unknown: ${e.message}`;
    el.host.dataset.kind = 'error';
    el.hostDetails.replaceChildren();
  }
}

function renderStatus(s, viewers) {
  const usb = s.usb
    ? `target USB ${s.usb.state || 'state unknown'}`
    : 'no USB gadget (demo target or --hid-device)';
  const capture = s.capture.signal
    ? `capture ${s.capture.source}${s.capture.mode ? ` ${s.capture.mode}` : ''}`
    : `capture ${s.capture.source}: ${s.capture.problem || 'no picture'}`;
  el.host.textContent = `${usb} · ${capture} · ${s.screen.width}×${s.screen.height}`;
  el.host.dataset.kind = s.capture.signal ? 'ok' : 'error';
  const rows = [
    ['USB gadget', s.usb ? s.usb.gadget : 'none (demo target or --hid-device)'],
    ['Device controller', s.usb ? s.usb.udc || 'not bound' : '–'],
    ["Target's USB host", s.usb ? s.usb.state || 'unknown' : '–'],
    ['Capture', s.capture.source],
    ['Picture', s.capture.signal ? 'yes' : `no: ${s.capture.problem || 'no signal'}`],
    ['Capture mode', s.capture.mode || '–'],
    ['Screen', `${s.screen.width}×${s.screen.height}`],
    ['Viewers', `${viewers} logged in (this page included)`],
    ['Keyboard layout', s.layout],
    ['Mouse', s.mouse_mode],
  ];
  el.hostDetails.replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value;
    return [dt, dd];
  }));
  // Follow changes made elsewhere (kvnc ctl, Ctrl+Alt+Shift+M), unless the user is choosing.
  if (document.activeElement !== el.layout) selectLayout(s.layout);
  if (document.activeElement !== el.mouseMode) el.mouseMode.value = s.mouse_mode;
}

function selectLayout(name) {
  if (![...el.layout.options].some(option => option.value === name)) {
    el.layout.append(new Option(name, name));
  }
  el.layout.value = name;
}

for (const [name, label] of LAYOUTS) el.layout.append(new Option(`${label} (${name})`, name));

async function poll() {
  stopPolling();
  await Promise.all([refreshStatus(), el.mediaPanel.hidden ? null : refreshMedia()]);
  if (state === 'connected') pollTimer = setTimeout(poll, POLL_MS);
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

// ------------------------------------------------------------------------------------------------
// Virtual media

async function refreshMedia() {
  try {
    renderMedia(await api('GET', 'media'));
  } catch (e) {
    el.mediaState.textContent = `Virtual media: ${e.message}`;
    el.mediaState.dataset.kind = 'error';
    for (const control of el.mediaControls.querySelectorAll('select, button')) control.disabled = true;
    el.mediaRefresh.disabled = false;
  }
}

function renderMedia({ images, status }) {
  const inDrive = status.image
    ? `In the drive: ${status.image}, as ${MEDIA_MODES[status.mode] || status.mode}.`
    : 'The drive is empty.';
  const host = status.host_configured
    ? "The target's USB host has configured the gadget."
    : "The target's USB host has not configured the gadget (target off, asleep or not plugged in).";
  el.mediaState.textContent = `${inDrive} ${host}`;
  el.mediaState.dataset.kind = 'ok';
  const before = el.mediaImage.value;
  const chosen = before || status.image || '';
  el.mediaImage.replaceChildren(...images.map(image =>
    new Option(`${image.name} (${bytesInWords(image.size_bytes)})`, image.name)));
  if (!images.length) el.mediaImage.append(new Option('no images in the media directory', ''));
  if (images.some(image => image.name === chosen)) el.mediaImage.value = chosen;
  if (el.mediaImage.value !== before) chooseMode();
  const enabled = state === 'connected';
  el.mediaImage.disabled = !enabled || !images.length;
  el.mediaMode.disabled = !enabled;
  el.mediaAttach.disabled = !enabled || !images.length;
  el.mediaEject.disabled = !enabled || !status.image;
  el.mediaRefresh.disabled = false;
}

// The mode for the chosen image: an ISO goes into the CD-ROM; other images are disks,
// read-only unless the user says otherwise.
function chooseMode() {
  el.mediaMode.value = /\.iso$/i.test(el.mediaImage.value) ? 'cdrom' : 'read-only';
}
el.mediaImage.addEventListener('change', chooseMode);
el.mediaAttach.addEventListener('click', async () => {
  const name = el.mediaImage.value;
  if (!name) {
    showMessage('Choose an image first', 'error');
    return;
  }
  await act(`Could not attach ${name}`, 'POST', 'media/attach', { name, mode: el.mediaMode.value },
    s => `Attached ${s.image} as ${MEDIA_MODES[s.mode] || s.mode}`, { idempotent: true });
  await refreshMedia();
});
el.mediaEject.addEventListener('click', async () => {
  await act('Could not eject', 'POST', 'media/eject', undefined, () => 'Ejected the virtual media',
    { idempotent: true });
  await refreshMedia();
});
el.mediaRefresh.addEventListener('click', () => Promise.all([refreshMedia(), refreshStatus()]));

function togglePanel(panel, button, open) {
  panel.hidden = !open;
  button.setAttribute('aria-expanded', String(open));
}
el.mediaToggle.addEventListener('click', () => {
  const open = el.mediaPanel.hidden;
  togglePanel(el.mediaPanel, el.mediaToggle, open);
  if (open) Promise.all([refreshMedia(), refreshStatus()]);
});
el.mediaClose.addEventListener('click', () => togglePanel(el.mediaPanel, el.mediaToggle, false));

// ------------------------------------------------------------------------------------------------
// Keys, typing, layout, mouse

async function press(combo, label) {
  await act(`Could not press ${label}`, 'POST', 'keys', { combo }, () => `Pressed ${label}`);
}

el.cad.addEventListener('click', () => press('ctrl+alt+delete', 'Ctrl+Alt+Del'));
el.combo.addEventListener('change', () => {
  const option = el.combo.selectedOptions[0];
  const combo = el.combo.value;
  el.combo.value = '';
  if (combo) press(combo, option.textContent.replace(/ \(.*\)$/, ''));
});

el.pasteToggle.addEventListener('click', () => {
  const open = el.pastePanel.hidden;
  togglePanel(el.pastePanel, el.pasteToggle, open);
  if (open) el.pasteText.focus();
});
el.pasteClose.addEventListener('click', () => togglePanel(el.pastePanel, el.pasteToggle, false));
el.pasteSend.addEventListener('click', async () => {
  const text = el.pasteText.value;
  if (!text) {
    showMessage('There is no text to type', 'error');
    return;
  }
  const done = await act('Could not type the text', 'POST', 'type', { text },
    d => `Typing ${d.typing} characters on the target`);
  if (done) el.pasteText.value = '';
});

el.layout.addEventListener('change', async () => {
  const name = el.layout.value;
  const done = await act(`Could not set the layout ${name}`, 'POST', 'layout', { name },
    d => `Keyboard layout: ${d.layout}`, { idempotent: true });
  el.layout.blur();
  refreshStatus();
  if (!done) selectLayout(name);
});
el.mouseMode.addEventListener('change', async () => {
  const mode = el.mouseMode.value;
  await act('Could not switch the mouse', 'POST', 'mouse-mode', { mode },
    d => (d.mouse_mode === 'relative' ? 'Mouse: relative (boot mouse)' : 'Mouse: absolute pointer'),
    { idempotent: true });
  el.mouseMode.blur();
  refreshStatus();
});

// ------------------------------------------------------------------------------------------------
// Window

el.scale.addEventListener('change', () => {
  if (rfb) rfb.scaleViewport = el.scale.checked;
});
el.fullscreen.addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(e => showMessage(`No full screen: ${e.message}`, 'error'));
});
el.reconnect.addEventListener('click', connect);
window.addEventListener('unhandledrejection', e => showMessage(`Error: ${e.reason && e.reason.message || e.reason}`, 'error'));

connect();
