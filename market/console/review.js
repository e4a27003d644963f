// Human review (#/review), for an account the operator has marked a
// verified reviewer. Every request is signed in this page with the pasted
// key (WebCrypto Ed25519, as the bid page signs): GET /v1/reviews/next
// gives a task the workers did not agree on (204: nothing waits), the
// input image comes from GET /v1/inputs/{sha256}, and the answer, a
// candidate's detections (picked as they are, or corrected), is posted
// signed to POST /v1/reviews/{review}: the signed request is the review's
// public evidence.
//
// The page: the ticket, the image with each candidate's boxes (dashed, a
// colour each) and the answer being made (solid green), one "Pick" button
// per candidate, the answer as a list (each box removable) and as JSON to
// edit, and "Sign and submit"; then the task's status and "Next".

import { el, fill, errorBox, amount, badge, shortHash, when, ApiError } from './util.js';
import { drawBoxes, extentOf, layerToggles, colorFor, decodeImage, CONSENSUS_COLOR } from './draw.js';

/** How long one wait for work lasts (the market allows up to 60 s). */
const WAIT_MS = 55000;

export async function reviewPage(ctx) {
  const { view, session } = ctx;
  const head = el('div', { class: 'pagehead' }, el('h1', { id: 'review-title' }, 'Review'),
    el('p', { class: 'muted' }, 'Decide a task the workers did not agree on: pick the candidate that is right, '
      + 'correct it if needed, and sign your answer with your reviewer key. Two agreeing reviews decide the task.'));
  if (!session.signer) {
    fill(view, head, ctx.keyForm('Paste the seed of an account the market\u2019s operator has marked a verified reviewer.',
      () => reviewPage(ctx)));
    return null;
  }
  const signer = session.signer;
  const status = el('div', { id: 'review-status' });
  const body = el('div', { id: 'review-body' });
  fill(view, head,
    el('p', { class: 'reviewer' }, 'Reviewing as ', el('span', { class: 'mono break', id: 'review-account' }, signer.account)),
    status, body);

  const abort = new AbortController();

  /** A request signed with the reviewer's key; the raw Response. */
  const signed = async (method, path, bytes) => {
    const headers = await signer.headers(method, path, bytes || new Uint8Array(0));
    if (bytes) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, { method, headers, body: bytes || undefined, signal: abort.signal, cache: 'no-store' });
    if (r.ok) return r;
    let code = `http_${r.status}`;
    let message = r.statusText || 'request failed';
    try {
      const err = (await r.json()).error;
      code = err.code;
      message = err.message;
    } catch (_) {
      // Not the market's error body: keep the status line.
    }
    throw new ApiError(r.status, code, message);
  };

  /** Show why the market refused, in words for a reviewer. */
  const refused = (err, what) => {
    if (abort.signal.aborted || !ctx.current()) return;
    const next = el('button', { type: 'button', id: 'review-next', onclick: () => load() }, 'Next');
    let box;
    if (err instanceof ApiError && err.status === 403) {
      const notReviewer = err.code === 'not_a_reviewer' || what === 'ticket';
      box = el('div', { class: 'error', role: 'alert', id: 'review-error', 'data-code': err.code },
        el('strong', {}, notReviewer
          ? `${signer.account} is not a verified reviewer.`
          : 'The market refused this answer.'), ' ',
        notReviewer
          ? 'Only accounts the market\u2019s operator has marked verified may review (tally admin reviewers add G\u2026). '
          : '',
        el('span', { class: 'muted' }, `${err.message} (${err.code})`),
        notReviewer ? null : el('div', { class: 'actions' }, next));
    } else if (err instanceof ApiError && err.status === 409) {
      box = el('div', { class: 'note', role: 'alert', id: 'review-error', 'data-code': err.code },
        el('strong', {}, 'This review can no longer be answered: '),
        'it was answered already, or the task was decided meanwhile. ',
        el('span', { class: 'muted' }, `${err.message} (${err.code})`),
        el('div', { class: 'actions' }, next));
    } else {
      box = el('div', { id: 'review-error', 'data-code': err && err.code || 'error' },
        errorBox(err, what === 'ticket' ? 'Could not get a task to review:' : 'Could not submit the review:'),
        el('div', { class: 'actions' }, el('button', { type: 'button', id: 'review-retry', onclick: () => load() }, 'Try again')));
    }
    fill(status, box);
  };

  // Each load is numbered: a long poll that ends after a newer load began
  // (the reviewer pressed "Check again") is dropped.
  let loads = 0;
  const load = async () => {
    const mine = ++loads;
    fill(status, el('p', { class: 'muted', id: 'review-loading' }, 'Asking the market for a task to review\u2026'));
    fill(body);
    let ticket;
    try {
      let r = await signed('GET', '/v1/reviews/next');
      // Nothing now: say so, then wait for work (the market answers as soon
      // as a task wants a reviewer), unless this is a still snapshot.
      while (r.status === 204) {
        if (!ctx.current() || mine !== loads) return;
        fill(status, el('div', { class: 'note', id: 'review-empty' },
          el('strong', {}, 'Nothing to review right now. '),
          'No task the workers disagreed on waits for a reviewer. ',
          session.still ? null : el('span', { class: 'muted', id: 'review-waiting' }, 'Waiting for one\u2026 '),
          el('button', { type: 'button', id: 'review-again', onclick: () => load() }, 'Check again')));
        if (session.still) return;
        r = await signed('GET', `/v1/reviews/next?wait_ms=${WAIT_MS}`);
      }
      if (!ctx.current() || mine !== loads) return;
      ticket = await r.json();
    } catch (err) {
      refused(err, 'ticket');
      return;
    }
    let image;
    try {
      image = await decodeImage(new Uint8Array(await (await signed('GET', `/v1/inputs/${ticket.input}`)).arrayBuffer()));
    } catch (err) {
      if (abort.signal.aborted) return;
      image = err;
    }
    if (!ctx.current()) return;
    fill(status);
    showTicket(ticket, image);
  };

  const showTicket = (ticket, image) => {
    const candidates = ticket.candidates.map((c, i) => ({ ...c, color: colorFor(i) }));
    // The answer being made: null until a candidate is picked.
    let answer = null;
    const layers = candidates.map((c, i) => ({
      key: `c${i}`, name: `Candidate ${i + 1}`, detections: c.detections, color: c.color, visible: true,
    }));
    const answerLayer = { key: 'answer', name: 'Your answer', detections: [], color: CONSENSUS_COLOR, consensus: true, visible: true };
    layers.push(answerLayer);

    const canvas = el('canvas', { class: 'boxes', id: 'review-canvas', 'data-image': image instanceof Error ? 'blank' : 'input' });
    const redraw = () => {
      answerLayer.detections = answer || [];
      if (image instanceof Error) drawBoxes(canvas, { size: extentOf(layers), layers });
      else drawBoxes(canvas, { image, layers });
    };

    const json = el('textarea', {
      id: 'review-json', class: 'mono', rows: 10, wrap: 'off', spellcheck: 'false', autocomplete: 'off', disabled: true,
      'aria-label': 'The answer\u2019s detections as JSON',
      placeholder: 'Pick a candidate first.',
    });
    const jsonMsg = el('p', { class: 'small muted', id: 'review-json-msg' }, 'Pick a candidate: its detections appear here to correct.');
    const list = el('ul', { class: 'dets answer', id: 'review-answer' });
    const submit = el('button', { type: 'button', id: 'review-submit', disabled: true }, 'Sign and submit');
    const picked = el('p', { class: 'muted small picked', id: 'review-picked' }, 'Nothing picked yet.');

    const setAnswer = (dets, { rewrite = true, from = null } = {}) => {
      answer = dets;
      if (rewrite) json.value = asText(dets);
      json.disabled = false;
      submit.disabled = false;
      fill(jsonMsg, `${dets.length} detection${dets.length === 1 ? '' : 's'}; `
        + 'remove boxes below or edit the JSON (box = [x1, y1, x2, y2] in image pixels).');
      jsonMsg.className = 'small muted';
      if (from !== null) fill(picked, `Candidate ${from + 1}`, answerChanged(dets, candidates[from]) ? ', corrected.' : ', as it is.');
      fill(list, dets.length
        ? dets.map((d, i) => el('li', { class: 'det', 'data-label': d.label },
          el('strong', {}, d.label), ` ${Number(d.score).toFixed(2)} `,
          el('span', { class: 'mono muted small' }, `[${d.box.map((v) => Math.round(v)).join(', ')}]`), ' ',
          el('button', {
            type: 'button', class: 'link', 'data-remove': i, title: 'Leave this box out of the answer',
            onclick: () => {
              const rest = answer.filter((_, j) => j !== i);
              fill(picked, picked.textContent.replace(/, as it is\.$/, ', corrected.'));
              setAnswer(rest);
            },
          }, 'remove')))
        : el('li', { class: 'muted' }, 'No detections: the answer says the image has nothing to detect.'));
      if (from !== null) {
        for (const b of cards.querySelectorAll('button.pick')) b.classList.toggle('chosen', Number(b.dataset.candidate) === from);
      }
      redraw();
    };

    json.addEventListener('input', () => {
      try {
        const dets = parseDetections(json.value);
        fill(picked, 'Edited by hand.');
        for (const b of cards.querySelectorAll('button.pick')) b.classList.remove('chosen');
        setAnswer(dets, { rewrite: false });
      } catch (err) {
        answer = null;
        submit.disabled = true;
        fill(jsonMsg, `Not a valid answer yet: ${err.message}`);
        jsonMsg.className = 'small error-text';
        redraw();
      }
    });

    const cards = el('div', { class: 'candidates', id: 'review-candidates' },
      candidates.length
        ? candidates.map((c, i) => el('div', { class: 'candidate', 'data-candidate': i },
          el('div', { class: 'rechead' },
            el('span', { class: 'swatch', style: { background: c.color } }),
            el('strong', {}, `Candidate ${i + 1}`),
            el('span', { class: 'muted small support' },
              `supported by ${c.assignments.length} result${c.assignments.length === 1 ? '' : 's'}`),
            el('button', {
              type: 'button', class: 'pick', id: `pick-${i}`, 'data-candidate': i,
              onclick: () => setAnswer(c.detections.map(clean), { from: i }),
            }, 'Pick')),
          el('div', { class: 'labels' }, c.detections.length
            ? c.detections.map((d) => el('span', { class: 'chip', 'data-label': d.label }, `${d.label} ${Number(d.score).toFixed(2)}`))
            : el('span', { class: 'muted small' }, 'nothing detected')),
          el('div', { class: 'muted small' }, 'results ', c.assignments.map((a) => `#${a}`).join(', '))))
        : el('p', { class: 'muted' }, 'No usable candidate: write the answer as JSON below.'));

    submit.addEventListener('click', async () => {
      let dets;
      try {
        dets = parseDetections(json.value);
      } catch (err) {
        fill(jsonMsg, `Not a valid answer: ${err.message}`);
        jsonMsg.className = 'small error-text';
        return;
      }
      submit.disabled = true;
      const was = submit.textContent;
      submit.textContent = 'Signing\u2026';
      const path = `/v1/reviews/${ticket.review}`;
      const bytes = new TextEncoder().encode(JSON.stringify({ detections: dets }));
      try {
        const outcome = await (await signed('POST', path, bytes)).json();
        if (!ctx.current()) return;
        for (const b of body.querySelectorAll('button, textarea')) b.disabled = true;
        submit.textContent = 'Signed and sent';
        fill(status, outcomeBox(outcome, () => load()));
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          // This review is over: nothing here can be sent any more.
          for (const b of body.querySelectorAll('button, textarea')) b.disabled = true;
          submit.textContent = 'Not sent';
        } else {
          submit.textContent = was;
          submit.disabled = false;
        }
        refused(err, 'answer');
      }
    });

    if (!candidates.length) setAnswer([]);
    else redraw();
    if (ctx.current()) {
      fill(body, el('section', { class: 'card', id: 'review-ticket', 'data-review': ticket.review, 'data-task': ticket.task },
        el('div', { class: 'rechead' },
          el('h2', {}, `Review ${ticket.review}`),
          el('span', {}, 'task ', el('a', { href: `#/tasks/${ticket.task}`, id: 'review-task' }, String(ticket.task))),
          el('span', { class: 'chip', id: 'review-price', title: `${ticket.price} stroops` }, `${amount(ticket.price, null)} if your review agrees with the decision`),
          el('span', { class: 'muted small' }, 'answer by ', when(ticket.lease_expires_at)),
          el('span', { class: 'muted small' }, 'model ', shortHash(ticket.model, 12), ' · input ', shortHash(ticket.input, 12))),
        el('div', { class: 'reviewbody' },
          el('div', { class: 'boxview' },
            image instanceof Error ? errorBox(image, 'Could not load the image; the boxes are drawn on a blank canvas:') : null,
            layerToggles(layers, redraw),
            el('div', { class: 'canvaswrap' }, canvas)),
          el('div', { class: 'reviewside' },
            el('h3', {}, `Candidates (${candidates.length})`),
            cards,
            el('h3', {}, 'Your answer'),
            picked,
            list,
            json,
            jsonMsg,
            el('div', { class: 'actions' }, submit,
              el('span', { class: 'muted small' }, 'Signed in this page with your key; the signed answer is public evidence.'))))));
    }
  };

  await load();
  return () => abort.abort();
}

/** The market's answer to a review. */
function outcomeBox(o, next) {
  const s = o.task_status;
  const why = {
    review: 'The task waits for another reviewer to agree (two agreeing reviews decide).',
    verified: 'The reviews agreed: the task is decided with their answer.',
    failed: 'The reviews did not agree within the reviews allowed: the task failed.',
  }[s] || '';
  return el('div', { class: `verdict ${s === 'failed' ? 'bad' : 'ok'}`, id: 'review-outcome', 'data-status': s },
    el('strong', {}, `Review ${o.review} signed and recorded. `),
    'Task ', el('a', { href: `#/tasks/${o.task}` }, String(o.task)), ' is now ',
    el('span', { id: 'review-task-status' }, badge(s)), '.',
    why ? el('p', {}, why) : null,
    el('div', { class: 'actions' }, el('button', { type: 'button', id: 'review-next', onclick: next }, 'Next')));
}

/** Detections as JSON to edit: one a line (the box on its own). */
function asText(dets) {
  const one = (d) => `  {"class_id": ${d.class_id}, "label": ${JSON.stringify(d.label)}, "score": ${JSON.stringify(d.score)},\n`
    + `   "box": [${d.box.map((v) => JSON.stringify(v)).join(', ')}]}`;
  return dets.length ? `[\n${dets.map(one).join(',\n')}\n]` : '[]';
}

/** Only the fields of a detection, in the wire's order. */
function clean(d) {
  return { class_id: d.class_id, label: d.label, score: d.score, box: d.box };
}

/** The textarea's text as detections, checked; throws what is wrong. */
function parseDetections(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON (${e.message})`);
  }
  if (v && !Array.isArray(v) && Array.isArray(v.detections)) v = v.detections;
  if (!Array.isArray(v)) throw new Error('the answer is a JSON array of detections');
  return v.map((d, i) => {
    const at = `detection ${i + 1}`;
    if (!d || typeof d !== 'object') throw new Error(`${at} is not an object`);
    if (!Number.isInteger(d.class_id) || d.class_id < 0) throw new Error(`${at}: class_id is a whole number \u2265 0`);
    if (typeof d.label !== 'string' || !d.label) throw new Error(`${at}: label is a name`);
    if (typeof d.score !== 'number' || !Number.isFinite(d.score)) throw new Error(`${at}: score is a number`);
    const b = d.box;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new Error(`${at}: box is [x1, y1, x2, y2], four numbers`);
    }
    if (b[2] < b[0] || b[3] < b[1]) throw new Error(`${at}: the box's x2 \u2265 x1 and y2 \u2265 y1`);
    return clean(d);
  });
}

/** Whether `dets` differ from the candidate's detections. */
function answerChanged(dets, c) {
  return JSON.stringify(dets) !== JSON.stringify(c.detections.map(clean));
}

