// Tether dashboard: a table of live connections, a keepalive timeline with
// one lane per connection, and two small charts. Data comes from the
// WebSocket feed (api/feed): a "hello" with the whole state, then an
// "update" twice a second. While the feed is down the page polls api/state
// and keeps trying to reconnect. No framework, no build step: plain SVG.
// In cluster mode the list also holds the other nodes' connections: they
// get a row (with a node column) but no lane, their keepalive events
// staying on their node.
'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || '';
  // Filters (role, path, state) and the token go along to the API and feed.
  const query = new URLSearchParams();
  for (const k of ['role', 'path', 'state', 'node', 'token']) if (params.get(k)) query.set(k, params.get(k));
  const qs = query.toString() ? '?' + query : '';

  const PALETTE = ['#1f77b4', '#e08a0b', '#2a9d6f', '#8e5bb5', '#3aa3c9', '#8c6d31', '#5f7a8a', '#b5568c'];
  const KEEP_MS = 16 * 60 * 1000; // longest window plus a margin
  const GHOST_MS = 60 * 1000; // how long a lane stays after a keepalive timeout

  const st = {
    conns: [], // live connections, this node's oldest first, then the other nodes' (Contract 2 objects)
    node: '', // this node's name, in cluster mode
    events: new Map(), // id -> keepalive events, oldest first
    ghosts: new Map(), // id -> {info, closedAt, code, reason}: timed-out lanes kept a while
    colors: new Map(), // id -> palette index
    series: [], // {t, n}
    total: 0,
    lost: 0,
    offset: 0, // server clock minus ours, ms
    tick: 0.5,
  };

  const $ = (id) => document.getElementById(id);
  const now = () => Date.now() + st.offset;
  const ms = (s) => (s == null ? null : Date.parse(s));
  // local tells this node's connections, which have keepalive lanes, from
  // the other nodes'.
  const local = (c) => !c.node || c.node === st.node;

  // ---- data in ----

  function apply(msg) {
    st.offset = ms(msg.time) - Date.now();
    st.total = msg.total;
    st.lost = msg.events_lost || 0;
    if (msg.tick_seconds) st.tick = msg.tick_seconds;
    st.conns = msg.connections || [];
    st.node = msg.node || '';
    const live = new Set(st.conns.map((c) => c.id));
    if (msg.type !== 'update') {
      const kept = new Map([...st.ghosts.keys()].map((id) => [id, st.events.get(id) || []]));
      st.events = kept;
      for (const [id, list] of Object.entries(msg.history || {})) st.events.set(id, list.map(mark));
      st.series = (msg.series || []).map((s) => ({ t: ms(s.t), n: s.n }));
    } else {
      for (const e of msg.events || []) {
        if (e.kind === 'close') {
          closed(e);
          continue;
        }
        if (e.kind === 'open' || (!live.has(e.conn) && !st.events.has(e.conn))) continue;
        if (!st.events.has(e.conn)) st.events.set(e.conn, []);
        st.events.get(e.conn).push(mark(e));
      }
      for (const s of msg.series || []) {
        const t = ms(s.t);
        if (!st.series.length || t > st.series[st.series.length - 1].t) st.series.push({ t, n: s.n });
      }
    }
    // A connection no longer listed has closed, whether or not we saw the event.
    for (const id of [...st.events.keys()]) if (!live.has(id) && !st.ghosts.has(id)) st.events.delete(id);
    for (const c of st.conns) if (local(c) && !st.colors.has(c.id)) st.colors.set(c.id, nextColor());
    for (const id of [...st.colors.keys()]) if (!live.has(id) && !st.ghosts.has(id)) st.colors.delete(id);
    for (const id of [...lastInfo.keys()]) if (!live.has(id) && !st.ghosts.has(id)) lastInfo.delete(id);
    prune();
    renderTable();
    renderAll();
  }

  function mark(e) {
    return { kind: e.kind, t: ms(e.time), rtt: e.rtt_ms == null ? null : e.rtt_ms };
  }

  // closed keeps the lane of a connection that ended on a keepalive timeout,
  // so the red marks stay in view; every other lane goes at once.
  function closed(e) {
    const evs = st.events.get(e.conn) || [];
    const info = lastInfo.get(e.conn);
    if (info && evs.some((m) => m.kind === 'timeout')) {
      st.ghosts.set(e.conn, { info, closedAt: ms(e.time), code: e.code, reason: e.reason });
    } else {
      st.events.delete(e.conn);
    }
  }

  function nextColor() {
    const used = new Set(st.colors.values());
    for (let i = 0; i < PALETTE.length; i++) if (!used.has(i)) return i;
    return st.colors.size % PALETTE.length;
  }
  const color = (id) => PALETTE[st.colors.get(id) ?? 0];

  function prune() {
    const cut = now() - KEEP_MS;
    for (const list of st.events.values()) {
      let i = 0;
      while (i < list.length && list[i].t < cut) i++;
      if (i) list.splice(0, i);
    }
    while (st.series.length && st.series[0].t < cut) st.series.shift();
    for (const [id, g] of st.ghosts) {
      if (now() - g.closedAt > GHOST_MS) {
        st.ghosts.delete(id);
        st.events.delete(id);
        st.colors.delete(id);
      }
    }
  }

  // lastInfo remembers each connection's last object, for ghost lanes.
  const lastInfo = new Map();

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

  // ---- rendering helpers ----

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const shortID = (id) => (id.length > 12 ? id.slice(-8) : id);

  function fmtSeconds(s) {
    if (s == null || s === 0) return '—';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 120) return +s.toFixed(s < 10 ? 2 : 1) + ' s';
    return +(s / 60).toFixed(1) + ' min';
  }
  function fmtAge(msAgo) {
    if (msAgo < 0) msAgo = 0;
    if (msAgo < 10000) return (msAgo / 1000).toFixed(1) + ' s ago';
    if (msAgo < 120000) return Math.round(msAgo / 1000) + ' s ago';
    return Math.round(msAgo / 60000) + ' min ago';
  }
  function fmtRTT(v) {
    if (v == null) return '—';
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 100) return v.toFixed(1) + ' ms';
    return Math.round(v) + ' ms';
  }
  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(n < 10 ? 1 : 0) + ' ' + u[i];
  }
  const fmtCount = (n) => n.toLocaleString('en');

  // niceStep picks a grid step near span/n from 1, 2, 5 times a power of ten.
  function niceStep(span, n) {
    const raw = span / n;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }
  // timeStep picks a time grid step in seconds.
  function timeStep(spanS) {
    for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300]) if (spanS / s <= 8) return s;
    return 600;
  }

  // windowMs is the span of the timeline and the charts: in "auto", ten
  // intervals of the slowest connection, between 30 s and 15 min.
  function windowMs() {
    const v = $('window').value;
    if (v !== 'auto') return +v * 1000;
    let slowest = 0;
    for (const c of st.conns.filter(local)) slowest = Math.max(slowest, c.ping_interval || 0);
    return Math.min(Math.max(slowest * 10, 30), 900) * 1000;
  }

  // ---- table ----

  function renderTable() {
    const t = now();
    // The node column shows in cluster mode only.
    const withNode = st.conns.some((c) => c.node);
    $('col-node').hidden = !withNode;
    const rows = st.conns.map((c) => {
      lastInfo.set(c.id, c);
      const pong = ms(c.last_pong_at);
      const iv = c.ping_interval || 0;
      const to = c.ping_timeout || 0;
      let ageCls = 'num';
      let age = '—';
      if (pong != null) {
        const a = t - pong;
        age = fmtAge(a);
        if (iv > 0 && a > (iv + to) * 1000) ageCls += ' bad';
        else if (iv > 0 && a > iv * 1500 + 1000) ageCls += ' warn';
      } else if (iv > 0 && t - ms(c.opened_at) > iv * 1500 + 1000) {
        ageCls += ' warn';
        age = 'none yet';
      }
      const interval = iv ? fmtSeconds(iv) + (to ? ' / ' + fmtSeconds(to) : ' / none') : 'off';
      const swatch = local(c) ? `<svg width="9" height="9"><rect width="9" height="9" rx="2" fill="${color(c.id)}"/></svg>`
        : '<svg width="9" height="9"></svg>';
      return `<tr data-id="${esc(c.id)}"${local(c) ? '' : ' class="remote"'}>` +
        `<td class="id" title="${esc(c.id)}">${swatch} ${esc(shortID(c.id))}</td>` +
        (withNode ? `<td class="node">${esc(c.node || '')}</td>` : '') +
        `<td>${esc(c.role)}</td>` +
        `<td>${esc(c.remote)}</td>` +
        `<td class="path" title="${esc(c.path)}">${esc(c.path)}</td>` +
        `<td>${esc(c.state)}</td>` +
        `<td class="num">${interval}</td>` +
        `<td class="${ageCls}" data-field="pong-age">${age}</td>` +
        `<td class="num">${fmtRTT(c.rtt_ms)}</td>` +
        `<td class="num">${fmtCount(c.messages_in)} / ${fmtCount(c.messages_out)}</td>` +
        `<td class="num">${fmtBytes(c.bytes_in)} / ${fmtBytes(c.bytes_out)}</td>` +
        '</tr>';
    });
    document.querySelector('#conns tbody').innerHTML = rows.join('') ||
      `<tr><td colspan="${withNode ? 11 : 10}" class="muted">No live connections.</td></tr>`;
    const more = $('more');
    more.hidden = st.total <= st.conns.length;
    more.textContent = `Showing the oldest ${st.conns.length} of ${fmtCount(st.total)} connections; ` +
      'narrow them with ?role=, ?path= or ?state= in the address.';
    const intervals = new Set(st.conns.filter((c) => c.ping_interval > 0).map((c) => c.ping_interval));
    const nodes = new Set(st.conns.filter((c) => c.node).map((c) => c.node));
    if (st.node) nodes.add(st.node);
    $('summary').textContent = `${fmtCount(st.total)} live connection${st.total === 1 ? '' : 's'}` +
      (nodes.size ? ` on ${nodes.size} node${nodes.size === 1 ? '' : 's'} (this one: ${st.node || '?'})` : '') +
      (intervals.size > 1 ? ` · ${intervals.size} different ping intervals` : '');
    const lost = $('lost');
    lost.hidden = !st.lost;
    lost.textContent = `${fmtCount(st.lost)} keepalive events lost by the dashboard; gaps in the timeline are not missed pongs.`;
  }

  // ---- timeline ----

  function lanes() {
    const out = st.conns.filter(local).map((c) => ({ info: c, ghost: null }));
    for (const [id, g] of st.ghosts) out.push({ info: g.info, ghost: g, id });
    return out;
  }

  // classify marks each ping answered, pending or missed: answered when the
  // next keepalive event is its pong, missed when another ping or a timeout
  // came first or when it has waited longer than the timeout.
  function classify(list, info, t) {
    const wait = ((info.ping_timeout || info.ping_interval || 20) + 0.5) * 1000;
    const out = [];
    for (let i = 0; i < list.length; i++) {
      const m = list[i];
      if (m.kind !== 'ping') { out.push({ m, cls: m.kind }); continue; }
      const next = list[i + 1];
      let cls = 'ping pending';
      if (next && next.kind === 'pong') cls = 'ping';
      else if (next || t - m.t > wait) cls = 'ping missed';
      out.push({ m, cls, pong: next && next.kind === 'pong' ? next : null });
    }
    return out;
  }

  function renderTimeline() {
    const svg = $('timeline');
    const all = lanes();
    $('timeline-title').textContent = st.node ? `Keepalive on ${st.node}` : 'Keepalive';
    $('timeline-empty').hidden = all.length > 0;
    $('timeline-empty').textContent = st.conns.length ? 'No connections on this node; the table lists the other nodes\u2019.' : 'No live connections.';
    const W = svg.clientWidth || 900;
    const labelW = Math.min(300, Math.max(200, W * 0.22));
    const laneH = 30;
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
    // time grid
    const step = timeStep(span / 1000) * 1000;
    for (let g = 0; g <= span; g += step) {
      const gx = x(t1 - g);
      parts.push(`<line class="grid" x1="${gx}" x2="${gx}" y1="${top}" y2="${H - 18}"/>`);
      parts.push(`<text x="${gx}" y="${H - 5}" text-anchor="${g === 0 ? 'end' : 'middle'}">${g === 0 ? 'now' : '−' + fmtSeconds(g / 1000)}</text>`);
    }
    all.forEach((lane, i) => {
      const c = lane.info;
      const y = top + i * laneH;
      const mid = y + laneH / 2;
      const col = color(c.id);
      const g = [`<g class="lane${lane.ghost ? ' ghost' : ''}" data-id="${esc(c.id)}" data-interval="${c.ping_interval}">`];
      g.push(`<rect class="lane-bg" x="${labelW}" y="${y + 2}" width="${plotW}" height="${laneH - 4}" rx="3"/>`);
      g.push(`<rect x="4" y="${mid - 5}" width="10" height="10" rx="2" fill="${col}"/>`);
      const sub = lane.ghost ? `closed: ${lane.ghost.reason || lane.ghost.code}` : `${fmtSeconds(c.ping_interval)} · ${c.role} ${pathOnly(c.path)}`;
      g.push(`<text class="label" x="20" y="${mid + 4}"><tspan class="label-id">${esc(shortID(c.id))}</tspan>` +
        `<tspan class="label-sub${lane.ghost ? ' ghost-note' : ''}" dx="8">${esc(clip(sub, Math.floor((labelW - 100) / 6)))}</tspan><title>${esc(c.id)}</title></text>`);
      const list = (st.events.get(c.id) || []).filter((m) => m.t >= t0 - 60000);
      for (const { m, cls, pong } of classify(list, c, lane.ghost ? lane.ghost.closedAt : t1)) {
        if (m.t < t0) continue;
        const mx = x(m.t).toFixed(1);
        if (cls.startsWith('ping')) {
          if (pong) g.push(`<line class="link" x1="${mx}" x2="${x(pong.t).toFixed(1)}" y1="${mid}" y2="${mid}" stroke="${col}"/>`);
          const stroke = cls === 'ping missed' ? '' : ` stroke="${col}"`;
          g.push(`<line class="mark ${cls}" data-t="${m.t}" x1="${mx}" x2="${mx}" y1="${mid - 9}" y2="${mid + 9}"${stroke}><title>ping ${new Date(m.t).toLocaleTimeString()}${cls === 'ping missed' ? ', no pong' : ''}</title></line>`);
        } else if (cls === 'pong') {
          g.push(`<circle class="mark pong" data-t="${m.t}" data-rtt="${m.rtt}" cx="${mx}" cy="${mid}" r="3.5" fill="${col}"><title>pong, RTT ${fmtRTT(m.rtt)}</title></circle>`);
        } else if (cls === 'timeout') {
          g.push(`<path class="mark timeout" data-t="${m.t}" d="M${mx - 5} ${mid - 5} L${+mx + 5} ${mid + 5} M${+mx + 5} ${mid - 5} L${mx - 5} ${mid + 5}"><title>keepalive timeout</title></path>`);
        }
      }
      g.push('</g>');
      parts.push(g.join(''));
    });
    parts.push(`<line class="now" x1="${x(t1)}" x2="${x(t1)}" y1="${top}" y2="${H - 18}"/>`);
    svg.innerHTML = parts.join('');
  }

  // pathOnly drops scheme and host from a client's URL: the remote column
  // has them, the lane has little room.
  const pathOnly = (p) => p.replace(/^[a-z]+:\/\/[^/]*/i, '') || '/';
  const clip = (s, n) => (s.length > n ? s.slice(0, Math.max(n - 1, 1)) + '…' : s);

  // ---- charts ----

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

  function renderCount() {
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

  function renderRTT() {
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
  $('link-metrics').href = 'metrics' + (token ? '?token=' + encodeURIComponent(token) : '');
  connect();
  requestAnimationFrame(frame);
})();
