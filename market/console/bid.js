// A bid (#/bids/{id}), for its client only: every request is signed in
// this page with the pasted key. The status, each input image (drawn with
// the consensus and each worker's boxes as toggled overlays), and live
// updates by long-poll: GET /v1/bids/{id}?wait_ms=25000&seen=K answers on
// the market's next decision about the bid.

import { el, fill, api, errorBox, amount, account, badge, card, kv, shortHash, when, ApiError } from './util.js';
import { readResults, layersOf, boxesView, consensusList } from './evidence.js';
import { decodeImage } from './draw.js';

const WAIT_MS = 25000;
const RETRY_MS = 3000;

export async function bidPage(ctx, raw) {
  const { view, session } = ctx;
  const id = Number.parseInt(raw, 10);
  if (!Number.isSafeInteger(id) || String(id) !== raw) {
    fill(view, el('p', { class: 'error' }, `${raw} is not a bid id.`));
    return null;
  }
  const head = el('div', { class: 'pagehead' }, el('h1', { id: 'bid-title' }, `Bid ${id}`),
    el('p', { class: 'muted' }, 'A bid\u2019s status and images are its client\u2019s: shown only to requests signed with the client\u2019s key.'));
  if (!session.signer) {
    fill(view, head, ctx.keyForm(`Paste the seed of bid ${id}\u2019s client to see it. Each task\u2019s public evidence stays open to anyone under #/tasks/{id}.`,
      () => bidPage(ctx, raw)));
    return null;
  }
  const signer = session.signer;
  const summary = el('div', { id: 'bid-summary' });
  const tasks = el('div', { id: 'bid-tasks' });
  const live = el('p', { class: 'muted small', id: 'bid-live' });
  fill(view, head, summary, live, tasks);

  const abort = new AbortController();
  const images = new Map(); // input hash -> HTMLImageElement | Error
  const shown = new Map(); // task id -> what its section shows, to redraw only on change
  const visible = new Map(); // layer key -> ticked, kept across updates

  const signedGet = async (path, as) => api(path, { headers: await signer.headers('GET', path), signal: abort.signal, as });

  const image = async (hash) => {
    if (!images.has(hash)) {
      try {
        const bytes = await signedGet(`/v1/inputs/${hash}`, 'bytes');
        images.set(hash, await decodeImage(bytes));
      } catch (err) {
        if (abort.signal.aborted) throw err;
        images.set(hash, err);
      }
    }
    return images.get(hash);
  };

  const render = async (status) => {
    fill(summary, summaryCard(status));
    const sections = [];
    for (const t of status.tasks) {
      const key = `${t.status}/${t.results}/${t.revisions}`;
      let prev = shown.get(t.task);
      if (!prev || prev.key !== key) {
        prev = { key, node: await taskSection(t, await image(t.input), visible) };
        shown.set(t.task, prev);
      }
      sections.push(prev.node);
    }
    if (ctx.current()) fill(tasks, sections);
  };

  let status;
  try {
    status = await signedGet(`/v1/bids/${id}`);
    await render(status);
  } catch (err) {
    const why = err instanceof ApiError && err.status === 403
      ? `The key loaded (${signer.account}) is not this bid\u2019s client:`
      : `Could not read bid ${id}:`;
    fill(summary, errorBox(err, why));
    return () => abort.abort();
  }

  if (session.still) {
    fill(live, 'A still snapshot: reload without live=0 for live updates.');
    return () => abort.abort();
  }
  // Long-poll until the bid is done or the user leaves the page.
  (async () => {
    while (ctx.current() && !abort.signal.aborted && status.status !== 'done') {
      const seen = status.tasks.filter((t) => t.status === 'verified' || t.status === 'failed').length;
      fill(live, el('span', { class: 'pulse' }), ` Waiting for the market\u2019s next decision (${seen} of ${status.tasks.length} tasks decided)…`);
      try {
        status = await signedGet(`/v1/bids/${id}?wait_ms=${WAIT_MS}&seen=${seen}`);
        if (ctx.current()) await render(status);
      } catch (err) {
        if (abort.signal.aborted || !ctx.current()) return;
        if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
          fill(live, errorBox(err, 'Stopped following the bid:'));
          return;
        }
        fill(live, errorBox(err, 'Lost the market; trying again shortly:'));
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
    if (ctx.current() && status.status === 'done') fill(live, 'The bid is done: every task decided and the unspent reserve refunded.');
  })();
  return () => abort.abort();
}


function summaryCard(s) {
  const money = (v) => amount(v, null);
  const decided = s.tasks.filter((t) => t.status === 'verified' || t.status === 'failed').length;
  return card('Status',
    el('dl', { class: 'kv' },
      kv('Bid', el('span', { id: 'bid-status' }, badge(s.status)), ` ${decided} of ${s.tasks.length} tasks decided`),
      kv('Client', account(s.client, { link: false })),
      kv('Model', shortHash(s.model, 16)),
      kv('Price', `${money(s.price)} per agreeing result (${s.price} stroops)`),
      // Once done, what was not spent is back with the client.
      s.status === 'done'
        ? kv('Refunded', money(Math.max(0, Number(s.reserved) - Number(s.spent))))
        : kv('Reserved', money(s.reserved)),
      kv('Spent', money(s.spent)),
      kv('Created', when(s.created_at))));
}

/** One task: its status, consensus, and the image with every result's boxes. */
async function taskSection(t, img, visible) {
  let evidence = null;
  let results = [];
  try {
    evidence = await api(`/v1/tasks/${t.task}/evidence`);
    results = await readResults(evidence);
  } catch (_) {
    // The status alone still shows the consensus.
  }
  const ev = evidence || { verdict: t.consensus ? { consensus: t.consensus, agree: [], disagree: [] } : null };
  const layers = layersOf(ev, results);
  for (const l of layers) {
    if (visible.has(l.key)) l.visible = visible.get(l.key);
  }
  const picture = img instanceof Error
    ? errorBox(img, 'Could not load this input:')
    : boxesView(layers, img, `bid-canvas-${t.task}`);
  // Remember the ticks, so an update keeps what the user chose.
  picture.addEventListener('change', () => layers.forEach((l) => visible.set(l.key, l.visible)));
  return el('section', { class: 'card task', id: `task-${t.task}`, 'data-task': t.task },
    el('div', { class: 'rechead' },
      el('h2', {}, el('a', { href: `#/tasks/${t.task}` }, `Task ${t.task}`)), badge(t.status),
      el('span', { class: 'muted small' }, `${t.results} result${t.results === 1 ? '' : 's'}`),
      t.revisions ? el('span', { class: 'chip warn' }, `revised ${t.revisions}\u00d7`) : null,
      t.reviewed ? el('span', { class: 'chip', 'data-reviewed': 'true', title: 'The workers did not agree: verified reviewers decided this task.' },
        `decided by review: ${t.reviews} review${t.reviews === 1 ? '' : 's'}, ${amount(t.review_cost, null)}`) : null,
      el('span', { class: 'muted small' }, 'input ', shortHash(t.input, 12))),
    el('div', { class: 'taskbody' },
      el('div', { class: 'consensus' }, el('h3', {}, 'Consensus'), consensusList(t.consensus),
        results.length ? el('h3', {}, 'Results') : null,
        results.map((r) => el('div', { class: 'small' }, `#${r.assignment} `, account(r.worker), ` ${r.vote}`))),
      picture));
}
