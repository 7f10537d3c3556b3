#!/usr/bin/python3
"""Interop peer: permessage-deflate (RFC 7692) on python-websockets 10.4 (legacy asyncio API).

Run with Debian's interpreter:
  /usr/bin/python3 py_deflate.py server [FLAGS]
  /usr/bin/python3 py_deflate.py client URL [FLAGS]

FLAGS configure permessage-deflate. Without any, the library's own defaults apply
(compression="deflate": a client offers "permessage-deflate; client_max_window_bits",
a server limits both windows to 12 bits). With any of them, a
ClientPerMessageDeflateFactory / ServerPerMessageDeflateFactory is built from exactly
these flags (the factory's own defaults for the rest; memLevel 5, as the library's):
  --server-max-window-bits N     8-15
  --client-max-window-bits N     8-15
  --server-no-context-takeover
  --client-no-context-takeover
No message size limit, no keepalive pings.

server: listens on 127.0.0.1 on a free port and echoes every message with its type.
        A request whose query has a "flags" parameter is negotiated with those flags
        instead (comma-separated, e.g. ?flags=--server-max-window-bits,9; empty: the
        library's defaults), so that one server serves every configuration.
client: connects to URL, then reads JSON lines from stdin:
          {"type": "text"|"binary", "data": text or base64 of the bytes}
              send it and wait for one reply
          {"connect": URL2, "flags": [FLAGS...]}
              close the current connection with 1000 "bye", then connect to URL2
              with these flags (so that one process runs many connections)
        and at stdin EOF closes with 1000 "bye". A connection that fails prints
        "error ..." and the client goes on with the next "connect" line.
stdout, one line per event, flushed:
  listening PORT              (server) first line, once the socket is bound
  ext VALUE                   per connection, right after the handshake: the
                              Sec-WebSocket-Extensions header of the handshake response
                              ("ext none" when no extension was agreed)
  recv TYPE LEN SHA256HEX     (client) an echo arrived: TYPE text|binary, LEN its size in
                              bytes (UTF-8 for text), SHA256HEX the hash of those bytes
  closed CODE REASON          a connection ended: the peer's close code and reason
  error MESSAGE               (client) a connection failed; the exit status will be 1
The client gives up on a connection after $PEER_TIMEOUT seconds (default 60).
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import urllib.parse

import websockets
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
    enable_server_permessage_deflate,
)
from websockets.legacy.server import WebSocketServerProtocol


def out(*fields):
    print(*fields, flush=True)


class FlagParser(argparse.ArgumentParser):
    def error(self, message):  # raise instead of exiting: flags also come in URLs
        raise ValueError("bad flags: " + message)


def flag_parser():
    parser = FlagParser(add_help=False)
    parser.add_argument("--server-max-window-bits", type=int)
    parser.add_argument("--client-max-window-bits", type=int)
    parser.add_argument("--server-no-context-takeover", action="store_true")
    parser.add_argument("--client-no-context-takeover", action="store_true")
    return parser


def factory_params(flags):
    """The factory keyword arguments FLAGS give, {} for none."""
    args = flag_parser().parse_args(flags)
    params = {}
    if args.server_max_window_bits is not None:
        params["server_max_window_bits"] = args.server_max_window_bits
    if args.client_max_window_bits is not None:
        params["client_max_window_bits"] = args.client_max_window_bits
    if args.server_no_context_takeover:
        params["server_no_context_takeover"] = True
    if args.client_no_context_takeover:
        params["client_no_context_takeover"] = True
    return params


def server_extensions(flags):
    params = factory_params(flags)
    if not params:
        return enable_server_permessage_deflate(None)  # what compression="deflate" does
    return [ServerPerMessageDeflateFactory(compress_settings={"memLevel": 5}, **params)]


def client_kwargs(flags):
    params = factory_params(flags)
    if not params:
        return {"compression": "deflate"}  # the library's defaults
    factory = ClientPerMessageDeflateFactory(compress_settings={"memLevel": 5}, **params)
    return {"compression": None, "extensions": [factory]}


def ext_line(headers):
    return "ext " + headers.get("Sec-WebSocket-Extensions", "none")


def report(message):
    kind, data = ("text", message.encode()) if isinstance(message, str) else ("binary", message)
    out("recv", kind, len(data), hashlib.sha256(data).hexdigest())


class ServerProtocol(WebSocketServerProtocol):
    def process_extensions(self, headers, available_extensions):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        if "flags" in query:
            flags = [f for f in query["flags"][0].split(",") if f]
            available_extensions = server_extensions(flags)
        return super().process_extensions(headers, available_extensions)


async def serve(flags):
    async def handler(ws, path):
        out(ext_line(ws.response_headers))
        try:
            async for message in ws:  # str for text, bytes for binary: send() keeps the type
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        out("closed", ws.close_code, ws.close_reason)

    async with websockets.serve(
        handler, "127.0.0.1", 0, create_protocol=ServerProtocol, max_size=None,
        ping_interval=None, compression=None, extensions=server_extensions(flags),
    ) as server:
        out("listening", server.sockets[0].getsockname()[1])
        await asyncio.Future()  # serve until killed


async def exchange(url, flags, messages, timeout):
    """One connection: returns True if it went well."""
    try:
        ws = await websockets.connect(
            url, max_size=None, ping_interval=None, open_timeout=timeout, close_timeout=timeout,
            **client_kwargs(flags),
        )
    except Exception as e:
        out("error", (type(e).__name__ + ": " + str(e)).replace("\n", " "))
        return False
    out(ext_line(ws.response_headers))
    try:
        for message in messages:
            await ws.send(message)
            report(await ws.recv())
        await ws.close(1000, "bye")
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    out("closed", ws.close_code, ws.close_reason)
    return ws.close_code == 1000


def script(url, flags, lines):
    """Splits stdin into connections: [(url, flags, messages)]."""
    conns = [(url, flags, [])]
    for line in lines:
        if not line.strip():
            continue
        spec = json.loads(line)
        if "connect" in spec:
            conns.append((spec["connect"], spec.get("flags", []), []))
        elif spec.get("type") == "text":
            conns[-1][2].append(spec["data"])
        elif spec.get("type") == "binary":
            conns[-1][2].append(base64.b64decode(spec["data"]))
        else:
            raise ValueError("bad line %r" % line[:80])
    return conns


async def client(url, flags, timeout):
    lines = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readlines)
    ok = True
    for conn in script(url, flags, lines):
        try:
            ok = await asyncio.wait_for(exchange(*conn, timeout), timeout) and ok
        except asyncio.TimeoutError:
            out("error timeout")
            ok = False
    return ok


def main():
    argv = sys.argv[1:]
    if argv[:1] == ["server"]:
        try:
            asyncio.run(serve(argv[1:]))
        except KeyboardInterrupt:
            pass
        return 0
    if argv[:1] != ["client"] or len(argv) < 2:
        out("error usage: py_deflate.py server [FLAGS] | client URL [FLAGS]")
        return 2
    try:
        timeout = float(os.environ.get("PEER_TIMEOUT", "60"))
        return 0 if asyncio.run(client(argv[1], argv[2:], timeout)) else 1
    except Exception as e:  # report every failure the same way
        out("error", (type(e).__name__ + ": " + str(e)).replace("\n", " "))
    return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # do not wait for a stdin reader thread
