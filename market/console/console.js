// The console's entry: hash routes, the live event stream, and the key a
// user may paste to see their own bids.
//
// Routes: #/ (market), #/tasks/{id}, #/settlements, #/workers/{G...},
// #/bids/{id}, #/review (a verified reviewer answers reviews). A seed may
// also arrive as `#/bids/{id}?seed=S...` or `#/review?seed=S...` (used by
// the browser tests): the page takes it, then drops it from the URL and
// the history at once. `?live=0` on the first URL (`#/?live=0`, or
// `/?live=0` before the hash) makes a still snapshot:
// no event stream, no long-poll (a headless browser's virtual clock stops
// while a request is open, so the browser test loads pages this way).

import { el, fill, errorBox, units, setUnits } from './util.js';
import { Signer } from './keys.js';
import { marketPage, workerPage } from './market.js';
import { taskPage } from './evidence.js';
import { settlementsPage } from './chain.js';
import { bidPage } from './bid.js';
import { reviewPage } from './review.js';

const view = document.getElementById('view');
const WINDOW_S = 60;

/** What every page shares: the key, the event stream, recent history. */
export const session = {
  signer: null,
  listeners: new Set(),
  recent: [], // the last events, newest first
  verifiedAt: [], // times (ms) of verified decisions in the last minute
  live: false,
  /** A snapshot: nothing held open, no live updates. */
  still: new URLSearchParams(location.hash.split('?')[1] || '').get('live') === '0'
    || new URLSearchParams(location.search).get('live') === '0',

  /** Call `fn(event)` on each market event; returns the unsubscribe. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },

  /** Verified tasks in each of the last `WINDOW_S` seconds, oldest first. */
  verifiedPerSecond() {
    const now = Date.now();
    const counts = new Array(WINDOW_S).fill(0);
    this.verifiedAt = this.verifiedAt.filter((t) => now - t < WINDOW_S * 1000);
    for (const t of this.verifiedAt) counts[WINDOW_S - 1 - Math.floor((now - t) / 1000)] += 1;
    return counts;
  },

  async useSeed(seed) {
    this.signer = await Signer.fromSecret(seed);
    showKey();
  },

  forget() {
    this.signer = null;
    showKey();
  },
};

// The event stream: one for the page's life; EventSource reconnects by itself.
function connect() {
  if (session.still) {
    document.getElementById('live').textContent = 'snapshot';
    return;
  }
  if (!('EventSource' in window)) return;
  const es = new EventSource('/v1/events');
  const badge = document.getElementById('live');
  const setLive = (on) => {
    session.live = on;
    badge.textContent = on ? 'live' : 'reconnecting';
    badge.className = `live ${on ? 'on' : 'off'}`;
  };
  es.onopen = () => setLive(true);
  es.onerror = () => setLive(false);
  es.onmessage = (m) => {
    let event;
    try {
      event = JSON.parse(m.data);
    } catch (_) {
      return;
    }
    event.at = Date.now();
    session.recent.unshift(event);
    session.recent.length = Math.min(session.recent.length, 30);
    // A market that publishes its decisions in batches says so with task_published.
    if ((event.type === 'task_decided' || event.type === 'task_published') && event.status === 'verified') session.verifiedAt.push(event.at);
    for (const fn of session.listeners) {
      try {
        fn(event);
      } catch (e) {
        console.error('event listener failed', e);
      }
    }
  };
  // Fell behind: pages refresh as for any event.
  es.addEventListener('lagged', () => {
    for (const fn of session.listeners) fn({ type: 'lagged', at: Date.now() });
  });
}

function showKey() {
  const info = document.getElementById('keyinfo');
  if (!session.signer) {
    fill(info);
    return;
  }
  fill(info, 'Signing as ', el('span', { class: 'mono', id: 'signing-as' }, session.signer.account), ' ',
    el('button', { type: 'button', class: 'link', onclick: () => { session.forget(); route(); } }, 'forget key'));
}

/** The form asking for a seed; `then` runs once a key is loaded. */
export function keyForm(why, then) {
  const input = el('input', {
    type: 'password', id: 'seed', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'S… secret seed', 'aria-label': 'Secret seed',
  });
  const msg = el('p', { class: 'muted' });
  const form = el('form', {
    class: 'keyform',
    autocomplete: 'off',
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await session.useSeed(input.value);
        input.value = '';
        then();
      } catch (err) {
        fill(msg, errorBox(err, 'This key cannot be used:'));
      }
    },
  }, input, el('button', { type: 'submit' }, 'Use key'));
  return el('div', { class: 'card keycard' },
    el('h2', {}, 'Sign in this page'),
    el('p', {}, why),
    el('p', { class: 'muted' }, 'The seed is turned into a key inside this page (WebCrypto Ed25519) and used only to sign '
      + 'requests to this market; it is never sent, written to storage, or kept after the page closes.'),
    form, msg);
}

let cleanup = null;
let generation = 0;

/** Parse `#/a/b?x=1` into parts and query. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

async function route() {
  const { parts, params } = parseHash();
  const seed = params.get('seed');
  if (seed !== null) {
    // Take the seed, then erase it from the address bar and the history.
    params.delete('seed');
    const rest = params.toString();
    history.replaceState(null, '', `#/${parts.map(encodeURIComponent).join('/')}${rest ? `?${rest}` : ''}`);
    try {
      await session.useSeed(seed);
    } catch (err) {
      fill(view, errorBox(err, 'The seed in the link cannot be used:'));
      return;
    }
  }
  if (cleanup) {
    try {
      cleanup();
    } catch (_) {
      // A page that fails to clean up must not stop the next one.
    }
    cleanup = null;
  }
  const mine = ++generation;
  const ctx = {
    view,
    session,
    params,
    keyForm,
    /** False once the user has moved to another page. */
    current: () => mine === generation,
  };
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.route === (parts[0] || 'market'));
  }
  const [page, arg] = parts;
  let render;
  if (!page) render = () => marketPage(ctx);
  else if (page === 'tasks' && arg) render = () => taskPage(ctx, arg);
  else if (page === 'settlements') render = () => settlementsPage(ctx);
  else if (page === 'workers' && arg) render = () => workerPage(ctx, arg);
  else if (page === 'bids' && arg) render = () => bidPage(ctx, arg);
  else if (page === 'review' && !arg) render = () => reviewPage(ctx);
  else render = () => fill(view, el('p', { class: 'error' }, 'No such page. '), el('a', { href: '#/' }, 'Back to the market'));
  try {
    const done = await render();
    if (mine === generation) cleanup = typeof done === 'function' ? done : null;
    else if (typeof done === 'function') done();
  } catch (err) {
    if (mine === generation) fill(view, errorBox(err, 'This page failed:'));
  }
}

document.getElementById('goto').addEventListener('submit', (e) => {
  e.preventDefault();
  const kind = document.getElementById('goto-kind').value;
  const id = document.getElementById('goto-id').value.trim();
  if (id) location.hash = `#/${kind}/${encodeURIComponent(id)}`;
});

// The amounts' unit: the asset or stroops; the page is drawn again in it.
const unitsButton = document.getElementById('units');
const showUnits = () => {
  unitsButton.textContent = units() === 'stroops' ? 'stroops' : 'XLM';
  unitsButton.dataset.units = units();
};
unitsButton.addEventListener('click', () => {
  setUnits(units() === 'stroops' ? 'asset' : 'stroops');
  showUnits();
  route();
});
showUnits();

window.addEventListener('hashchange', route);
connect();
route();
