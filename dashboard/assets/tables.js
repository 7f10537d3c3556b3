// The tables (live connections, recently closed ones) and the findings in
// the header.
import { $, ms, esc, shortID, fmtSeconds, fmtCadence, fmtSpan, fmtAge, fmtRTT, fmtBytes, fmtCount, cadences } from './fmt.js';
import { st, now, local, color, timedOut } from './state.js';

const swatch = (c) => (local(c) ? `<svg width="9" height="9"><rect width="9" height="9" rx="2" fill="${color(c.id)}"/></svg>`
  : '<svg width="9" height="9"></svg>');

// pongAge is how long ago the last pong came: amber when overdue, red when
// past the timeout.
function pongAge(c, t) {
  const pong = ms(c.last_pong_at);
  const iv = c.ping_interval || 0;
  const to = c.ping_timeout || 0;
  if (pong != null) {
    const a = t - pong;
    if (iv > 0 && a > (iv + to) * 1000) return { cls: 'num bad', text: fmtAge(a) };
    if (iv > 0 && a > iv * 1500 + 1000) return { cls: 'num warn', text: fmtAge(a) };
    return { cls: 'num', text: fmtAge(a) };
  }
  if (iv > 0 && t - ms(c.opened_at) > iv * 1500 + 1000) return { cls: 'num warn', text: 'none yet' };
  return { cls: 'num', text: '—' };
}

// peerCell is the peer's cadence, with its range and count on hover.
function peerCell(c) {
  const n = c.peer_pings || 0;
  let title = n ? `${fmtCount(n)} ping${n === 1 ? '' : 's'} from the peer` : 'the peer has sent no ping';
  if (c.peer_ping_interval != null) {
    title += `; median of the last intervals ${fmtSeconds(c.peer_ping_interval)}, from ${fmtSeconds(c.peer_ping_interval_min)} to ${fmtSeconds(c.peer_ping_interval_max)}`;
  }
  return `<td class="num" data-field="peer" title="${esc(title)}">${fmtCadence(c.peer_ping_interval)}</td>`;
}

// stateCell says "not reading" (amber) while the application has stopped
// taking the connection's messages.
function stateCell(c) {
  if (!c.read_stalled_since) return `<td data-field="state">${esc(c.state)}</td>`;
  const title = `not reading since ${new Date(ms(c.read_stalled_since)).toLocaleTimeString()}: ` +
    `${fmtCount(c.queued_messages || 0)} messages (${fmtBytes(c.queued_bytes || 0)}) wait for the application; ` +
    "keepalive's ping timeout is suspended meanwhile";
  return `<td class="warn" data-field="state" title="${esc(title)}">not reading</td>`;
}

export function renderTable() {
  const t = now();
  // The node column shows in cluster mode only.
  const withNode = st.conns.some((c) => c.node);
  $('col-node').hidden = !withNode;
  const hl = st.highlight;
  const rows = st.conns.map((c) => {
    const age = pongAge(c, t);
    const iv = c.ping_interval || 0;
    const to = c.ping_timeout || 0;
    const interval = iv ? fmtSeconds(iv) + (to ? ' / ' + fmtSeconds(to) : ' / none') : 'off';
    const cls = [local(c) ? '' : 'remote', c.read_stalled_since ? 'stalled' : '', hl.has(c.id) ? 'hl' : ''].filter(Boolean).join(' ');
    return `<tr data-id="${esc(c.id)}"${cls ? ` class="${cls}"` : ''}>` +
      `<td class="id" title="${esc(c.id)}">${swatch(c)} ${esc(shortID(c.id))}</td>` +
      (withNode ? `<td class="node">${esc(c.node || '')}</td>` : '') +
      `<td>${esc(c.role)}</td>` +
      `<td>${esc(c.remote)}</td>` +
      `<td class="path" title="${esc(c.path)}">${esc(c.path)}</td>` +
      stateCell(c) +
      `<td class="num" data-field="own">${interval}</td>` +
      peerCell(c) +
      `<td class="${age.cls}" data-field="pong-age">${age.text}</td>` +
      `<td class="num">${fmtRTT(c.rtt_ms)}</td>` +
      `<td class="num">${fmtCount(c.messages_in)} / ${fmtCount(c.messages_out)}</td>` +
      `<td class="num">${fmtBytes(c.bytes_in)} / ${fmtBytes(c.bytes_out)}</td>` +
      '</tr>';
  });
  document.querySelector('#conns tbody').innerHTML = rows.join('') ||
    `<tr><td colspan="${withNode ? 12 : 11}" class="muted">No live connections.</td></tr>`;
  const more = $('more');
  more.hidden = st.total <= st.conns.length;
  more.textContent = `Showing the oldest ${st.conns.length} of ${fmtCount(st.total)} connections; ` +
    'narrow them with ?role=, ?path= or ?state= in the address.';
  renderSummary();
}

function renderSummary() {
  const own = new Set(st.conns.filter((c) => c.ping_interval > 0).map((c) => c.ping_interval));
  const peer = cadences(st.conns.filter((c) => c.peer_ping_interval > 0).map((c) => c.peer_ping_interval));
  const nodes = new Set(st.conns.filter((c) => c.node).map((c) => c.node));
  if (st.node) nodes.add(st.node);
  $('summary').textContent = `${fmtCount(st.total)} live connection${st.total === 1 ? '' : 's'}` +
    (nodes.size ? ` on ${nodes.size} node${nodes.size === 1 ? '' : 's'} (this one: ${st.node || '?'})` : '') +
    (own.size > 1 ? ` · ${own.size} different ping intervals` : '') +
    (peer > 1 ? ` · peers ping at ${peer} different intervals` : '');
  const lost = $('lost');
  lost.hidden = !st.lost;
  lost.textContent = `${fmtCount(st.lost)} keepalive events lost by the dashboard; gaps in the timeline are not missed pongs.`;
}

// renderClosed lists the recently closed connections the server keeps,
// newest first; those that failed a keepalive ping in red.
export function renderClosed() {
  const t = now();
  $('closed-section').hidden = !st.closed.length;
  $('closed-title').textContent = `Recently closed (${st.closed.length})`;
  const rows = st.closed.map((c) => {
    const closedAt = ms(c.closed_at);
    const failed = timedOut(c);
    const code = c.close_code ?? '—';
    const who = c.close_initiator === 'local' ? 'this side' : c.close_initiator === 'peer' ? 'the peer' : '—';
    return `<tr data-id="${esc(c.id)}" data-code="${esc(code)}"${failed ? ' class="failed"' : ''}>` +
      `<td class="id" title="${esc(c.id)}">${esc(shortID(c.id))}</td>` +
      `<td>${esc(c.role)}</td>` +
      `<td>${esc(c.remote)}</td>` +
      `<td class="path" title="${esc(c.path)}">${esc(c.path)}</td>` +
      `<td class="num" title="${esc(c.closed_at)}">${fmtAge(t - closedAt)}</td>` +
      `<td class="num">${fmtSpan(closedAt - ms(c.opened_at))}</td>` +
      `<td class="num code" data-field="code">${esc(code)}</td>` +
      `<td class="reason" title="${esc(c.close_reason || '')}">${esc(c.close_reason || '')}</td>` +
      `<td>${who}</td>` +
      `<td class="num">${fmtCadence(c.ping_interval)} / ${fmtCadence(c.peer_ping_interval)}</td>` +
      `<td class="num">${fmtCount(c.messages_in)} / ${fmtCount(c.messages_out)}</td>` +
      '</tr>';
  });
  document.querySelector('#closed tbody').innerHTML = rows.join('');
}

let shownFindings = '';

// renderFindings shows the registry's findings in the header, warnings
// first. It redraws only when they change, so the one pointed at stays so.
export function renderFindings() {
  const key = JSON.stringify(st.findings.map((f) => [f.kind, f.severity, f.message, f.conns]));
  if (key === shownFindings) return;
  shownFindings = key;
  const ul = $('findings');
  ul.hidden = !st.findings.length;
  ul.innerHTML = st.findings.map((f) => {
    const conns = (f.conns || []).map((id, i) => {
      const iv = f.ping_intervals && f.ping_intervals[i];
      return esc(shortID(id)) + (iv != null ? ` (${fmtCadence(iv)})` : '');
    }).join(', ');
    const more = f.count > (f.conns || []).length ? ` and ${fmtCount(f.count - f.conns.length)} more` : '';
    return `<li class="finding ${esc(f.severity)}" data-kind="${esc(f.kind)}" data-conns="${esc((f.conns || []).join(' '))}" tabindex="0" title="${esc(f.hint || '')}">` +
      `<span class="sev">${esc(f.severity)}</span> <span class="msg">${esc(f.message)}</span>` +
      (conns ? ` <span class="conns">connections ${conns}${more}</span>` : '') + '</li>';
  }).join('');
}
