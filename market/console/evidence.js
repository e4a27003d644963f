// A task's public evidence (#/tasks/{id}): the signed results, the vote,
// weights and credibility, exclusions and revisions, the signed reviews of
// a task people decided, and each result's boxes. The input image is private, so the boxes are drawn on a blank
// canvas spanning them; the bid page draws the same layers on the image.

import { el, fill, api, errorBox, account, badge, card, kv, shortHash, when, b64decode, throttle } from './util.js';
import { drawBoxes, extentOf, layerToggles, colorFor, CONSENSUS_COLOR } from './draw.js';
import { verify, resultMessage, reviewMessage } from './keys.js';

/** Each result decoded, with its vote and signature check. */
export async function readResults(ev) {
  const agree = new Set(ev.verdict ? ev.verdict.agree : []);
  const disagree = new Set(ev.verdict ? ev.verdict.disagree : []);
  const excluded = new Set(ev.excluded || []);
  const voted = new Set(ev.voted || []);
  const weights = new Map((ev.weights || []).map((w) => [w.assignment, w]));
  return Promise.all(ev.results.map(async (r) => {
    let detections = [];
    let elapsed = null;
    let signed = null;
    try {
      const body = b64decode(r.body);
      const req = JSON.parse(new TextDecoder().decode(body));
      detections = Array.isArray(req.detections) ? req.detections : [];
      elapsed = req.elapsed_ms;
      signed = await verify(r.worker, await resultMessage(r, body), r.signature);
    } catch (_) {
      signed = false;
    }
    let vote = 'pending';
    if (excluded.has(r.assignment)) vote = 'excluded';
    else if (agree.has(r.assignment)) vote = 'agreed';
    else if (disagree.has(r.assignment)) vote = 'disagreed';
    if (ev.verdict && voted.size && !voted.has(r.assignment) && vote !== 'excluded') vote += ' (late)';
    return { ...r, detections, elapsed, signed, vote, weight: weights.get(r.assignment) };
  }));
}

/** Each signed review decoded, with its signature check and its part in the reviews' vote. */
export async function readReviews(ev) {
  const agree = new Set(ev.review ? ev.review.verdict.agree : []);
  return Promise.all((ev.reviews || []).map(async (r) => {
    let detections = [];
    let signed = null;
    try {
      const body = b64decode(r.body);
      const req = JSON.parse(new TextDecoder().decode(body));
      detections = Array.isArray(req.detections) ? req.detections : [];
      signed = await verify(r.reviewer, await reviewMessage(r, body), r.signature);
    } catch (_) {
      signed = false;
    }
    const vote = !ev.review ? 'undecided' : agree.has(r.review) ? 'agreed' : 'disagreed';
    return { ...r, detections, signed, vote };
  }));
}

/** Drawing layers: the consensus, then one per result. */
export function layersOf(ev, results) {
  const layers = [];
  if (ev.verdict) {
    layers.push({ key: 'consensus', name: `Consensus (${ev.verdict.consensus.length})`, detections: ev.verdict.consensus, color: CONSENSUS_COLOR, consensus: true, visible: true });
  }
  results.forEach((r, i) => layers.push({
    key: `a${r.assignment}`,
    name: `Assignment ${r.assignment} · ${r.worker.slice(0, 5)}… · ${r.vote}`,
    detections: r.detections,
    color: colorFor(i),
    visible: !ev.verdict,
  }));
  return layers;
}

/** A canvas with toggles; `image` is an ImageBitmap or null (blank). */
export function boxesView(layers, image, id) {
  const canvas = el('canvas', { class: 'boxes', id, 'data-image': image ? 'input' : 'blank' });
  const size = image ? null : extentOf(layers);
  const redraw = () => drawBoxes(canvas, { image, size, layers });
  redraw();
  return el('div', { class: 'boxview' }, layerToggles(layers, redraw), el('div', { class: 'canvaswrap' }, canvas));
}

export function consensusList(dets) {
  if (!dets || !dets.length) return el('span', { class: 'muted' }, 'nothing detected');
  return el('ul', { class: 'dets' }, dets.map((d) => el('li', { class: 'det', 'data-label': d.label },
    el('strong', {}, d.label), ` ${Number(d.score).toFixed(2)} `,
    el('span', { class: 'mono muted small' }, `[${d.box.map((v) => Math.round(v)).join(', ')}]`))));
}

export async function taskPage(ctx, raw) {
  const { view, session } = ctx;
  const id = Number.parseInt(raw, 10);
  if (!Number.isSafeInteger(id) || String(id) !== raw) {
    fill(view, el('p', { class: 'error' }, `${raw} is not a task id.`));
    return null;
  }
  const body = el('div', { id: 'evidence' });
  const warning = el('div', { id: 'audit-warning' });
  fill(view, el('div', { class: 'pagehead' }, el('h1', { id: 'task-title' }, `Task ${id}`),
    el('p', { class: 'muted' }, 'The public evidence: every result exactly as its worker signed it, and how the vote went.')), warning, body);
  auditWarning(warning, id);
  const load = async () => {
    try {
      const ev = await api(`/v1/tasks/${id}/evidence`);
      const results = await readResults(ev);
      const reviews = await readReviews(ev);
      if (ctx.current()) renderEvidence(body, ev, results, reviews);
    } catch (err) {
      if (ctx.current()) fill(body, errorBox(err, `Could not read task ${id}:`));
    }
  };
  await load();
  const mine = (e) => e.task === id || e.type === 'lagged';
  const refresh = throttle(load, 500);
  return session.subscribe((e) => {
    if (mine(e)) refresh();
  });
}

/** Where the market's own last audit found something wrong with this task,
 * say so above its evidence, with what it found. */
async function auditWarning(node, id) {
  let report;
  try {
    report = await api('/v1/audit');
  } catch (err) {
    return;
  }
  if (!report || report.ok) return;
  const here = new RegExp(`\\btask ${id}\\b`);
  const mine = report.findings.filter((f) => here.test(f.detail));
  if (mine.length === 0) return;
  fill(node, el('div', { class: 'verdict bad', 'data-ok': 'false', id: 'task-audit' },
    el('strong', {}, `The market\u2019s own audit found ${mine.length} discrepanc${mine.length === 1 ? 'y' : 'ies'} on this task.`),
    el('ul', {}, mine.map((f) => el('li', {}, `${f.kind.replaceAll('_', ' ')}: ${f.detail}`))),
    el('p', { class: 'small' }, `Run ${when(report.audited_at)}; tally audit --market URL checks it again.`)));
}

function renderEvidence(node, ev, results, reviews) {
  const p = ev.params;
  const money = (v) => `${v} stroops`;
  fill(node,
    el('div', { class: 'grid2' },
      card('Task',
        el('dl', { class: 'kv' },
          kv('Status', badge(ev.status)),
          kv('Bid', el('a', { href: `#/bids/${ev.bid}` }, `bid ${ev.bid}`), el('span', { class: 'muted small' }, ' (its status needs the client\u2019s key)')),
          kv('Model', shortHash(ev.model, 16)),
          kv('Input', shortHash(ev.input, 16), el('span', { class: 'muted small' }, ' (private to the client and its workers)')),
          kv('Price', `${money(ev.price)} per agreeing result`),
          kv('Fee', `${(ev.fee_bps / 100).toFixed(2)}%`),
          ev.credibility !== undefined && ev.credibility !== null ? kv('Group credibility', el('span', { class: 'mono', id: 'group-cred' }, Number(ev.credibility).toFixed(6))) : null)),
      card('Rule',
        el('dl', { class: 'kv', id: 'rule' },
          kv('Quorum', `${p.quorum} agreeing result${p.quorum === 1 ? '' : 's'}`),
          p.confidence !== undefined && p.confidence !== null ? kv('Confidence', String(p.confidence)) : null,
          kv('Boxes match at IoU', `\u2265 ${p.iou}`),
          kv('Scores counted from', String(p.min_score)),
          kv('Results agree at', `\u2265 ${p.agree} of boxes matched`),
          kv('Margin', String(p.margin))))),
    ev.withheld ? el('p', { class: 'note' }, 'This task\u2019s image is in use as a spot check: its results and answer are withheld while it may be used again.') : null,
    ev.verdict ? card('Consensus', el('div', { id: 'consensus' }, consensusList(ev.verdict.consensus))) : null,
    card(`Signed results (${results.length})`, resultsTable(ev, results)),
    reviews.length ? card(`Signed reviews (${reviews.length})`,
      el('p', { class: 'muted small', id: 'review-rule' }, ev.review
        ? 'The workers did not agree; two agreeing reviews by verified people decided the task, and the consensus above is theirs. Results are judged against it.'
        : 'The workers did not agree and neither did the reviewers: the task failed and its bid was refunded.'),
      reviewsTable(reviews, ev.review_price)) : null,
    results.length || ev.verdict ? card('Boxes', el('p', { class: 'muted small' },
      'The image is private, so the boxes are drawn on a blank canvas spanning them (coordinates are image pixels). '
      + 'The consensus is solid green; tick a result to overlay it.'), boxesView(layersOf(ev, results), null, 'task-canvas')) : null,
    ev.revisions && ev.revisions.length ? card('Revisions', revisions(ev.revisions)) : null);
}

function resultsTable(ev, results) {
  if (!results.length) return el('p', { class: 'muted' }, ev.withheld ? 'Withheld.' : 'No result yet.');
  return el('table', { class: 'tbl', id: 'results' },
    el('thead', {}, el('tr', {},
      ['Assignment', 'Worker', 'Signature', 'Vote', 'Boxes', 'Weight', 'Signed at'].map((h) => el('th', {}, h)))),
    el('tbody', {}, results.map((r) => el('tr', { 'data-assignment': r.assignment, class: `v-${r.vote.split(' ')[0]}` },
      el('td', { class: 'mono' }, String(r.assignment)),
      el('td', {}, account(r.worker)),
      el('td', {}, sigBadge(r.signed)),
      el('td', {}, el('span', { class: `vote ${r.vote.split(' ')[0]}` }, r.vote)),
      el('td', {}, r.detections.map((d) => el('span', { class: 'chip' }, `${d.label} ${Number(d.score).toFixed(2)}`))),
      el('td', {}, r.weight
        ? el('span', { class: 'small' }, `checks ${r.weight.checks.passed}/${r.weight.checks.passed + r.weight.checks.failed}, cred. ${Number(r.weight.credibility).toFixed(4)}`)
        : el('span', { class: 'muted' }, '–')),
      el('td', { class: 'small' }, when(new Date(r.timestamp).toISOString()))))));
}

function reviewsTable(reviews, price) {
  return el('table', { class: 'tbl', id: 'reviews' },
    el('thead', {}, el('tr', {},
      ['Review', 'Reviewer', 'Signature', 'Vote', 'Boxes', 'Paid', 'Signed at'].map((h) => el('th', {}, h)))),
    el('tbody', {}, reviews.map((r) => el('tr', { 'data-review': r.review, class: `v-${r.vote}` },
      el('td', { class: 'mono' }, String(r.review)),
      el('td', {}, account(r.reviewer)),
      el('td', {}, sigBadge(r.signed)),
      el('td', {}, el('span', { class: `vote ${r.vote}` }, r.vote)),
      el('td', {}, r.detections.map((d) => el('span', { class: 'chip' }, `${d.label} ${Number(d.score).toFixed(2)}`))),
      el('td', { class: 'small' }, r.vote === 'agreed' && price ? `${price} stroops, fee included` : '–'),
      el('td', { class: 'small' }, when(new Date(r.timestamp).toISOString()))))));
}

function sigBadge(ok) {
  if (ok === true) return el('span', { class: 'sig ok', title: 'Ed25519 signature checked in this browser' }, '\u2713 valid');
  if (ok === false) return el('span', { class: 'sig bad' }, '\u2717 invalid');
  return el('span', { class: 'sig muted', title: 'This browser cannot check Ed25519' }, 'unchecked');
}

function revisions(list) {
  return el('ol', { class: 'revisions' }, list.map((r) => el('li', {},
    el('span', {}, when(r.revised_at)), ': undone when ', account(r.caught), ' was caught. It had said: ',
    consensusList(r.verdict.consensus))));
}
