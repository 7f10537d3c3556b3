#!/usr/bin/env bash
# Self-check of the interop peers, no Go involved: each server is driven by the
# other language's client (python client -> node server, node client -> python
# server) and every stdout line is compared with what the protocol promises.
# Usage: interop/peers/selftest.sh   (runs `npm ci` in node/ if ws is not installed)
# Prints one "ok"/"FAIL" line per check and ends with "N passed, N failed"; exit 1 on failure.
set -u
cd "$(dirname "$0")"
PY=/usr/bin/python3
export PEER_TIMEOUT=20
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT
pass=0 fail=0

[ -d node/node_modules/ws ] || (cd node && npm ci --no-audit --no-fund --silent) || exit 1

expect() {  # expect NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then pass=$((pass + 1)); echo "ok   $1"
  else fail=$((fail + 1)); printf 'FAIL %s\n--- expected\n%s\n--- got\n%s\n' "$1" "$2" "$3"; fi
}
start_server() {  # start_server NAME CMD...; sets PORT
  local name=$1; shift
  "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" & PIDS+=($!)
  for _ in $(seq 100); do
    PORT=$(sed -n '1s/^listening \([0-9]*\)$/\1/p' "$TMP/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "FAIL $name did not print 'listening PORT'"; cat "$TMP/$name.err"; exit 1
}
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

MIB=$(head -c 1048576 /dev/zero | tr '\0' x | sha256sum | cut -d' ' -f1)
BIN=$(printf '\x00\x01\x02\xff' | sha256sum | cut -d' ' -f1)
ECHO_IN='{"type":"text","data":"héllo wörld"}
{"type":"binary","data":"AAEC/w=="}
{"type":"binary","size":1048576}'
ECHO_OUT="recv text 13 $(sha 'héllo wörld')
recv binary 4 $BIN
recv binary 1048576 $MIB
closed 1000 bye"

run_suite() {  # run_suite SERVERNAME CLIENTCMD...
  local srv=$1; shift
  local base="ws://127.0.0.1:$PORT" tag="$* -> $srv"
  expect "$tag: echo" "$ECHO_OUT" "$(printf '%s\n' "$ECHO_IN" | "$@" "$base/echo" echo)"
  expect "$tag: ping" "pong 616263
closed 1000 " "$("$@" "$base/echo" ping)"
  expect "$tag: close 4000 done" "closed 4000 done" "$("$@" "$base/echo" close 4000 done)"
  expect "$tag: server close" "closed 4001 go away" "$("$@" "$base/close?code=4001&reason=go%20away" recv)"
  expect "$tag: server ping" "ping 68656c6c6f
recv text 2 $(sha hi)
closed 1000 bye" "$(echo '{"type":"text","data":"hi"}' | "$@" "$base/ping" echo)"
  expect "$tag: unknown path" "error" "$("$@" "$base/nope" recv | cut -d' ' -f1)"
  sleep 0.3  # let the server print the end of the last connection
  expect "$srv: server output" "closed 1000 bye
ping 616263
closed 1000 
closed 4000 done
closed 4001 go away
pong 68656c6c6f
closed 1000 bye" "$(tail -n +2 "$TMP/$srv.out")"
}

start_server node-server node node/server.js
run_suite node-server "$PY" py_client.py
start_server py-server "$PY" py_server.py
run_suite py-server node node/client.js

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
