// Bench peer: echo server on Node's `ws` (the copy the interop tests install
// with npm ci in interop/peers/node).
//
// Run:  node echo.js [--compression]
// Listens on 127.0.0.1 on a free port, prints "listening ws://127.0.0.1:PORT",
// and echoes every message on any path with the same type. No keepalive pings.
'use strict';
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '../../interop/peers/node/node_modules/ws'));

const compression = process.argv.includes('--compression');
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: compression ? { threshold: 128 } : false,
  maxPayload: 64 << 20,
});
wss.on('listening', () => process.stdout.write(`listening ws://127.0.0.1:${wss.address().port}\n`));
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
