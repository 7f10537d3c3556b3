#!/usr/bin/python3
"""Interop peer: WebSocket client on python-websockets 10.4 (legacy asyncio API).

Run with Debian's interpreter:  /usr/bin/python3 py_client.py URL MODE [ARGS]
Compression off, no message size limit, no keepalive pings. MODE is one of:
  echo          read JSON lines from stdin: {"type": "text"|"binary", "data": text or
                base64 of the bytes, "size": N (optional: send N bytes 'x' instead)};
                send each one and wait for one reply; at stdin EOF close 1000 "bye"
  ping          send a ping with payload "abc", wait for its pong, close 1000
  close CODE [REASON]   close with CODE and REASON (default empty)
  recv          only report what arrives, until the connection closes
  stall         stop reading from the socket right after the handshake
                (transport.pause_reading()), print "stalled" and sleep until killed
                (or $PEER_TIMEOUT): pings are never answered
stdout, one line per event, flushed (REASON is the rest of the line, may be empty):
  recv TYPE LEN SHA256HEX     a message arrived: TYPE text|binary, LEN its size in
                              bytes (UTF-8 for text), SHA256HEX the hash of those bytes
  ping HEXPAYLOAD             a ping frame arrived (answered automatically)
  pong HEXPAYLOAD             a pong frame arrived
  stalled                     stall mode stopped reading
  closed CODE REASON          the connection ended: the server's close code and reason
                              (1005 if its close frame had no code, 1006 if none came);
                              exit status 0
  error MESSAGE               anything failed (handshake, bad input, timeout); exit 1
Every mode gives up after $PEER_TIMEOUT seconds (default 60).
"""
import asyncio
import base64
import hashlib
import json
import os
import sys

import websockets
from websockets.frames import Opcode
from websockets.legacy.client import WebSocketClientProtocol


def out(*fields):
    print(*fields, flush=True)


class Protocol(WebSocketClientProtocol):
    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == Opcode.PING:
            out("ping", frame.data.hex())
        elif frame.opcode == Opcode.PONG:
            out("pong", frame.data.hex())
        return frame


def report(message):
    kind, data = ("text", message.encode()) if isinstance(message, str) else ("binary", message)
    out("recv", kind, len(data), hashlib.sha256(data).hexdigest())


def parse_line(line):
    spec = json.loads(line)
    text = spec["type"] == "text"
    if spec["type"] not in ("text", "binary"):
        raise ValueError("bad type %r" % spec["type"])
    if "size" in spec:
        return "x" * spec["size"] if text else b"x" * spec["size"]
    return spec["data"] if text else base64.b64decode(spec["data"])


async def run(url, mode, args):
    ws = await websockets.connect(
        url, create_protocol=Protocol, compression=None, max_size=None, ping_interval=None)
    loop = asyncio.get_running_loop()
    try:
        if mode == "echo":
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                if line.strip():
                    await ws.send(parse_line(line))
                    report(await ws.recv())
            await ws.close(1000, "bye")
        elif mode == "ping":
            await (await ws.ping(b"abc"))  # the pong line is printed by Protocol
            await ws.close(1000)
        elif mode == "close":
            await ws.close(int(args[0]), args[1] if len(args) > 1 else "")
        elif mode == "recv":
            while True:
                report(await ws.recv())
        elif mode == "stall":
            ws.transport.pause_reading()  # the read loop starves: no frame, no pong
            out("stalled")
            await asyncio.Future()  # until killed or PEER_TIMEOUT
        else:
            raise ValueError("unknown mode %r" % mode)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    out("closed", ws.close_code, ws.close_reason)


def main():
    if len(sys.argv) < 3:
        out("error usage: py_client.py URL echo|ping|close CODE [REASON]|recv|stall")
        return 1
    try:
        timeout = float(os.environ.get("PEER_TIMEOUT", "60"))
        asyncio.run(asyncio.wait_for(run(sys.argv[1], sys.argv[2], sys.argv[3:]), timeout))
        return 0
    except asyncio.TimeoutError:
        out("error timeout")
    except Exception as e:  # report every failure the same way
        out("error", (type(e).__name__ + ": " + str(e)).replace("\n", " "))
    return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # do not wait for a stdin reader thread still blocked in readline
