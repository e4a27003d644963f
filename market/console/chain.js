// The settlement chain (#/settlements): every record from
// GET /v1/settlements, its transaction on a public explorer, and the
// chain checked in this browser: each record's hash recomputed from its
// canonical text, each prev_hash linked to the record before.
// The full audit (envelopes, memos, the signed evidence behind every
// payout, the network's view) is `tally audit`.

import { el, fill, api, errorBox, amount, account, badge, card, shortHash, when, sha256hex, throttle } from './util.js';

const GENESIS = '0'.repeat(64);
const EXPLORERS = {
  'Test SDF Network ; September 2015': 'https://stellar.expert/explorer/testnet/tx/',
  'Public Global Stellar Network ; September 2015': 'https://stellar.expert/explorer/public/tx/',
};

/** Every record, following `after=` pages. */
async function allRecords() {
  const out = [];
  for (;;) {
    const after = out.length ? out[out.length - 1].seq : 0;
    const page = await api(`/v1/settlements?after=${after}&limit=1000`);
    out.push(...page.records);
    if (page.records.length < 1000) return out;
  }
}

/** The record's canonical text (settlement/src/record.rs), hashed. */
function encode(r) {
  let out = `tally-settlement-v1\n${r.seq}\n${r.prev_hash}\n${r.network}\n${r.source}\n${r.asset}\n${r.tx_hash}\n`;
  for (const p of r.payouts) {
    out += `${p.account} ${p.amount} `;
    if (!p.assignments.length) out += '-';
    out += p.assignments.join(',');
    if (p.op && p.op !== 'payment') out += ` op=${p.op}`;
    if (p.withdrawals && p.withdrawals.length) out += ` withdrawals=${p.withdrawals.join(',')}`;
    out += '\n';
  }
  return out;
}

/** Findings of the browser's chain check, per seq; empty when intact. */
async function checkChain(records) {
  const findings = [];
  let prev = null;
  for (const r of records) {
    const expectSeq = prev ? prev.seq + 1 : 1;
    if (r.seq !== expectSeq) findings.push({ seq: r.seq, what: `expected seq ${expectSeq}` });
    const expectPrev = prev ? prev.hash : GENESIS;
    if (r.prev_hash !== expectPrev) findings.push({ seq: r.seq, what: `prev_hash does not link to ${prev ? `record ${prev.seq}` : 'the genesis'}` });
    const h = await sha256hex(new TextEncoder().encode(encode(r)));
    if (h !== r.hash) findings.push({ seq: r.seq, what: `hash is ${r.hash.slice(0, 12)}…, its text hashes to ${h.slice(0, 12)}…` });
    prev = r;
  }
  return findings;
}

export async function settlementsPage(ctx) {
  const { view, session } = ctx;
  const verdict = el('div', { id: 'chain-verdict' });
  const marketAudit = el('div', { id: 'market-audit' });
  const list = el('div', { id: 'settlements' });
  fill(view,
    el('div', { class: 'pagehead' }, el('h1', {}, 'Settlements'),
      el('p', { class: 'muted' }, 'Earnings netted per worker into hash-chained records, each paid by one Stellar transaction once the market submits it.')),
    verdict, marketAudit, list);
  const load = async () => {
    try {
      const records = await allRecords();
      const findings = await checkChain(records);
      if (!ctx.current()) return;
      renderVerdict(verdict, records, findings);
      renderMarketAudit(marketAudit, await selfAudit());
      fill(list, records.length
        ? [...records].reverse().map((r) => recordCard(r, findings.filter((f) => f.seq === r.seq)))
        : el('p', { class: 'muted' }, 'No settlement record yet.'));
    } catch (err) {
      if (ctx.current()) fill(list, errorBox(err, 'Could not read the settlements:'));
    }
  };
  await load();
  const refresh = throttle(load, 1000);
  return session.subscribe((e) => {
    if (e.type === 'settlement_written' || e.type === 'lagged') refresh();
  });
}

// The market's own periodic audit (`GET /v1/audit`): null until it has run.
async function selfAudit() {
  try {
    return await api('/v1/audit');
  } catch (err) {
    return null;
  }
}

function renderMarketAudit(node, report) {
  if (!report) {
    fill(node, el('p', { class: 'small muted' }, 'The market has not audited itself yet (it does every few minutes).'));
    return;
  }
  const ok = report.ok;
  fill(node, el('div', { class: `verdict ${ok ? 'ok' : 'bad'}`, 'data-ok': String(ok) },
    el('strong', {}, ok
      ? `The market\u2019s own audit: all consistent (${report.records} records, ${report.payouts} payouts, ${report.tasks} tasks checked).`
      : `The market\u2019s own audit: ${report.findings.length} discrepancies.`),
    ok ? null : findingGroups(report.findings),
    el('p', { class: 'small' }, `Run ${when(report.audited_at)}: the same checks as tally audit, by the market against its own API.`)));
}

/** Findings grouped by kind, most frequent first: each kind once, with
 * its count, and its findings folded under it (the first few open). */
function findingGroups(findings) {
  const groups = new Map();
  for (const f of findings) {
    if (!groups.has(f.kind)) groups.set(f.kind, []);
    groups.get(f.kind).push(f.detail);
  }
  const sorted = [...groups.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  return el('div', { class: 'finding-groups' }, sorted.map(([kind, details]) =>
    el('details', { class: 'finding-group', 'data-kind': kind, open: details.length <= 3 ? '' : null },
      el('summary', {}, el('strong', {}, kind.replaceAll('_', ' ')), ` \u00b7 ${details.length} finding${details.length === 1 ? '' : 's'}`),
      el('ul', {}, details.map((d) => el('li', {}, d))))));
}

function renderVerdict(node, records, findings) {
  const ok = findings.length === 0;
  fill(node, el('div', { class: `verdict ${ok ? 'ok' : 'bad'}`, 'data-ok': String(ok) },
    el('strong', {}, ok
      ? `Chain intact: ${records.length} record${records.length === 1 ? '' : 's'}, every hash recomputed and linked.`
      : `Chain broken: ${findings.length} finding${findings.length === 1 ? '' : 's'}.`),
    ok ? null : el('ul', {}, findings.map((f) => el('li', {}, `Record ${f.seq}: ${f.what}`))),
    el('p', { class: 'small' }, 'Checked in this browser: sequence, prev_hash links and each record\u2019s hash over its canonical text. '
      + 'The full audit (each transaction envelope and memo, the signed results behind every payout, the network\u2019s ledger) is ',
    el('code', {}, 'tally audit --market URL'), '.')));
}

function recordCard(r, findings) {
  // Never sent to the network (the market has no --horizon/--rpc): no
  // explorer would know it, and nothing was paid by it.
  const unsent = r.status === 'not_submitted';
  const explorer = EXPLORERS[r.network];
  const tx = unsent
    ? el('span', { class: 'mono tx', 'data-tx': r.tx_hash, title: 'never submitted: the market runs without a chain server' }, r.tx_hash)
    : explorer
    ? el('a', { href: explorer + r.tx_hash, target: '_blank', rel: 'noopener noreferrer', class: 'mono tx', 'data-tx': r.tx_hash }, r.tx_hash)
    : el('span', { class: 'mono tx', 'data-tx': r.tx_hash, title: 'not a public network: no explorer link' }, r.tx_hash);
  const total = r.payouts.reduce((a, p) => a + Number(p.amount), 0);
  return el('section', { class: `card record${findings.length ? ' broken' : ''}`, id: `record-${r.seq}`, 'data-seq': r.seq },
    el('div', { class: 'rechead' },
      el('h2', {}, `Record ${r.seq}`), badge(r.status, unsent ? 'not submitted' : r.status),
      el('span', { class: 'muted small' }, when(r.created_at)),
      el('span', { class: 'muted small' }, `${r.payouts.length} payout${r.payouts.length === 1 ? '' : 's'}, ${amount(total, r.asset)}`)),
    el('dl', { class: 'kv' },
      el('dt', {}, 'Transaction'), el('dd', {}, tx,
        unsent ? el('span', { class: 'muted small unsent' }, ' signed, never submitted: nothing was paid on the network') : null),
      el('dt', {}, 'Hash'), el('dd', {}, shortHash(r.hash, 24)),
      el('dt', {}, 'Previous'), el('dd', {}, r.prev_hash === GENESIS ? el('span', { class: 'muted' }, 'genesis') : shortHash(r.prev_hash, 24)),
      el('dt', {}, 'Source'), el('dd', {}, account(r.source, { link: false })),
      el('dt', {}, 'Network'), el('dd', {}, r.network)),
    el('table', { class: 'tbl' },
      el('thead', {}, el('tr', {}, ['Payee', 'Amount', unsent ? 'Would pay by' : 'Paid by', 'For'].map((h) => el('th', {}, h)))),
      el('tbody', {}, r.payouts.map((p) => el('tr', {},
        el('td', {}, account(p.account)),
        el('td', { class: 'num' }, amount(p.amount, r.asset)),
        el('td', {}, el('span', { class: 'chip' }, (p.op || 'payment').replace('_', ' '))),
        el('td', {}, forWhat(p)))))));
}

/** The tasks (linked to their evidence) and withdrawals a payout pays. */
function forWhat(p) {
  const tasks = [...new Set(p.tasks || [])];
  const parts = [];
  if (p.assignments.length) {
    parts.push(`${p.assignments.length} result${p.assignments.length === 1 ? '' : 's'}`);
    if (tasks.length) {
      parts.push(': ');
      tasks.slice(0, 12).forEach((t, i) => parts.push(i ? ', ' : '', el('a', { href: `#/tasks/${t}` }, `task ${t}`)));
      if (tasks.length > 12) parts.push(` and ${tasks.length - 12} more`);
    }
  }
  if (p.withdrawals && p.withdrawals.length) {
    parts.push(`${parts.length ? '; ' : ''}withdrawal${p.withdrawals.length === 1 ? '' : 's'} ${p.withdrawals.join(', ')}`);
  }
  return el('span', { class: 'small' }, parts);
}
