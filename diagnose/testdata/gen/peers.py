#!/usr/bin/python3
"""Generate the server-side fixtures of diagnose: a Tether server's log of its
peers' pings, and the log of the client process at the other end.

`tether serve --log-level debug` (its own keepalive at the default 20 s)
receives, from one python-websockets process on 127.0.0.1, three client
connections pinging every 2 s (labeled with the logging guide's
LoggerAdapter) and every 0.5 s twice (unlabeled): the report behind Tether,
seen from the server. Two other hosts (127.0.0.2, 127.0.0.3)
each hold one connection pinging every 20 s for 43 s, which nothing should
flag; their own logs are not kept.

Files written to OUTDIR:
  tether-serve-peers.log        the server's log, as the tether CLI writes it
  tether-serve-peers-since.log  the same, rewritten to the received-ping
                                record with an unspaced payload and `since`
  peers-clients.log             the client process's python-websockets log
  peers-clients.truth.json      its ground truth, as gen.py writes it
  tether-serve-peers.json       which server connection is which client
                                (by the client socket's local address)

    /usr/bin/python3 peers.py OUTDIR --tether PATH

gen.sh runs this after gen.py; see diagnose/doc.go.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import datetime

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402  (the Recorder, the IDAdapter and the truth format)

# (name, interval, labeled, local host, start, duration): the one process's
# three clients, then the two other hosts. B and C open 200 ms apart, so
# that the split of their unlabeled lines is exact and the pairing of the
# two ends can be checked against the truth (clients that ping in the same
# milliseconds are the report fixtures' case).
CLIENTS = [
    ("A", 2.0, True, "127.0.0.1", 0.5, 9.5),
    ("B", 0.5, False, "127.0.0.1", 0.6, 9.4),
    ("C", 0.5, False, "127.0.0.1", 0.8, 9.2),
    ("R2", 20.0, True, "127.0.0.2", 0.0, 43.0),
    ("R3", 20.0, True, "127.0.0.3", 0.2, 43.0),
]


def start_server(tether, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([tether, "serve", "--addr", "127.0.0.1:0", "--log-level", "debug"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on http://(\S+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"peers.py: tether serve did not start: {line!r}")
    return proc, log, m.group(1)


async def run_client(spec, uri, record):
    name, interval, labeled, host, start, duration = spec
    await asyncio.sleep(start)
    one_process = host == "127.0.0.1"
    logger = logging.getLogger("websockets.client" if one_process else "elsewhere")
    if labeled:
        logger = gen.IDAdapter(logger, None)
    async with websockets.connect(uri, ping_interval=interval, ping_timeout=5, close_timeout=0.3,
                                  local_addr=(host, 0), logger=logger) as ws:
        record[name] = {"id": str(ws.id), "local": "%s:%d" % ws.local_address[:2]}
        await asyncio.sleep(duration)


async def clients(uri, rec):
    root = logging.getLogger()
    root.handlers[:] = [rec]
    root.setLevel(logging.DEBUG)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    logging.getLogger("elsewhere").setLevel(logging.WARNING)  # other hosts' logs
    record = {}
    await asyncio.gather(*(run_client(c, uri, record) for c in CLIENTS))
    root.handlers[:] = []
    return record


def add_since(src, dst):
    """Rewrite "received ping" records as Tether writes them from this work
    on: payload as unspaced hex, and since = the time since the previous ping
    from that peer (here from the records' millisecond times)."""
    last = {}
    with open(src) as f, open(dst, "w") as out:
        for line in f:
            if 'msg="received ping"' in line:
                conn = re.search(r" conn=(\S+)", line).group(1)
                at = datetime.fromisoformat(re.match(r"time=(\S+)", line).group(1))
                line = re.sub(r'payload="([0-9a-f ]+)"', lambda m: "payload=" + m.group(1).replace(" ", ""), line)
                if conn in last:
                    ms = (at - last[conn]).total_seconds() * 1000
                    line = line.rstrip("\n") + f" since={ms:g}ms\n"
                last[conn] = at
            out.write(line)


def server_conns(path):
    """The server's connection ID for each remote address."""
    by_remote = {}
    with open(path) as f:
        for line in f:
            m = re.search(r'msg="connection open" conn=(\S+) role=server remote=(\S+)', line)
            if m:
                by_remote[m.group(2)] = m.group(1)
    return by_remote


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--tether", required=True)
    args = ap.parse_args()
    os.environ["TZ"] = "UTC"
    time.tzset()
    serve_log = os.path.join(args.outdir, "tether-serve-peers.log")
    proc, log, addr = start_server(args.tether, serve_log)
    rec = gen.Recorder(*gen.FORMATS["asctime"])
    try:
        record = asyncio.run(clients(f"ws://{addr}/echo", rec))
    finally:
        proc.send_signal(2)
        proc.wait(timeout=10)
        log.close()
    add_since(serve_log, os.path.join(args.outdir, "tether-serve-peers-since.log"))

    ones = [c for c in CLIENTS if c[3] == "127.0.0.1"]
    truth_clients = []
    for name, interval, labeled, _, _, _ in ones:
        c = gen.Client(name, interval, labeled=labeled)
        c.id = record[name]["id"]
        truth_clients.append(c)
    gen.write(args.outdir, "peers-clients", rec.lines, truth_clients, "peers", "asctime",
              websockets.__version__, ["interval-mismatch", "unlabeled-stream", "duplicate-connection"])

    by_remote = server_conns(serve_log)
    pairs = []
    for name, interval, labeled, host, _, _ in CLIENTS:
        local = record[name]["local"]
        pairs.append({"client": name, "client_id": record[name]["id"], "local": local,
                      "peer_interval_s": interval, "in_clients_log": host == "127.0.0.1",
                      "labeled": labeled, "server_conn": by_remote.get(local, "")})
    with open(os.path.join(args.outdir, "tether-serve-peers.json"), "w") as f:
        json.dump({"connections": pairs}, f, indent=1)
        f.write("\n")
    print(f"tether-serve-peers.log: {sum(1 for _ in open(serve_log))} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
