#!/usr/bin/python3
"""Generate the keepalive logs that diagnose's tests read, with their ground truth.

Each scenario runs real python-websockets (Debian's python3-websockets, 10.4,
legacy asyncio API) in one process: a server and several client connections,
some logging through the ID-prefixing LoggerAdapter of python-websockets'
logging guide and some not, with different keepalive intervals, and in some
scenarios a peer that stops answering (its handler pauses reading). Scenarios
that involve Tether run the tether CLI as child processes and copy their
log lines into the same file.

Every line is recorded with the connection that wrote it (the LogRecord
carries the websocket, whatever the format shows), so the tests can check the
streams diagnose infers against the truth.

    /usr/bin/python3 gen.py OUTDIR --tether PATH [--only NAME]

gen.sh builds the tether binary and runs this; see diagnose/doc.go.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import time

import websockets

FORMATS = {
    # logging.basicConfig(format="%(asctime)s %(message)s"): comma milliseconds.
    "asctime": ("%(asctime)s %(message)s", None),
    # logging.basicConfig() default: no timestamps at all.
    "notime": ("%(levelname)s:%(name)s:%(message)s", None),
    # Home Assistant's log format.
    "ha": ("%(asctime)s.%(msecs)03d %(levelname)s (%(threadName)s) [%(name)s] %(message)s",
           "%Y-%m-%d %H:%M:%S"),
}


class IDAdapter(logging.LoggerAdapter):
    """The LoggerAdapter of python-websockets' logging guide: it prefixes
    every message with the connection's ID."""

    def process(self, msg, kwargs):
        try:
            websocket = kwargs["extra"]["websocket"]
        except KeyError:
            return msg, kwargs
        return f"{websocket.id} {msg}", kwargs


class Recorder(logging.Handler):
    """Formats records as a file handler would and remembers, for each line,
    which connection wrote it."""

    def __init__(self, fmt, datefmt):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(fmt, datefmt))
        self.lines = []  # [text, truth id or ""]

    def emit(self, record):
        text = self.format(record)
        ws = getattr(record, "websocket", None)
        conn = str(ws.id) if ws is not None else ""
        for part in text.split("\n"):
            self.lines.append([part, conn])

    def raw(self, text, conn):
        self.lines.append([text, conn])


class Client:
    def __init__(self, name, interval, labeled=False, logger="websockets.client",
                 path="/echo", timeout=1.0, start=0.0, duration=None):
        self.name, self.interval, self.labeled = name, interval, labeled
        self.logger, self.path, self.timeout = logger, path, timeout
        self.start, self.duration = start, duration
        self.id = None

    def truth(self):
        return {"name": self.name, "id": self.id, "source": "python-websockets",
                "labeled": self.labeled, "logger": self.logger,
                "interval_s": self.interval, "dead_peer": dead(self.path)}


class TetherClient:
    def __init__(self, name, interval, fmt="json", path="/echo", timeout=None, frames=False, start=0.0):
        self.name, self.interval, self.fmt, self.path = name, interval, fmt, path
        self.timeout, self.frames, self.start = timeout, frames, start
        self.id = None

    def truth(self):
        return {"name": self.name, "id": self.id, "source": "tether", "labeled": True,
                "logger": "", "interval_s": self.interval, "dead_peer": dead(self.path)}


def dead(path):
    """A connection whose server stops answering: for good (/dead/AFTER) or
    for a while (/stall/AFTER/FOR), long enough for the keepalive to time
    out."""
    return path.startswith("/dead/") or path.startswith("/stall/")


SCENARIOS = {
    # The report: one labeled client at one interval, two unlabeled ones at a
    # shorter interval, all opened together, one logger.
    "report": dict(run=8.6, clients=lambda: [
        Client("A", 1.0, labeled=True),
        Client("B", 0.25),
        Client("C", 0.25),
    ], expect=["interval-mismatch", "unlabeled-stream", "duplicate-connection"]),
    # A peer that stops answering: C's server pauses reading after 2.2 s.
    "timeout": dict(run=6.0, clients=lambda: [
        Client("A", 0.3, labeled=True),
        Client("B", 0.3, start=0.05),
        Client("C", 0.5, path="/dead/2.2", start=0.1),
    ], expect=["ping-timeout", "unlabeled-stream", "interval-mismatch"]),
    # Unlabeled clients that log through loggers of their own; D has its own
    # keepalive off and only sees the server's pings.
    "loggers": dict(run=6.0, server_ping=0.6, clients=lambda: [
        Client("B", 0.4, logger="app.feed"),
        Client("C", 0.4, logger="app.ticker"),
        Client("D", None, logger="app.quiet"),
    ], expect=["unlabeled-stream", "peer-pings-only"]),
    # One file, two libraries: python-websockets and Tether clients of one
    # program, Tether's JSON and text records among python's lines; T2's
    # peer stops answering.
    "mixed": dict(run=7.0, clients=lambda: [
        Client("A", 0.5, labeled=True),
        Client("B", 0.3),
        Client("C", 0.3, start=0.02),
        TetherClient("T1", 0.4, fmt="json", frames=True),
        TetherClient("T2", 0.45, fmt="text", path="/dead/1.5", timeout=0.9),
    ], expect=["interval-mismatch", "unlabeled-stream", "ping-timeout"]),
    # Two unlabeled clients at one cadence, one of whose servers never
    # answers: C logs one ping, its timeout and its 1011 failure, and must
    # stay a stream of its own.
    "unanswered": dict(run=3.0, clients=lambda: [
        Client("B", 0.5),
        Client("C", 0.5, path="/dead/0", start=0.01),
    ], expect=["ping-timeout", "unlabeled-stream"]),
    # One incident: the server stalls for 3 s and all three Tether clients
    # of one program time out together; one finding tells it.
    "stall": dict(run=5.0, clients=lambda: [
        TetherClient("T1", 0.5, path="/stall/1.5/3", timeout=1.0),
        TetherClient("T2", 0.5, path="/stall/1.5/3", timeout=1.0, start=0.01),
        TetherClient("T3", 0.5, path="/stall/1.5/3", timeout=1.0, start=0.02),
    ], expect=["ping-timeout"]),
    # No keepalive at all, at either end: nothing for diagnose to read.
    "quiet": dict(run=1.0, clients=lambda: [
        Client("Q", None, labeled=True),
    ], expect=[]),
}


async def handler(ws, path):
    if path.startswith("/stall/"):
        # Stop reading for a while: every connection's pings in that time go
        # unanswered at once, as when the server's process or host stalls.
        _, _, after, span = path.split("/")
        await asyncio.sleep(float(after))
        ws.transport.pause_reading()
        await asyncio.sleep(float(span))
        ws.transport.resume_reading()
        path = "/echo"
    if path.startswith("/dead/"):
        # Stop reading: pings are no longer answered, the client's keepalive
        # times out.
        await asyncio.sleep(float(path.split("/")[2]))
        ws.transport.pause_reading()
        await ws.wait_closed()
        return
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def run_python_client(c, uri):
    await asyncio.sleep(c.start)
    kw = dict(ping_interval=c.interval, ping_timeout=c.timeout, close_timeout=0.3)
    if c.labeled:
        kw["logger"] = IDAdapter(logging.getLogger(c.logger), None)
    elif c.logger != "websockets.client":
        kw["logger"] = logging.getLogger(c.logger)
    async with websockets.connect(uri + c.path, **kw) as ws:
        c.id = str(ws.id)
        await asyncio.sleep(c.duration)


async def run_tether_client(c, uri, tether, rec):
    await asyncio.sleep(c.start)
    args = [tether, "connect", uri + c.path, "--log-level", "debug", "--log-format", c.fmt,
            "--ping-interval", f"{int(c.interval * 1000)}ms"]
    if c.timeout:
        args += ["--ping-timeout", f"{int(c.timeout * 1000)}ms"]
    if c.frames:
        args.append("--log-frames")
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)

    async def copy():
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            text = line.decode().rstrip("\n")
            m = re.search(r'"conn":"([^"]+)"|conn=(\S+)', text)
            conn = (m.group(1) or m.group(2)) if m else ""
            if conn and c.id is None:
                c.id = conn
            if text.startswith("connection closed:"):
                continue  # connect's own report on stderr, not a log record
            rec.raw(text, conn)

    copier = asyncio.create_task(copy())
    await asyncio.sleep(c.duration)
    proc.stdin.close()
    await proc.wait()
    await copier


async def scenario(name, fmt, tether):
    spec = SCENARIOS[name]
    rec = Recorder(*FORMATS[fmt])
    root = logging.getLogger()
    root.handlers[:] = [rec]
    root.setLevel(logging.DEBUG)
    for quiet in ("asyncio", "gen.server"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    clients = spec["clients"]()
    for c in clients:
        if c.__dict__.get("duration") is None:
            c.duration = spec["run"] - c.start
    server_logger = logging.getLogger("gen.server")
    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=spec.get("server_ping"),
                                close_timeout=0.3, logger=server_logger) as server:
        port = server.sockets[0].getsockname()[1]
        uri = f"ws://127.0.0.1:{port}"
        tasks = []
        for c in clients:
            if isinstance(c, TetherClient):
                tasks.append(run_tether_client(c, uri, tether, rec))
            else:
                tasks.append(run_python_client(c, uri))
        await asyncio.gather(*tasks)
    root.handlers[:] = []
    return rec.lines, clients


def v15(lines):
    """Rewrite a 10.4 log into the wording and order of python-websockets 15
    and later: the ping frame is logged before "% sent keepalive ping", and a
    keepalive timeout reads "- timed out waiting for keepalive pong"."""
    out = [list(l) for l in lines]
    for i, (text, conn) in enumerate(out):
        if text.endswith("% sending keepalive ping"):
            prefix = text[: -len("% sending keepalive ping")]
            for j in range(i + 1, min(i + 40, len(out))):
                if out[j][1] == conn and "> PING " in out[j][0]:
                    frame = out[j][0][out[j][0].index("> PING "):]
                    jprefix = out[j][0][: out[j][0].index("> PING ")]
                    out[i][0] = prefix + frame
                    out[j][0] = jprefix + "% sent keepalive ping"
                    break
        elif "! timed out waiting for keepalive pong" in text:
            out[i][0] = text.replace("! timed out", "- timed out")
    return out


def write(outdir, base, lines, clients, name, fmt, version, expect):
    ids = [c.id for c in clients]
    with open(os.path.join(outdir, base + ".log"), "w") as f:
        for text, _ in lines:
            f.write(text + "\n")
    truth = {
        "scenario": name,
        "format": fmt,
        "python_websockets": version,
        "connections": [c.truth() for c in clients],
        "findings": expect,
        # For each line of the log, the index of the connection that wrote
        # it in "connections", or -1.
        "line_conns": [ids.index(conn) if conn in ids else -1 for _, conn in lines],
    }
    with open(os.path.join(outdir, base + ".truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{base}.log: {len(lines)} lines", file=sys.stderr)


RUNS = [
    # (file base, scenario, format, rewrite to 15+ wording)
    ("report-asctime", "report", "asctime", False),
    ("report-ha", "report", "ha", False),
    ("report-notime", "report", "notime", False),
    ("timeout-asctime", "timeout", "asctime", False),
    ("timeout-v15-ha", "timeout", "ha", True),
    ("loggers-ha", "loggers", "ha", False),
    ("mixed", "mixed", "asctime", False),
    ("unanswered-asctime", "unanswered", "asctime", False),
    ("unanswered-notime", "unanswered", "notime", False),
    ("stall-tether", "stall", "asctime", False),
    ("quiet", "quiet", "asctime", False),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--tether", required=True, help="path to a built tether binary")
    ap.add_argument("--only", help="run only this file base")
    args = ap.parse_args()
    os.environ["TZ"] = "UTC"
    time.tzset()
    for base, name, fmt, rewrite in RUNS:
        if args.only and args.only != base:
            continue
        lines, clients = asyncio.run(scenario(name, fmt, args.tether))
        version = websockets.__version__
        if rewrite:
            lines, version = v15(lines), "15-style (rewritten from " + version + ")"
        expect = list(SCENARIOS[name]["expect"])
        if fmt == "notime":
            expect = [k for k in expect if k != "interval-mismatch"] + ["no-timestamps"]
        write(args.outdir, base, lines, clients, name, fmt, version, expect)


if __name__ == "__main__":
    main()
