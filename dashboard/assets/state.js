// The page's state, filled by app.js from the feed (or the polled
// api/state) and read by the renderers.

export const PALETTE = ['#1f77b4', '#e08a0b', '#2a9d6f', '#8e5bb5', '#3aa3c9', '#8c6d31', '#5f7a8a', '#b5568c'];
// MAX_GHOSTS caps the lanes of closed connections that timed out.
export const MAX_GHOSTS = 10;

export const st = {
  conns: [], // live connections, this node's oldest first, then the other nodes' (Contract 2 objects)
  closed: [], // recently closed connections, newest first (final snapshots, state "closed")
  findings: [], // Registry.Findings: warnings first
  node: '', // this node's name, in cluster mode
  events: new Map(), // id -> marks {kind, t, rtt, iv}, oldest first
  colors: new Map(), // id -> palette index
  series: [], // {t, n}
  total: 0,
  lost: 0,
  offset: 0, // server clock minus ours, ms
  tick: 0.5,
  highlight: new Set(), // connections of the finding pointed at: their lanes and rows stand out
};

export const now = () => Date.now() + st.offset;
// local tells this node's connections, which have keepalive lanes, from
// the other nodes'.
export const local = (c) => !c.node || c.node === st.node;
// timedOut tells a connection that failed a keepalive ping.
export const timedOut = (c) => c.ping_timeouts > 0;
// ghosts are the closed connections that timed out, newest first: they
// keep a lane, red marks and all, while the server keeps them.
export const ghosts = () => st.closed.filter(timedOut).slice(0, MAX_GHOSTS);

export const color = (id) => PALETTE[st.colors.get(id) ?? 0];

export function nextColor() {
  const used = new Set(st.colors.values());
  for (let i = 0; i < PALETTE.length; i++) if (!used.has(i)) return i;
  return st.colors.size % PALETTE.length;
}
