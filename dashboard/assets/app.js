// Tether dashboard: a table of live connections, a keepalive timeline with
// one lane per connection, two small charts, the registry's findings and
// the recently closed connections. Data comes from the WebSocket feed
// (api/feed): a "hello" with the whole state, then an "update" twice a
// second. While the feed is down the page polls api/state and keeps trying
// to reconnect. No framework, no build step: plain SVG and ES modules.
// In cluster mode the list also holds the other nodes' connections: they
// get a row (with a node column) but no lane, their keepalive events
// staying on their node.
import { $, ms } from './fmt.js';
import { st, now, local, ghosts, nextColor } from './state.js';
import { renderTimeline } from './timeline.js';
import { renderCount, renderRTT } from './charts.js';
import { renderTable, renderClosed, renderFindings } from './tables.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
// Filters (role, path, state, node) and the token go along to the API and feed.
const query = new URLSearchParams();
for (const k of ['role', 'path', 'state', 'node', 'token']) if (params.get(k)) query.set(k, params.get(k));
const qs = query.toString() ? '?' + query : '';

const KEEP_MS = 16 * 60 * 1000; // longest window plus a margin
// MAX_PEER_MARKS caps the peer's pings kept per lane: a peer pinging every
// 100 ms would otherwise pile up ten thousand over the longest window.
const MAX_PEER_MARKS = 3000;

// ---- data in ----

function apply(msg) {
  st.offset = ms(msg.time) - Date.now();
  st.total = msg.total;
  st.lost = msg.events_lost || 0;
  if (msg.tick_seconds) st.tick = msg.tick_seconds;
  st.conns = msg.connections || [];
  st.node = msg.node || '';
  if (msg.closed) st.closed = msg.closed; // updates carry it when it changed
  st.findings = msg.findings || [];
  // Lanes: this node's live connections, and the closed ones that timed out.
  const keep = new Set(st.conns.filter(local).map((c) => c.id));
  for (const c of ghosts()) keep.add(c.id);
  if (msg.type !== 'update') {
    st.events = new Map();
    for (const [id, list] of Object.entries(msg.history || {})) st.events.set(id, list.map(mark));
    st.series = (msg.series || []).map((s) => ({ t: ms(s.t), n: s.n }));
  } else {
    for (const e of msg.events || []) {
      if (e.kind === 'open' || e.kind === 'close' || !keep.has(e.conn)) continue;
      if (!st.events.has(e.conn)) st.events.set(e.conn, []);
      st.events.get(e.conn).push(mark(e));
    }
    for (const s of msg.series || []) {
      const t = ms(s.t);
      if (!st.series.length || t > st.series[st.series.length - 1].t) st.series.push({ t, n: s.n });
    }
  }
  // A connection without a lane has closed, whether or not we saw the event.
  for (const id of [...st.events.keys()]) if (!keep.has(id)) st.events.delete(id);
  for (const id of keep) if (!st.colors.has(id)) st.colors.set(id, nextColor());
  for (const id of [...st.colors.keys()]) if (!keep.has(id)) st.colors.delete(id);
  prune();
  renderFindings();
  if (pinned && !st.findings.some((f) => (f.conns || []).join(' ') === pinned)) {
    pinned = null; // its finding is gone
    st.highlight = new Set();
  }
  renderTable();
  renderClosed();
  renderAll();
}

function mark(e) {
  return { kind: e.kind, t: ms(e.time), rtt: e.rtt_ms ?? null, iv: e.interval ?? null };
}

function prune() {
  const cut = now() - KEEP_MS;
  for (const list of st.events.values()) {
    let i = 0;
    while (i < list.length && list[i].t < cut) i++;
    if (i) list.splice(0, i);
    let peer = 0;
    for (const m of list) if (m.kind === 'peer_ping') peer++;
    for (let j = 0; peer > MAX_PEER_MARKS && j < list.length;) {
      if (list[j].kind === 'peer_ping') { list.splice(j, 1); peer--; } else j++;
    }
  }
  while (st.series.length && st.series[0].t < cut) st.series.shift();
}

// ---- transport: feed, with polling while it is down ----

let ws = null;
let pollTimer = null;
let retry = 1000;

function setStatus(kind, text) {
  $('status').className = 'status ' + kind;
  $('status-text').textContent = text;
}

function connect() {
  const u = new URL('api/feed' + qs, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  ws = new WebSocket(u);
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'hello') {
      retry = 1000;
      stopPolling();
      setStatus('live', 'live');
    }
    apply(msg);
  };
  ws.onclose = () => {
    ws = null;
    startPolling();
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 15000);
  };
}

function startPolling() {
  if (pollTimer) return;
  setStatus('polling', 'polling (live feed down)');
  const poll = async () => {
    try {
      const r = await fetch('api/state' + qs, { headers: token ? { Authorization: 'Bearer ' + token } : {} });
      if (r.status === 401) {
        setStatus('denied', 'not authorized: open this page with ?token=…');
      } else if (r.ok) {
        apply(await r.json());
        setStatus('polling', 'polling (live feed down)');
      } else {
        setStatus('offline', 'server answered ' + r.status);
      }
    } catch (err) {
      setStatus('offline', 'server unreachable');
    }
  };
  poll();
  pollTimer = setInterval(poll, 1000);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

// ---- the findings point at their connections ----

// Pointing at a finding (hover or focus) highlights its connections' lanes
// and rows; a click pins it until the next click.
let pinned = null;
function highlight(li) {
  st.highlight = new Set(li ? li.dataset.conns.split(' ').filter(Boolean) : []);
  for (const el of $('findings').children) el.classList.toggle('active', el === li);
  renderTable();
  renderTimeline();
}
function pointed(ev) {
  if (!pinned) highlight(ev.target.closest('li.finding'));
}
$('findings').addEventListener('mouseover', pointed);
$('findings').addEventListener('focusin', pointed);
$('findings').addEventListener('mouseleave', () => { if (!pinned) highlight(null); });
$('findings').addEventListener('click', (ev) => {
  const li = ev.target.closest('li.finding');
  pinned = li && li.dataset.conns !== pinned ? li.dataset.conns : null;
  highlight(pinned ? li : null);
});

// ---- drawing ----

function renderAll() {
  renderTimeline();
  renderCount();
  renderRTT();
}

// The timeline slides smoothly between updates, ten frames a second, or
// one when drawing takes long (hundreds of busy lanes); the table's ages
// move with each update.
let last = 0;
let every = 100;
function frame(ts) {
  if (ts - last > every && !document.hidden) {
    last = ts;
    prune();
    renderAll();
    every = performance.now() - ts > 20 ? 1000 : 100;
  }
  requestAnimationFrame(frame);
}

$('window').addEventListener('change', renderAll);
$('link-api').href = 'api/connections' + qs;
$('link-findings').href = 'api/findings' + (token ? '?token=' + encodeURIComponent(token) : '');
$('link-metrics').href = 'metrics' + (token ? '?token=' + encodeURIComponent(token) : '');
connect();
requestAnimationFrame(frame);
