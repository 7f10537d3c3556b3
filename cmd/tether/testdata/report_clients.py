#!/usr/bin/python3
"""The report behind Tether, as a client process: several python-websockets
clients in one process, each with its own ping interval, logging to one
logger. Usage:

    /usr/bin/python3 report_clients.py URL INTERVAL...

Opens one connection per INTERVAL (seconds) to URL, prints "open" on
standard output once all are open, keeps them open (answering and sending
pings) until standard input closes, then closes them and exits. The debug
log (logging's asctime format) goes to standard error.
"""

import asyncio
import logging
import sys

import websockets


async def main(url, intervals):
    conns = [await websockets.connect(url, ping_interval=iv, ping_timeout=5) for iv in intervals]
    print("open", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(c.close() for c in conns))


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s", level=logging.DEBUG, stream=sys.stderr)
    asyncio.run(main(sys.argv[1], [float(a) for a in sys.argv[2:]]))
