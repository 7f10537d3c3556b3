#!/usr/bin/python3
"""Bench peer: echo server on python-websockets 10.4 (legacy asyncio API).

Run with Debian's interpreter:  /usr/bin/python3 echo.py [--compression]
Listens on 127.0.0.1 on a free port, prints "listening ws://127.0.0.1:PORT",
and echoes every message on any path with the same type. No keepalive pings,
no size limit; compression only with --compression.
"""
import asyncio
import sys

import websockets


async def echo(ws, path):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    compression = "deflate" if "--compression" in sys.argv else None
    async with websockets.serve(echo, "127.0.0.1", 0, compression=compression,
                                max_size=None, ping_interval=None) as server:
        print("listening ws://127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
