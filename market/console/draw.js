// Small charts (inline SVG) and detection boxes (canvas).

import { el } from './util.js';

/** Horizontal bars: `[{label, value, title}]`. */
export function bars(items, { unit = '', width = 420, empty = 'nothing yet' } = {}) {
  if (!items.length) return el('p', { class: 'muted' }, empty);
  const row = 24;
  const labelW = 120;
  const max = Math.max(1, ...items.map((i) => i.value));
  const h = items.length * row + 4;
  return el('svg', { class: 'chart', viewBox: `0 0 ${width} ${h}`, width, height: h, role: 'img' },
    items.map((item, i) => {
      const y = i * row + 2;
      const w = Math.max(2, ((width - labelW - 60) * item.value) / max);
      return el('g', {},
        el('title', {}, item.title || `${item.label}: ${item.value}${unit}`),
        el('text', { x: labelW - 8, y: y + 15, 'text-anchor': 'end', class: 'axis' }, item.label),
        el('rect', { x: labelW, y: y + 3, width: w, height: row - 8, rx: 3, class: 'bar' }),
        el('text', { x: labelW + w + 6, y: y + 15, class: 'val' }, `${item.value}${unit}`));
    }));
}

/** A line over `values` with the last value and the range labelled. */
export function sparkline(values, { width = 420, height = 90, format = String, empty = 'nothing yet' } = {}) {
  if (!values.length) return el('p', { class: 'muted' }, empty);
  const pad = 8;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || 1;
  // `values` oldest first. The labels sit in a band below the plot, so no
  // line or dot ever runs under them.
  const x = (i) => pad + (values.length === 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (values.length - 1));
  const y = (v) => height - pad - ((v - min) * (height - 2 * pad)) / span;
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const last = values[values.length - 1];
  const band = 18;
  return el('svg', { class: 'chart', viewBox: `0 0 ${width} ${height + band}`, width, height: height + band, role: 'img', 'data-last': last },
    el('title', {}, `${values.length} prices, oldest to newest, ${format(min)} to ${format(max)}`),
    el('line', { x1: 0, y1: height, x2: width, y2: height, class: 'base' }),
    el('polyline', { points: pts, class: 'line' }),
    values.map((v, i) => el('circle', { cx: x(i), cy: y(v), r: 2.5, class: 'dot' }, el('title', {}, format(v)))),
    el('text', { x: 2, y: height + 14, class: 'axis' }, min === max ? `all ${format(min)}` : `min ${format(min)} \u00b7 max ${format(max)}`),
    el('text', { x: width - 2, y: height + 14, 'text-anchor': 'end', class: 'val' }, `last ${format(last)}`));
}

/** Columns per second: `counts[i]` events in second `i`, oldest first. */
export function columns(counts, { width = 420, height = 90 } = {}) {
  const max = Math.max(1, ...counts);
  const w = width / counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  return el('svg', { class: 'chart', viewBox: `0 0 ${width} ${height + 16}`, width, height: height + 16, role: 'img' },
    el('title', {}, `${total} verified in the last ${counts.length} s`),
    el('line', { x1: 0, y1: height, x2: width, y2: height, class: 'base' }),
    counts.map((c, i) => (c > 0
      ? el('rect', { x: i * w + 1, y: height - (c * (height - 14)) / max, width: Math.max(1, w - 2), height: (c * (height - 14)) / max, class: 'bar' },
        el('title', {}, `${c} verified`))
      : null)),
    el('text', { x: 2, y: height + 13, class: 'axis' }, `-${counts.length}s`),
    el('text', { x: width - 2, y: height + 13, 'text-anchor': 'end', class: 'axis' }, 'now'),
    el('text', { x: width - 2, y: 12, 'text-anchor': 'end', class: 'val' }, `peak ${max}/s`));
}

// Distinct colours for workers' overlays; the consensus has its own.
const PALETTE = ['#2563eb', '#db2777', '#7c3aed', '#0891b2', '#ea580c', '#4d7c0f', '#9333ea', '#be123c'];
export const CONSENSUS_COLOR = '#16a34a';

export function colorFor(i) {
  return PALETTE[i % PALETTE.length];
}

/** The smallest canvas holding every box, when the image is not ours to see. */
export function extentOf(layers) {
  let w = 1;
  let h = 1;
  for (const l of layers) {
    for (const d of l.detections) {
      w = Math.max(w, d.box[2]);
      h = Math.max(h, d.box[3]);
    }
  }
  const round = (v) => Math.ceil(v / 32) * 32;
  return { width: round(w), height: round(h) };
}

/**
 * Draw `layers` (`{detections, color, consensus, visible}`) over `image`
 * (a decoded <img> or ImageBitmap) or over a blank area of `size`, scaled to `maxWidth`.
 * Box coordinates are image pixels: `[x1, y1, x2, y2]`.
 */
export function drawBoxes(canvas, { image = null, size, layers, maxWidth = 860 }) {
  const W = image ? image.naturalWidth || image.width : size.width;
  const H = image ? image.naturalHeight || image.height : size.height;
  const scale = Math.min(1, maxWidth / W) || 1;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(W * scale * ratio);
  canvas.height = Math.round(H * scale * ratio);
  canvas.style.width = `${Math.round(W * scale)}px`;
  canvas.style.height = `${Math.round(H * scale)}px`;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(scale * ratio, 0, 0, scale * ratio, 0, 0);
  if (image) {
    ctx.drawImage(image, 0, 0);
  } else {
    ctx.fillStyle = '#f4f5f7';
    ctx.fillRect(0, 0, W, H);
    ctx.strokeStyle = '#e2e5ea';
    ctx.lineWidth = 1 / scale;
    for (let gx = 0; gx < W; gx += 64) line(ctx, gx, 0, gx, H);
    for (let gy = 0; gy < H; gy += 64) line(ctx, 0, gy, W, gy);
  }
  // Workers first, the consensus on top; then every tag over all the
  // boxes, the consensus's first, none over another (`data-tags` keeps
  // where they went, in image pixels).
  const order = [...layers].sort((a, b) => Number(!!a.consensus) - Number(!!b.consensus));
  const shown = order.filter((l) => l.visible);
  for (const layer of shown) {
    for (const d of layer.detections) box(ctx, d, layer, scale);
  }
  const placed = [];
  for (const layer of [...shown].reverse()) {
    for (const d of layer.detections) placed.push(tag(ctx, d, layer, scale, placed, W, H));
  }
  canvas.setAttribute('data-tags', JSON.stringify(placed.map((r) => r.map((v) => Math.round(v * 10) / 10))));
}

/** Whether rectangles `a` and `b` (`[x1, y1, x2, y2]`) overlap. */
function overlaps(a, b) {
  return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

/** The box's tag where it hides no tag in `placed`: above its top-left
 * corner, else inside it, else below the box, else further down. */
function tag(ctx, d, layer, scale, placed, W, H) {
  const [x1, y1, , y2] = d.box;
  const px = 1 / scale;
  const text = `${d.label} ${Number(d.score).toFixed(2)}`;
  ctx.save();
  ctx.font = `${(layer.consensus ? 14 : 12) * px}px system-ui, sans-serif`;
  const tw = ctx.measureText(text).width + 8 * px;
  const th = (layer.consensus ? 19 : 16) * px;
  const x = Math.max(0, Math.min(x1, W - tw));
  const fit = (y) => Math.max(0, Math.min(y, H - th));
  const tries = [y1 - th, y1, y2].filter((y) => y >= 0 && y + th <= H);
  for (let k = 1; k <= 8; k++) tries.push(Math.max(0, y1) + k * th);
  let rect = null;
  for (const y of tries) {
    const r = [x, fit(y), x + tw, fit(y) + th];
    if (!placed.some((p) => overlaps(p, r))) { rect = r; break; }
  }
  if (!rect) rect = [x, fit(y1 - th), x + tw, fit(y1 - th) + th];
  ctx.fillStyle = layer.color;
  ctx.fillRect(rect[0], rect[1], tw, th);
  ctx.fillStyle = '#fff';
  ctx.fillText(text, rect[0] + 4 * px, rect[3] - 5 * px);
  ctx.restore();
  return rect;
}

function line(ctx, x1, y1, x2, y2) {
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
}

function box(ctx, d, layer, scale) {
  const [x1, y1, x2, y2] = d.box;
  const px = 1 / scale;
  ctx.save();
  ctx.strokeStyle = layer.color;
  ctx.lineWidth = (layer.consensus ? 3.5 : 2) * px;
  ctx.setLineDash(layer.consensus ? [] : [6 * px, 4 * px]);
  if (layer.consensus) {
    ctx.fillStyle = 'rgba(22, 163, 74, 0.12)';
    ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
  }
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  ctx.restore();
}

/** Checkboxes toggling each layer; `onchange` redraws. */
export function layerToggles(layers, onchange) {
  return el('div', { class: 'toggles' }, layers.map((layer) => el('label', { class: 'toggle' },
    el('input', {
      type: 'checkbox',
      checked: layer.visible,
      'data-layer': layer.key,
      onchange: (e) => {
        layer.visible = e.target.checked;
        onchange();
      },
    }),
    el('span', { class: 'swatch', style: { background: layer.color } }),
    layer.name)));
}

/** Image bytes to a drawable image, through a blob: URL (an <img> load,
 *  which a headless browser's virtual clock waits for). */
export function decodeImage(bytes) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([bytes]));
    const img = new Image();
    img.onload = () => {
      URL.revokeObjectURL(url);
      resolve(img);
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error('the input is not an image the browser can show'));
    };
    img.src = url;
  });
}
