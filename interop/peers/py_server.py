#!/usr/bin/python3
"""Interop peer: WebSocket server on python-websockets 10.4 (legacy asyncio API).

Run with Debian's interpreter:  /usr/bin/python3 py_server.py [--ping-interval SECONDS]

Listens on 127.0.0.1 on a free port, compression off, no message size limit,
no keepalive pings unless --ping-interval is given. Paths (anything else: HTTP 404):
  /echo                       echo every message back with the same type
  /close?code=N&reason=R      send a close frame with N and R right after the handshake
  /ping                       send a ping with payload "hello", then echo like /echo
  /pause                      stop reading from the socket right after the handshake
                              (transport.pause_reading()) and print "paused": from then
                              on nothing is read, so pings are never answered and the
                              connection's end goes unnoticed (no "closed" line)
stdout, one line per event, flushed (fields after the keyword are separated by one
space; REASON is the rest of the line and may be empty):
  listening PORT              first line, once the socket is bound
  ping HEXPAYLOAD             a ping frame was received (HEXPAYLOAD empty if no payload)
  pong HEXPAYLOAD             a pong frame was received
  paused                      a /pause connection stopped reading
  closed CODE REASON          a connection ended: the peer's close code and reason
                              (1005 if its close frame had no code, 1006 if none came)
"""
import argparse
import asyncio
import sys
import urllib.parse
from http import HTTPStatus

import websockets
from websockets.frames import Opcode
from websockets.legacy.server import WebSocketServerProtocol


def out(*fields):
    print(*fields, flush=True)


class Protocol(WebSocketServerProtocol):
    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == Opcode.PING:
            out("ping", frame.data.hex())
        elif frame.opcode == Opcode.PONG:
            out("pong", frame.data.hex())
        return frame

    async def process_request(self, path, headers):
        if urllib.parse.urlsplit(path).path not in ("/echo", "/close", "/ping", "/pause"):
            return HTTPStatus.NOT_FOUND, [], b"unknown path\n"
        return None


async def echo(ws):
    async for message in ws:  # str for text, bytes for binary: send() keeps the type
        await ws.send(message)


async def handler(ws, path):
    url = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(url.query)
    try:
        if url.path == "/close":
            code = int(query.get("code", ["1000"])[0])
            await ws.close(code, query.get("reason", [""])[0])
        elif url.path == "/ping":
            await ws.ping(b"hello")
            await echo(ws)
        elif url.path == "/pause":
            ws.transport.pause_reading()  # the read loop starves: no frame, no pong
            out("paused")
            await asyncio.Future()  # keep the connection open until killed
        else:
            await echo(ws)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    out("closed", ws.close_code, ws.close_reason)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ping-interval", type=float, default=None)
    args = parser.parse_args()
    async with websockets.serve(
        handler, "127.0.0.1", 0, create_protocol=Protocol,
        compression=None, max_size=None, ping_interval=args.ping_interval,
    ) as server:
        out("listening", server.sockets[0].getsockname()[1])
        await asyncio.Future()  # serve until killed


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
