// Interop peer: WebSocket client on the npm package `ws` (version pinned in package.json).
//
// Run:  node client.js URL MODE [ARGS]      (after `npm ci` in this folder)
// perMessageDeflate off, 64 MiB maxPayload. MODE is one of:
//   echo          read JSON lines from stdin: {"type": "text"|"binary", "data": text or
//                 base64 of the bytes, "size": N (optional: send N bytes 'x' instead)};
//                 send each one and wait for one reply; at stdin EOF close 1000 "bye"
//   ping          send a ping with payload "abc", wait for its pong, close 1000
//   close CODE [REASON]   close with CODE and REASON (default empty)
//   recv          only report what arrives, until the connection closes
//   stall         stop reading from the socket right after the handshake
//                 (ws._socket.pause()), print "stalled" and sleep until killed
//                 (or $PEER_TIMEOUT): pings are never answered
// stdout, one line per event (REASON is the rest of the line, may be empty):
//   recv TYPE LEN SHA256HEX     a message arrived: TYPE text|binary, LEN its size in
//                               bytes, SHA256HEX the hash of those bytes
//   ping HEXPAYLOAD             a ping frame arrived (answered automatically)
//   pong HEXPAYLOAD             a pong frame arrived
//   stalled                     stall mode stopped reading
//   closed CODE REASON          the connection ended: the server's close code and reason
//                               (1005 if its close frame had no code, 1006 if none came);
//                               exit status 0
//   error MESSAGE               anything failed (handshake, protocol, bad input,
//                               timeout); exit 1
// Every mode gives up after $PEER_TIMEOUT seconds (default 60).
'use strict';
const crypto = require('crypto');
const readline = require('readline');
const WebSocket = require('ws');

const out = (...fields) => process.stdout.write(fields.join(' ') + '\n');
const fail = (msg) => { out('error', String(msg).replace(/\n/g, ' ')); process.exit(1); };

const [url, mode, ...args] = process.argv.slice(2);
if (!url || !['echo', 'ping', 'close', 'recv', 'stall'].includes(mode)) {
  fail('usage: client.js URL echo|ping|close CODE [REASON]|recv|stall');
}
setTimeout(() => fail('timeout'), Number(process.env.PEER_TIMEOUT || 60) * 1000).unref();

const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20 });
let onReply = () => {};

ws.on('error', (err) => fail(err.message));
ws.on('ping', (data) => out('ping', data.toString('hex')));
ws.on('pong', (data) => {
  out('pong', data.toString('hex'));
  if (mode === 'ping') ws.close(1000);
});
ws.on('close', (code, reason) => { out('closed', code, reason.toString()); process.exit(0); });
ws.on('message', (data, isBinary) => {
  const hash = crypto.createHash('sha256').update(data).digest('hex');
  out('recv', isBinary ? 'binary' : 'text', data.length, hash);
  onReply();
});

function parseLine(line) {
  const spec = JSON.parse(line);
  if (spec.type !== 'text' && spec.type !== 'binary') throw new Error(`bad type ${spec.type}`);
  const data = spec.size !== undefined ? Buffer.alloc(spec.size, 'x')
    : spec.type === 'text' ? Buffer.from(spec.data, 'utf8') : Buffer.from(spec.data, 'base64');
  return [data, spec.type === 'binary'];
}

async function echo() {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const [data, binary] = parseLine(line);
    const reply = new Promise((resolve) => { onReply = resolve; });
    ws.send(data, { binary });
    await reply;
  }
  ws.close(1000, 'bye');
}

ws.on('open', () => {
  try {
    if (mode === 'echo') echo().catch(fail);
    else if (mode === 'ping') ws.ping('abc');
    else if (mode === 'close') ws.close(Number(args[0]), args[1] || '');
    else if (mode === 'stall') {
      ws._socket.pause(); // no more 'data' events: no frame is parsed, no pong is sent
      out('stalled');
      setInterval(() => {}, 1 << 30); // stay alive even if the socket goes idle
    }
  } catch (err) {
    fail(err.message);
  }
});
