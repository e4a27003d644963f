// The market overview (#/) and a worker's public record (#/workers/{G...}).
// Both re-read GET /v1/market when the event stream says something
// changed, at most twice a second; nothing is polled on a timer.

import { el, fill, api, errorBox, amount, account, badge, card, kv, throttle } from './util.js';
import { bars, sparkline, columns } from './draw.js';
import { isAccount } from './keys.js';

const REFRESH_MS = 500;

export async function marketPage(ctx) {
  const { view, session } = ctx;
  const stats = el('div', { id: 'market-stats' });
  const rate = el('div', { id: 'rate' });
  const feed = el('ol', { class: 'feed', id: 'events' });
  fill(view,
    el('div', { class: 'pagehead' }, el('h1', {}, 'Market'),
      el('p', { class: 'muted' }, 'Open work, workers online and prices, updated as the market decides.')),
    stats,
    el('div', { class: 'grid2' },
      card('Verified tasks per second', rate, el('p', { class: 'muted small' }, 'Counted from the live event stream since this page opened.')),
      card('Live events', feed)));

  let data = null;
  const load = async () => {
    try {
      data = await api('/v1/market');
      if (ctx.current()) renderStats(stats, data);
    } catch (err) {
      if (ctx.current()) fill(stats, errorBox(err, 'Could not read the market:'));
    }
  };
  const refresh = throttle(load, REFRESH_MS);
  const drawRate = () => fill(rate, columns(session.verifiedPerSecond()));
  const drawFeed = () => fill(feed, session.recent.length
    ? session.recent.map((e) => el('li', {}, describe(e, data)))
    : el('li', { class: 'muted' }, 'Waiting for the next decision…'));

  await load();
  drawRate();
  drawFeed();
  const off = session.subscribe(() => {
    refresh();
    drawFeed();
    drawRate();
  });
  // The rate chart slides with the clock; this redraws locally, no request.
  const tick = setInterval(drawRate, 1000);
  return () => {
    off();
    clearInterval(tick);
  };
}

function renderStats(node, s) {
  const stroops = (v) => amount(v, s.asset);
  fill(node,
    el('div', { class: 'tiles' },
      tile('Open tasks', s.open_tasks, 'open'),
      tile('Running', s.running_tasks, 'running'),
      tile('Verified', s.verified_tasks, 'verified'),
      tile('Failed', s.failed_tasks, 'failed'),
      tile('In review', s.review_tasks ?? 0, 'review'),
      tile('Workers online', s.workers_online, 'workers')),
    el('div', { class: 'grid2' },
      card('Open tasks by price level',
        bars(s.price_levels.map((l) => ({ label: stroops(l.price), value: l.tasks, title: `${l.tasks} tasks at ${stroops(l.price)} (${l.price} stroops)` })),
          { unit: ' tasks', empty: 'No open tasks.' })),
      card('Recent clearing prices',
        // The API lists them newest first; the chart runs oldest to newest.
        sparkline(s.recent_clearing_prices.map(Number).reverse(), { format: stroops, empty: 'No task verified yet.' }),
        el('p', { class: 'muted small' }, 'Price paid per agreeing result, oldest to newest.'))),
    card(`Workers online (${s.workers.length})`, workersTable(s.workers)),
    card('This market',
      el('dl', { class: 'kv' },
        kv('Operator', account(s.operator, { link: false })),
        kv('Network', s.network),
        kv('Asset', s.asset),
        kv('Fee', `${(s.fee_bps / 100).toFixed(2)}% (${s.fee_bps} bps)`))));
}

function tile(label, value, key) {
  return el('div', { class: `tile t-${key}`, 'data-stat': key }, el('div', { class: 'num' }, String(value)), el('div', { class: 'lbl' }, label));
}

/** Credibility as a bar and a number. */
export function credibility(c) {
  const v = Math.max(0, Math.min(1, Number(c) || 0));
  return el('span', { class: 'cred', title: `credibility ${v}` },
    el('span', { class: 'meter' }, el('span', { class: 'fill', style: { width: `${(v * 100).toFixed(1)}%` } })),
    el('span', { class: 'mono' }, v.toFixed(4)));
}

function workersTable(workers) {
  if (!workers.length) return el('p', { class: 'muted' }, 'No worker seen in the last minute.');
  return el('table', { class: 'tbl', id: 'workers' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Worker'), el('th', { class: 'num' }, 'Spot checks passed'), el('th', { class: 'num' }, 'Failed'), el('th', {}, 'Credibility'))),
    el('tbody', {}, workers.map((w) => el('tr', { 'data-worker': w.account },
      el('td', {}, account(w.account)),
      el('td', { class: 'num' }, String(w.checks.passed)),
      el('td', { class: 'num' }, String(w.checks.failed)),
      el('td', {}, credibility(w.credibility))))));
}

/** One line of the event feed, linking what it names. */
function describe(e, stats) {
  const t = el('span', { class: 'muted small' }, `${new Date(e.at).toISOString().slice(11, 19)} UTC`, ' ');
  switch (e.type) {
    case 'task_decided':
      return [t, el('a', { href: `#/tasks/${e.task}` }, `Task ${e.task}`), ' ', badge(e.status), ' in ', el('a', { href: `#/bids/${e.bid}` }, `bid ${e.bid}`)];
    case 'task_published':
      return [t, el('a', { href: `#/tasks/${e.task}` }, `Task ${e.task}`), ' ', badge(e.status), ' published'];
    case 'task_revised':
      return [t, el('a', { href: `#/tasks/${e.task}` }, `Task ${e.task}`), ' revised: a worker of its agreeing group was caught; it runs again'];
    case 'bid_done':
      return [t, el('a', { href: `#/bids/${e.bid}` }, `Bid ${e.bid}`), ' done'];
    case 'settlement_written':
      return [t, el('a', { href: '#/settlements' }, `Settlement record ${e.seq}`), ' written'];
    case 'deposit_credited':
      return [t, 'Deposit of ', stats ? amount(e.amount, stats.asset) : `${e.amount} stroops`, ' credited to ', account(e.account)];
    case 'lagged':
      return [t, 'Some events were missed; the view was re-read.'];
    default:
      return [t, e.type];
  }
}

export async function workerPage(ctx, who) {
  const { view, session } = ctx;
  if (!isAccount(who)) {
    fill(view, el('p', { class: 'error' }, `${who} is not a G… account.`));
    return null;
  }
  const body = el('div', { id: 'worker' });
  fill(view,
    el('div', { class: 'pagehead' }, el('h1', {}, 'Worker'), el('p', { class: 'mono break', id: 'worker-account' }, who)),
    body);
  const load = async () => {
    try {
      const [s, w] = await Promise.all([api('/v1/market'), api(`/v1/workers/${who}`)]);
      const own = session.signer && session.signer.account === who ? await mine(session.signer, s.asset) : null;
      if (!ctx.current()) return;
      fill(body,
        card('Public record',
          w.known
            ? el('dl', { class: 'kv', id: 'record' },
              kv('Status', badge(w.caught ? 'caught' : w.online ? 'online' : 'offline')),
              kv('Credibility', credibility(w.credibility)),
              kv('Spot checks passed', String(w.checks.passed)),
              kv('Spot checks failed', String(w.checks.failed)),
              kv('Results agreed', String(w.agreed)),
              kv('Results outvoted', String(w.disagreed)),
              kv('Settled in all', amount(w.paid_total, s.asset)))
            : el('p', { class: 'muted' }, 'The market has never seen this account claim work.'),
          el('p', { class: 'muted small' }, 'Credibility is how far the market trusts this worker\u2019s results, from its spot-check record.')),
        card('Over time (UTC hours that have ended, last 7 days)', history(w.hours)),
        own || ctx.keyForm('Earnings, reputation and payouts due are the worker\u2019s own: the market shows them only to a request signed by this account (GET /v1/accounts/me). Paste the worker\u2019s seed to see them here.', load));
    } catch (err) {
      if (ctx.current()) fill(body, errorBox(err, 'Could not read the market:'));
    }
  };
  await load();
  const off = session.subscribe(throttle(load, REFRESH_MS * 4));
  return off;
}

/** A worker's ended hours: credibility at each hour's end, results per hour. */
function history(hours) {
  if (!hours.length) {
    return el('p', { class: 'muted', id: 'history' },
      'No ended hour with a decided result yet. The hour still running is never shown, so the record cannot date a single spot check.');
  }
  const label = (h) => `${h.hour.slice(5, 13).replace('T', ' ')}h`;
  return el('div', { id: 'history' },
    el('h3', {}, 'Credibility at the end of each hour'),
    sparkline(hours.map((h) => h.credibility), { format: (v) => v.toFixed(4), empty: '' }),
    el('h3', {}, 'Results decided per hour'),
    bars(hours.slice(-12).map((h) => ({
      label: label(h),
      value: h.agreed + h.disagreed,
      title: `${label(h)}: ${h.agreed} agreed, ${h.disagreed} outvoted, ${h.checks_passed} checks passed by then`,
    }))));
}

/** The signed account view of the worker whose key is loaded. */
async function mine(signer, asset) {
  try {
    const path = '/v1/accounts/me';
    const a = await api(path, { headers: await signer.headers('GET', path) });
    const money = (v) => amount(v, asset);
    return card('Earnings (signed by this worker)',
      el('dl', { class: 'kv', id: 'earnings' },
        kv('Earned, not yet paid', money(a.earned_unpaid)),
        kv('Held back (probation)', money(a.held)),
        Number(a.not_submitted || 0) > 0
          ? kv('Settled, not submitted', money(a.not_submitted), el('span', { class: 'muted small' }, ' (no chain server: nothing paid on the network)'))
          : kv('Paid in all', money(a.paid_total)),
        kv('Results agreed', String(a.reputation.agreed)),
        kv('Results disagreed', String(a.reputation.disagreed)),
        kv('Leases timed out', String(a.reputation.timed_out)),
        kv('Balance', money(a.balance))));
  } catch (err) {
    return errorBox(err, 'Could not read this worker\u2019s account:');
  }
}
