// The keepalive timeline: one lane per live connection of this node, and
// one for each recently closed connection that timed out. A lane shows
// both ends of the keepalive: the connection's own pings (ticks in the
// lane's colour) and pongs (dots) on its line, the peer's pings (small grey
// triangles) on a strip below, and the spans where the application stopped
// reading (amber).
import { $, esc, shortID, pathOnly, clip, fmtSeconds, fmtCadence, fmtSpan, fmtRTT, timeStep, ms } from './fmt.js';
import { st, now, local, ghosts, color } from './state.js';

const OWN = new Set(['ping', 'pong', 'timeout']);

// windowMs is the span of the timeline and the charts. In "auto": ten of
// the slowest cadence among the live lanes, own or peer, between 30 s and
// 15 min, and wide enough to keep the newest timeout of a closed lane in
// view.
export function windowMs() {
  const v = $('window').value;
  if (v !== 'auto') return +v * 1000;
  let slowest = 0;
  for (const c of st.conns.filter(local)) slowest = Math.max(slowest, c.ping_interval || 0, c.peer_ping_interval || 0);
  let span = Math.min(Math.max(slowest * 10, 30), 900) * 1000;
  const g = ghosts()[0];
  if (g) span = Math.max(span, Math.min((now() - ms(g.closed_at)) * 1.15 + 5000, 900000));
  return span;
}

// lanes are this node's live connections, then the closed ones that timed
// out, newest first.
export function lanes() {
  return st.conns.filter(local).map((c) => ({ info: c, ghost: false }))
    .concat(ghosts().map((c) => ({ info: c, ghost: true })));
}

// classify marks each own ping answered, pending or missed: answered when
// the next of the connection's own keepalive events is its pong, missed
// when another ping or a timeout came first or when it has waited longer
// than the timeout. The peer's pings and the stalls do not count.
function classify(list, info, t) {
  const own = list.filter((m) => OWN.has(m.kind));
  const wait = ((info.ping_timeout || info.ping_interval || 20) + 0.5) * 1000;
  return own.map((m, i) => {
    if (m.kind !== 'ping') return { m, cls: m.kind };
    const next = own[i + 1];
    let cls = 'ping pending';
    if (next && next.kind === 'pong') cls = 'ping';
    else if (next || t - m.t > wait) cls = 'ping missed';
    return { m, cls, pong: next && next.kind === 'pong' ? next : null };
  });
}

// stalls pairs each stall with its resume: the spans the application did
// not read, the last open while it still does not.
function stalls(list, info, t) {
  const out = [];
  let from = null;
  for (const m of list) {
    if (m.kind === 'stall') from = m.t;
    else if (m.kind === 'resume') {
      out.push({ from: from ?? (m.iv ? m.t - m.iv * 1000 : m.t), to: m.t });
      from = null;
    }
  }
  if (info.read_stalled_since) out.push({ from: ms(info.read_stalled_since), to: t, open: true });
  else if (from != null) out.push({ from, to: t, open: true });
  return out;
}

function label(lane, c, y, labelW) {
  const fit = (s, px) => esc(clip(s, Math.floor(px / 6.2)));
  const cad = `own ${fmtCadence(c.ping_interval)} · peer ${fmtCadence(c.peer_ping_interval)}`;
  let sub = `${c.role} ${pathOnly(c.path)}`;
  let title = `${c.role} ${c.path}`;
  if (lane.ghost) {
    sub = `closed ${c.close_code ?? ''} ${c.close_reason || ''}`;
    title = `${sub}, after ${fmtSpan(ms(c.closed_at) - ms(c.opened_at))}; ${title}`;
  }
  return `<text class="label" x="20" y="${y + 14}"><tspan class="label-id">${esc(shortID(c.id))}</tspan>` +
    `<tspan class="label-cadence" dx="8">${fit(cad, labelW - 90)}</tspan><title>${esc(c.id)}</title></text>` +
    `<text class="label-sub${lane.ghost ? ' ghost-note' : ''}" x="20" y="${y + 27}">${fit(sub, labelW - 24)}<title>${esc(title)}</title></text>`;
}

// ownMarks draws the connection's pings, pongs and timeouts on its line.
function ownMarks(g, list, c, lane, x, t0, t1, mid, col) {
  for (const { m, cls, pong } of classify(list, c, lane.ghost ? ms(c.closed_at) : t1)) {
    if (m.t < t0) continue;
    const mx = x(m.t).toFixed(1);
    if (cls.startsWith('ping')) {
      if (pong) g.push(`<line class="link" x1="${mx}" x2="${x(pong.t).toFixed(1)}" y1="${mid}" y2="${mid}" stroke="${col}"/>`);
      const stroke = cls === 'ping missed' ? '' : ` stroke="${col}"`;
      g.push(`<line class="mark ${cls}" data-t="${m.t}" x1="${mx}" x2="${mx}" y1="${mid - 8}" y2="${mid + 8}"${stroke}><title>ping ${new Date(m.t).toLocaleTimeString()}${cls === 'ping missed' ? ', no pong' : ''}</title></line>`);
    } else if (cls === 'pong') {
      g.push(`<circle class="mark pong" data-t="${m.t}" data-rtt="${m.rtt}" cx="${mx}" cy="${mid}" r="3.5" fill="${col}"><title>pong, RTT ${fmtRTT(m.rtt)}</title></circle>`);
    } else if (cls === 'timeout') {
      g.push(`<path class="mark timeout" data-t="${m.t}" d="M${mx - 5} ${mid - 5} L${+mx + 5} ${mid + 5} M${+mx + 5} ${mid - 5} L${mx - 5} ${mid + 5}"><title>keepalive timeout</title></path>`);
    }
  }
}

// peerMarks draws the peer's pings as small triangles on the strip below
// the line; so many that they would touch (a fast peer in a long window)
// become one path, which draws as a band and costs one element.
function peerMarks(g, list, x, t0, y, plotW) {
  const peer = list.filter((m) => m.kind === 'peer_ping' && m.t >= t0);
  const tri = (px) => `M${px - 3.5} ${y + 5}L${px} ${y}L${+px + 3.5} ${y + 5}Z`;
  if (peer.length > plotW / 4) {
    g.push(`<path class="peer-band" data-count="${peer.length}" d="${peer.map((m) => tri(x(m.t).toFixed(1))).join('')}"><title>${peer.length} pings from the peer</title></path>`);
    return;
  }
  for (const m of peer) {
    const after = m.iv ? `, ${fmtSeconds(m.iv)} after its previous` : '';
    g.push(`<path class="mark peer" data-t="${m.t}" d="${tri(x(m.t).toFixed(1))}"><title>peer's ping ${new Date(m.t).toLocaleTimeString()}${after}</title></path>`);
  }
}

function stallMarks(g, list, c, x, t0, t1, y, plotW, labelW) {
  for (const s of stalls(list, c, t1)) {
    if (s.to < t0) continue;
    const x0 = Math.max(x(s.from), labelW);
    const w = Math.max(Math.min(x(s.to), labelW + plotW) - x0, 2);
    const what = s.open ? 'not reading' : `not reading for ${fmtSpan(s.to - s.from)}`;
    g.push(`<rect class="mark stall${s.open ? ' open' : ''}" data-t="${s.from}" x="${x0.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="28" rx="2"><title>${what}: the application stopped taking this connection's messages</title></rect>`);
  }
}

export function renderTimeline() {
  const svg = $('timeline');
  const all = lanes();
  $('timeline-title').textContent = st.node ? `Keepalive on ${st.node}` : 'Keepalive';
  $('timeline-empty').hidden = all.length > 0;
  $('timeline-empty').textContent = st.conns.length ? 'No connections on this node; the table lists the other nodes\u2019.' : 'No live connections.';
  const W = svg.clientWidth || 900;
  const labelW = Math.min(300, Math.max(210, W * 0.22));
  const laneH = 34;
  const top = 4;
  const H = top + all.length * laneH + 22;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('height', H);
  if (!all.length) { svg.innerHTML = ''; svg.setAttribute('height', 0); return; }
  const t1 = now();
  const span = windowMs();
  const t0 = t1 - span;
  const plotW = W - labelW - 10;
  const x = (t) => labelW + ((t - t0) / span) * plotW;
  const parts = [];
  const step = timeStep(span / 1000) * 1000;
  for (let g = 0; g <= span; g += step) {
    const gx = x(t1 - g);
    parts.push(`<line class="grid" x1="${gx}" x2="${gx}" y1="${top}" y2="${H - 18}"/>`);
    parts.push(`<text x="${gx}" y="${H - 5}" text-anchor="${g === 0 ? 'end' : 'middle'}">${g === 0 ? 'now' : '−' + fmtSeconds(g / 1000)}</text>`);
  }
  const hl = st.highlight;
  all.forEach((lane, i) => {
    const c = lane.info;
    const y = top + i * laneH;
    const mid = y + 13;
    const col = color(c.id);
    const cls = ['lane', lane.ghost ? 'ghost' : '', hl.size ? (hl.has(c.id) ? 'hl' : 'dim') : ''].filter(Boolean).join(' ');
    const g = [`<g class="${cls}" data-id="${esc(c.id)}" data-interval="${c.ping_interval}" data-peer-interval="${c.peer_ping_interval ?? ''}"${lane.ghost ? ` data-code="${c.close_code ?? ''}"` : ''}>`];
    g.push(`<rect class="lane-bg" x="${labelW}" y="${y + 2}" width="${plotW}" height="${laneH - 4}" rx="3"/>`);
    g.push(`<line class="peer-strip" x1="${labelW}" x2="${labelW + plotW}" y1="${y + 30.5}" y2="${y + 30.5}"/>`);
    g.push(`<rect x="4" y="${y + 5}" width="10" height="10" rx="2" fill="${col}"/>`);
    g.push(label(lane, c, y, labelW));
    const list = (st.events.get(c.id) || []).filter((m) => m.t >= t0 - 60000);
    stallMarks(g, list, c, x, t0, lane.ghost ? ms(c.closed_at) : t1, y, plotW, labelW);
    ownMarks(g, list, c, lane, x, t0, t1, mid, col);
    peerMarks(g, list, x, t0, y + 24, plotW);
    g.push('</g>');
    parts.push(g.join(''));
  });
  parts.push(`<line class="now" x1="${x(t1)}" x2="${x(t1)}" y1="${top}" y2="${H - 18}"/>`);
  svg.innerHTML = parts.join('');
}
