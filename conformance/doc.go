// Package conformance is Tether's protocol conformance suite, modeled on the
// Autobahn|Testsuite case families 1-7 and 9 and written from their case
// descriptions.
//
// Every case runs in two roles. In the server role a Tether echo server
// (Accept, then Read and Write back) is driven by a raw-frame test client; in
// the client role a Tether echo client (Dial, then Read and Write back) is
// driven by a raw-frame test server. The test peer speaks the wire format on
// its own (it does not use internal/wire), so it can send anything: masked or
// not, any RSV bits and opcodes, any fragmentation, chopped into TCP writes of
// any size. It checks byte by byte what Tether sends back: echoed payloads,
// pong payloads, the close code, and that the TCP connection then closes.
//
// Cases are named as Autobahn names them ("1.1.1", "5.6", "7.9.3"), so that
// coverage is visible; cases Tether adds are "9.9.x" (read limit) and "X.x.x"
// (masking direction, framing corner cases). Run them with
//
//	go test -race -count=1 ./conformance/
//	go test -run 'TestConformance/server/5\.' -v ./conformance/
//
// With -v, or with TETHER_CONFORMANCE_SUMMARY=1, the run ends with a table of
// every case and role. Cases that fail because of a known library bug are
// listed in knownBugs (bugs_test.go): they are reported as skipped with the
// bug named, and show as BUG in the table, until the library is fixed; with
// TETHER_CONFORMANCE_STRICT=1 they fail like any other case. TestBugRepro
// holds a minimal reproduction of each, run with TETHER_CONFORMANCE_REPRO=1.
//
// Cases that may crash the process (X.3.x) run in a child process of the
// test binary. Family 9's large cases never run at the same time as the
// others, whose close frames are timed: a failing case must see Tether's
// close frame within 1 s of the bad input, and the TCP connection end
// within 1 s of that. -short skips the large cases.
package conformance
