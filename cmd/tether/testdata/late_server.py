#!/usr/bin/python3
"""A python-websockets 10.4 server that answers late, for connect's tests.

    /usr/bin/python3 late_server.py DELAY [CERT KEY]

Listens on 127.0.0.1 on a free port (wss with CERT and KEY) and prints
"listening PORT". Paths:
  /echo    each message comes back, same type, DELAY seconds after it arrived
  /close   sends one text message "bye" after DELAY, then closes with 1000
  /push    sends "hello" after DELAY and then nothing; never closes
"""
import asyncio
import ssl
import sys

import websockets


async def handler(ws, path):
    delay = float(sys.argv[1])
    try:
        if path == "/close":
            await asyncio.sleep(delay)
            await ws.send("bye")
            await ws.close(1000, "done")
        elif path == "/push":
            await asyncio.sleep(delay)
            await ws.send("hello")
            await ws.wait_closed()
        else:
            async for message in ws:
                await asyncio.sleep(delay)
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    ctx = None
    if len(sys.argv) > 3:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    async with websockets.serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=None, compression=None) as server:
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main())
