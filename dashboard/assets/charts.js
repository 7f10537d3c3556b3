// The two small charts: live connections over time, and each lane's
// keepalive round-trip times.
import { $, esc, fmtSeconds, niceStep, timeStep } from './fmt.js';
import { st, now, color } from './state.js';
import { windowMs, lanes } from './timeline.js';

function chartFrame(svg, yMax, fmtY) {
  const W = svg.clientWidth || 500;
  const H = svg.clientHeight || 150;
  const m = { l: 58, r: 10, t: 8, b: 20 };
  const t1 = now();
  const span = windowMs();
  const t0 = t1 - span;
  const x = (t) => m.l + ((t - t0) / span) * (W - m.l - m.r);
  const y = (v) => H - m.b - (v / yMax) * (H - m.t - m.b);
  const parts = [];
  const ys = niceStep(yMax, 3);
  for (let v = 0; v <= yMax + 1e-9; v += ys) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${fmtY(v)}</text>`);
  }
  const step = timeStep(span / 1000) * 1000;
  for (let g = 0; g <= span; g += step) {
    parts.push(`<text x="${x(t1 - g)}" y="${H - 5}" text-anchor="${g === 0 ? 'end' : 'middle'}">${g === 0 ? 'now' : '−' + fmtSeconds(g / 1000)}</text>`);
  }
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  return { x, y, t0, t1, parts, W, H, m };
}

export function renderCount() {
  const svg = $('count-chart');
  const pts = st.series;
  const yMax = Math.max(4, ...pts.map((p) => p.n), st.total);
  const f = chartFrame(svg, niceStep(yMax, 3) * Math.ceil(yMax / niceStep(yMax, 3)), (v) => String(Math.round(v)));
  const inView = pts.filter((p) => p.t >= f.t0);
  const before = pts.filter((p) => p.t < f.t0).pop();
  const seq = (before ? [{ t: f.t0, n: before.n }] : []).concat(inView);
  if (seq.length) seq.push({ t: f.t1, n: st.total });
  let d = '';
  seq.forEach((p, i) => {
    const px = Math.max(f.x(p.t), f.m.l).toFixed(1);
    d += i === 0 ? `M${px} ${f.y(p.n)}` : ` H${px} V${f.y(p.n)}`;
  });
  if (d) {
    const first = Math.max(f.x(seq[0].t), f.m.l).toFixed(1);
    f.parts.push(`<path class="area" d="${d} V${f.y(0)} H${first} Z" fill="#1f77b4"/>`);
    f.parts.push(`<path class="series" d="${d}" stroke="#1f77b4"/>`);
  }
  svg.innerHTML = f.parts.join('');
}

export function renderRTT() {
  const svg = $('rtt-chart');
  const t0 = now() - windowMs();
  const lines = [];
  let top = 0;
  for (const lane of lanes()) {
    const pts = (st.events.get(lane.info.id) || []).filter((m) => m.kind === 'pong' && m.t >= t0 && m.rtt != null);
    for (const p of pts) top = Math.max(top, p.rtt);
    lines.push({ id: lane.info.id, pts });
  }
  top = top > 0 ? top * 1.15 : 1;
  const ys = niceStep(top, 3);
  const f = chartFrame(svg, ys * Math.ceil(top / ys), (v) => +v.toFixed(v < 1 ? 2 : 1) + ' ms');
  for (const l of lines) {
    if (!l.pts.length) continue;
    const d = l.pts.map((p, i) => `${i ? 'L' : 'M'}${f.x(p.t).toFixed(1)} ${f.y(p.rtt).toFixed(1)}`).join(' ');
    f.parts.push(`<path class="series" d="${d}" stroke="${color(l.id)}" data-id="${esc(l.id)}"/>`);
    if (l.pts.length < 40) {
      for (const p of l.pts) f.parts.push(`<circle cx="${f.x(p.t).toFixed(1)}" cy="${f.y(p.rtt).toFixed(1)}" r="2" fill="${color(l.id)}"/>`);
    }
  }
  if (!lines.some((l) => l.pts.length)) {
    f.parts.push(`<text x="${f.W / 2}" y="${f.H / 2}" text-anchor="middle">no pongs in this window</text>`);
  }
  svg.innerHTML = f.parts.join('');
}
