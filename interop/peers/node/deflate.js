// Interop peer: permessage-deflate (RFC 7692) on the npm package `ws` (version pinned in
// package.json).
//
// Run (after `npm ci` in this folder):
//   node deflate.js server [FLAGS]
//   node deflate.js client URL [FLAGS]
//
// perMessageDeflate is on, with threshold 0 (every message is compressed) and only
// the options the FLAGS give (ws's defaults for the rest):
//   --server-max-window-bits N     serverMaxWindowBits
//   --client-max-window-bits N     clientMaxWindowBits
//   --server-no-context-takeover   serverNoContextTakeover: true
//   --client-no-context-takeover   clientNoContextTakeover: true
// 64 MiB maxPayload, no keepalive pings.
//
// server: listens on 127.0.0.1 on a free port and echoes every message with its type.
//         A request whose query has a "flags" parameter is negotiated with those flags
//         instead (comma-separated, e.g. ?flags=--server-max-window-bits,9; empty: no
//         flags), so that one server serves every configuration.
// client: connects to URL, then reads JSON lines from stdin:
//           {"type": "text"|"binary", "data": text or base64 of the bytes}
//               send it and wait for one reply
//           {"connect": URL2, "flags": [FLAGS...]}
//               close the current connection with 1000 "bye", then connect to URL2
//               with these flags (so that one process runs many connections)
//         and at stdin EOF closes with 1000 "bye". A connection that fails prints
//         "error ..." and the client goes on with the next "connect" line.
// stdout, one line per event:
//   listening PORT            (server) first line, once the socket is bound
//   ext VALUE                 per connection, right after the handshake: the
//                             Sec-WebSocket-Extensions header of the handshake response
//                             ("ext none" when no extension was agreed)
//   recv TYPE LEN SHA256HEX   (client) an echo arrived: TYPE text|binary, LEN its size
//                             in bytes, SHA256HEX the hash of those bytes
//   closed CODE REASON        a connection ended: the peer's close code and reason
//   error MESSAGE             (client) a connection failed; the exit status will be 1
// The client gives up on a connection after $PEER_TIMEOUT seconds (default 60).
'use strict';
const crypto = require('crypto');
const http = require('http');
const { WebSocket, WebSocketServer } = require('ws');

const out = (...fields) => process.stdout.write(fields.join(' ') + '\n');

// pmdOptions turns FLAGS into ws's perMessageDeflate options.
function pmdOptions(flags) {
  const pmd = { threshold: 0 };
  for (let i = 0; i < flags.length; i++) {
    const a = flags[i];
    const bits = () => {
      const n = Number(flags[++i]);
      if (!Number.isInteger(n) || n < 8 || n > 15) throw new Error(`${a} wants 8-15, got ${flags[i]}`);
      return n;
    };
    if (a === '--server-max-window-bits') pmd.serverMaxWindowBits = bits();
    else if (a === '--client-max-window-bits') pmd.clientMaxWindowBits = bits();
    else if (a === '--server-no-context-takeover') pmd.serverNoContextTakeover = true;
    else if (a === '--client-no-context-takeover') pmd.clientNoContextTakeover = true;
    else throw new Error(`unknown flag ${a}`);
  }
  return pmd;
}

const extLine = (value) => 'ext ' + (value || 'none');

function server(flags) {
  pmdOptions(flags); // fail early on bad flags
  const servers = new Map(); // by flags: one WebSocketServer per configuration
  const wssFor = (key) => {
    if (servers.has(key)) return servers.get(key);
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: pmdOptions(key.split(',').filter(Boolean)),
      maxPayload: 64 << 20,
    });
    // 'headers' comes right before 'connection' for the same request: it is the
    // only place the response's Sec-WebSocket-Extensions can be read.
    wss.on('headers', (headers, req) => {
      const h = headers.find((l) => /^sec-websocket-extensions:/i.test(l));
      req.tetherExt = h ? h.slice(h.indexOf(':') + 1).trim() : '';
    });
    wss.on('connection', (ws, req) => {
      out(extLine(req.tetherExt));
      ws.on('close', (code, reason) => out('closed', code, reason.toString()));
      ws.on('error', () => {}); // a 'close' event follows and reports it
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    servers.set(key, wss);
    return wss;
  };
  const hs = http.createServer((req, res) => {
    res.writeHead(404);
    res.end('not a WebSocket request\n');
  });
  hs.on('upgrade', (req, socket, head) => {
    const q = new URL(req.url, 'http://x').searchParams;
    let wss;
    try {
      wss = wssFor(q.has('flags') ? q.get('flags') : flags.join(','));
    } catch (err) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n' + err.message);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  hs.listen(0, '127.0.0.1', () => out('listening', hs.address().port));
}

// exchange runs one connection and resolves to true if it went well; it
// gives up after timeout ms.
async function exchange(url, flags, messages, timeout) {
  let ws;
  const inbox = [];
  let waiter = null;
  const push = (item) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(item);
    } else inbox.push(item);
  };
  const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => { waiter = r; }));
  let ext = '';
  let closed;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    push({ closed: true });
    if (ws) ws.terminate();
  }, timeout);
  try {
    ws = new WebSocket(url, { perMessageDeflate: pmdOptions(flags), maxPayload: 64 << 20 });
    ws.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || ''; });
    ws.on('message', (data, isBinary) => push({ data, isBinary }));
    closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      push({ closed: true });
      resolve([code, reason.toString()]);
    }));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
  } catch (err) {
    clearTimeout(timer);
    out('error', timedOut ? 'timeout' : String(err.message || err).replace(/\n/g, ' '));
    return false;
  }
  ws.on('error', () => {}); // a 'close' event follows and reports it
  out(extLine(ext));
  for (const m of messages) {
    ws.send(m.data, { binary: m.binary });
    const got = await next();
    if (got.closed) break;
    out('recv', got.isBinary ? 'binary' : 'text', got.data.length, crypto.createHash('sha256').update(got.data).digest('hex'));
  }
  ws.close(1000, 'bye');
  const [code, reason] = await closed;
  clearTimeout(timer);
  if (timedOut) {
    out('error timeout');
    return false;
  }
  out('closed', code, reason);
  return code === 1000;
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function client(url, flags, timeout) {
  const conns = [{ url, flags, messages: [] }];
  for (const line of (await readStdin()).split('\n')) {
    if (!line.trim()) continue;
    const spec = JSON.parse(line);
    if (spec.connect) conns.push({ url: spec.connect, flags: spec.flags || [], messages: [] });
    else if (spec.type === 'text') conns[conns.length - 1].messages.push({ data: spec.data, binary: false });
    else if (spec.type === 'binary') conns[conns.length - 1].messages.push({ data: Buffer.from(spec.data, 'base64'), binary: true });
    else throw new Error(`bad line ${line.slice(0, 80)}`);
  }
  let ok = true;
  for (const c of conns) ok = (await exchange(c.url, c.flags, c.messages, timeout)) && ok;
  return ok;
}

function main() {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'server') {
    try {
      server(rest);
    } catch (err) {
      out('error', err.message);
      process.exit(1);
    }
    return;
  }
  if (mode !== 'client' || rest.length < 1) {
    out('error usage: deflate.js server [FLAGS] | client URL [FLAGS]');
    process.exit(2);
  }
  const timeout = Number(process.env.PEER_TIMEOUT || '60') * 1000;
  client(rest[0], rest.slice(1), timeout).then(
    (ok) => process.exit(ok ? 0 : 1),
    (err) => {
      out('error', String(err && err.message ? err.message : err).replace(/\n/g, ' '));
      process.exit(1);
    },
  );
}

main();
