// DOM building, API calls and formatting shared by every page.
// Text always goes in as text nodes: nothing from the market is ever
// parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';
const SVG_TAGS = new Set(['svg', 'g', 'rect', 'line', 'polyline', 'circle', 'text', 'title', 'path']);

/** Build an element: `el('a', {href: '#/', class: 'x'}, 'text', child)`.
 *  `on*` attributes are listeners; `style` is an object (set through the
 *  CSSOM, which the Content-Security-Policy allows). */
export function el(tag, attrs, ...children) {
  const node = SVG_TAGS.has(tag)
    ? document.createElementNS(SVG_NS, tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'style') Object.assign(node.style, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
}

/** Replace the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** An error answer of the market: `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Fetch `path` from this origin; JSON, or bytes with `as: 'bytes'`. */
export async function api(path, { headers = {}, signal, as = 'json' } = {}) {
  const r = await fetch(path, { headers, signal, cache: 'no-store' });
  if (!r.ok) {
    let code = `http_${r.status}`;
    let message = r.statusText || 'request failed';
    try {
      const body = await r.json();
      code = body.error.code;
      message = body.error.message;
    } catch (_) {
      // Not the market's error body: keep the status line.
    }
    throw new ApiError(r.status, code, message);
  }
  return as === 'bytes' ? new Uint8Array(await r.arrayBuffer()) : r.json();
}

/** A paragraph telling what went wrong. */
export function errorBox(err, what) {
  const detail = err instanceof ApiError ? `${err.message} (${err.code})` : String(err && err.message || err);
  return el('div', { class: 'error', role: 'alert' }, el('strong', {}, what), ' ', detail);
}

const STROOPS_PER_UNIT = 10_000_000;

/** The unit amounts are shown in: `asset` (XLM, USDC...) or `stroops`,
 * as the CLI prints them. `?units=stroops` on the URL, else what the
 * switch in the header last chose in this browser. */
export function units() {
  const asked = new URLSearchParams(location.hash.split('?')[1] || '').get('units')
    || new URLSearchParams(location.search).get('units');
  if (asked === 'stroops' || asked === 'asset') return asked;
  try {
    return localStorage.getItem('tally.units') === 'stroops' ? 'stroops' : 'asset';
  } catch (err) {
    return 'asset';
  }
}

export function setUnits(u) {
  try {
    localStorage.setItem('tally.units', u);
  } catch (err) {
    // A browser without storage keeps the default.
  }
}

/** Stroops as units of the asset (`12.5 XLM`, `0.0001 USDC`), or as
 * stroops (`125000000 stroops`) where the reader chose them. */
export function amount(stroops, asset) {
  if (units() === 'stroops') return `${String(stroops)} stroops`;
  const n = Number(stroops) / STROOPS_PER_UNIT;
  const text = n.toFixed(7).replace(/\.?0+$/, '');
  return `${text} ${assetCode(asset)}`;
}

export function assetCode(asset) {
  if (!asset || asset === 'native') return 'XLM';
  return String(asset).split(':')[0];
}

/** `GABC…WXYZ`, the full account in the title. */
export function account(acc, { link = true } = {}) {
  const text = acc.length > 12 ? `${acc.slice(0, 5)}…${acc.slice(-5)}` : acc;
  return link
    ? el('a', { class: 'mono acct', href: `#/workers/${acc}`, title: acc, 'data-account': acc }, text)
    : el('span', { class: 'mono acct', title: acc, 'data-account': acc }, text);
}

/** A hash shortened for display, full in the title. */
export function shortHash(h, n = 10) {
  return el('span', { class: 'mono', title: h }, h.length > n + 1 ? `${h.slice(0, n)}…` : h);
}

export function percent(x, digits = 1) {
  return `${(Number(x) * 100).toFixed(digits)}%`;
}

export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  // UTC, whatever the viewer's zone: times are compared across parties.
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A status pill: `open`, `running`, `verified`, `failed`, `done`, ... */
export function badge(status, text = status) {
  return el('span', { class: `badge s-${status}`, 'data-status': status }, text);
}

/** A labelled value for the definition grids. */
export function kv(label, ...value) {
  return [el('dt', {}, label), el('dd', {}, ...value)];
}

export function card(title, ...body) {
  return el('section', { class: 'card' }, el('h2', {}, title), ...body);
}

/** Base64 to bytes and back (standard alphabet). */
export function b64decode(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256hex(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

/** Call `fn` at most once per `ms`, trailing: a burst of events makes
 *  one call now and one after the burst. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}
