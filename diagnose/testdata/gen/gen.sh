#!/bin/sh
# Regenerates diagnose's fixtures in diagnose/testdata (see diagnose/doc.go):
#   go generate ./diagnose/      (or: sh diagnose/testdata/gen/gen.sh)
# Needs Debian's python3-websockets (/usr/bin/python3) and takes about two minutes.
# Tether's own logs come from the CLI: `tether serve` and two `tether connect`
# with different intervals, logging to one file as one program would.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
# DIAGNOSE_FIXTURES names another directory to write to (the tests read it
# from the same variable), to check the analysis on fresh runs.
out=${DIAGNOSE_FIXTURES:-$(dirname "$here")}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$tmp"' EXIT
srv=

export TZ=UTC
(cd "$root" && go build -o "$tmp/tether" ./cmd/tether)
/usr/bin/python3 -c 'import websockets' || {
	echo "gen.sh: needs Debian's python3-websockets for /usr/bin/python3" >&2
	exit 1
}

# Tether only: a server pinging every 700ms (text records) and two clients of
# one program at 300ms and 500ms (JSON records, one with frame records).
"$tmp/tether" serve --addr 127.0.0.1:0 --log-level debug --ping-interval 700ms \
	>"$tmp/serve.out" 2>"$out/tether-serve.log" &
srv=$!
i=0
until grep -q listening "$tmp/serve.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "gen.sh: tether serve did not start" >&2; exit 1; }
	sleep 0.05
done
addr=$(sed -n 's#^listening on http://##p' "$tmp/serve.out")
: >"$out/tether-clients.log"
(sleep 4) | "$tmp/tether" connect "ws://$addr/echo" --log-level debug --log-format json \
	--ping-interval 300ms 2>>"$out/tether-clients.log" >/dev/null &
c1=$!
(sleep 0.1; sleep 4) | "$tmp/tether" connect "ws://$addr/echo" --log-level debug --log-format json \
	--ping-interval 500ms --log-frames 2>>"$out/tether-clients.log" >/dev/null &
c2=$!
wait $c1 $c2
kill -INT $srv
wait $srv || true
srv=
echo "tether-serve.log: $(wc -l <"$out/tether-serve.log") lines" >&2
echo "tether-clients.log: $(wc -l <"$out/tether-clients.log") lines" >&2

# python-websockets, and the mixed file.
/usr/bin/python3 "$here/gen.py" "$out" --tether "$tmp/tether" "$@"

# A Tether server's log of its peers' pings (three clients of one python
# process at 2 s, 0.5 s and 0.5 s, two other hosts at 20 s) and the clients'
# log: the report seen from the server, and both ends of each connection.
/usr/bin/python3 "$here/peers.py" "$out" --tether "$tmp/tether"
