#!/bin/sh
# Runs every go test -fuzz target of the module for FUZZTIME each.
#
# Go's fuzzer sometimes ends a clean run with "context deadline exceeded"
# when the time runs out while a worker is minimizing an input
# (golang/go#56238, #48820). That is not a crash: such a run is retried
# once. A real crash prints "Failing input" and fails at once.
set -u
FUZZTIME=${FUZZTIME:-30s}
GO=${GO:-go}
status=0
for pkg in $($GO list ./...); do
	for t in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		echo "== $pkg $t ($FUZZTIME)"
		for attempt in 1 2; do
			out=$($GO test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 10x "$pkg" 2>&1)
			rc=$?
			echo "$out" | grep -E 'execs: ' | tail -1
			if [ $rc -eq 0 ]; then
				echo "ok"
				break
			fi
			if [ $attempt -eq 1 ] && echo "$out" | grep -q 'context deadline exceeded' && ! echo "$out" | grep -q 'Failing input'; then
				echo "(fuzzer timed out while minimizing; retrying once)"
				continue
			fi
			echo "$out" | tail -30
			status=1
			break
		done
	done
done
exit $status
