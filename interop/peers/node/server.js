// Interop peer: WebSocket server on the npm package `ws` (version pinned in package.json).
//
// Run:  node server.js            (after `npm ci` in this folder)
// Listens on 127.0.0.1 on a free port, perMessageDeflate off, 64 MiB maxPayload.
// Paths (anything else: HTTP 404):
//   /echo                    echo every message back with the same type
//   /close?code=N&reason=R   send a close frame with N and R right after the handshake
//   /ping                    send a ping with payload "hello", then echo like /echo
//   /pause                   stop reading from the socket right after the handshake
//                            (ws._socket.pause()) and print "paused": from then on no
//                            frame is processed, so pings are never answered
//   /json                    parse every message as JSON and answer, as a text message,
//                            {"echo": <the parsed value>, "from": "node"}
//   /stream                  a byte stream (ws's createWebSocketStream): every line
//                            received, across messages, comes back upper-cased
// stdout, one line per event (fields after the keyword are separated by one space;
// REASON is the rest of the line and may be empty):
//   listening PORT           first line, once the socket is bound
//   ping HEXPAYLOAD          a ping frame was received (HEXPAYLOAD empty if no payload)
//   pong HEXPAYLOAD          a pong frame was received
//   paused                   a /pause connection stopped reading
//   closed CODE REASON       a connection ended: the peer's close code and reason
//                            (1005 if its close frame had no code, 1006 if none came)
'use strict';
const readline = require('readline');
const { WebSocketServer, createWebSocketStream } = require('ws');

const out = (...fields) => process.stdout.write(fields.join(' ') + '\n');
const PATHS = ['/echo', '/close', '/ping', '/pause', '/json', '/stream'];

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  maxPayload: 64 << 20,
  verifyClient: (info, cb) => cb(PATHS.includes(new URL(info.req.url, 'http://x').pathname), 404),
});

wss.on('listening', () => out('listening', wss.address().port));

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x');
  ws.on('ping', (data) => out('ping', data.toString('hex')));
  ws.on('pong', (data) => out('pong', data.toString('hex')));
  ws.on('close', (code, reason) => out('closed', code, reason.toString()));
  ws.on('error', () => {}); // a 'close' event follows and reports it
  if (url.pathname === '/json') {
    ws.on('message', (data) => ws.send(JSON.stringify({ echo: JSON.parse(data), from: 'node' })));
  } else if (url.pathname === '/stream') {
    const stream = createWebSocketStream(ws);
    stream.on('error', () => {}); // the 'close' event reports how it ended
    readline.createInterface({ input: stream }).on('line', (line) => stream.write(line.toUpperCase() + '\n'));
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
  if (url.pathname === '/close') {
    ws.close(Number(url.searchParams.get('code') || 1000), url.searchParams.get('reason') || '');
  } else if (url.pathname === '/ping') {
    ws.ping('hello');
  } else if (url.pathname === '/pause') {
    ws._socket.pause(); // no more 'data' events: no frame is parsed, no pong is sent
    out('paused');
  }
});
