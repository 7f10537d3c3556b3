# Tether's build. `make test` is what CI runs (.ci/run): it installs the
# interop peers when they are missing, then lints and runs every test.

GO          ?= go
FUZZTIME    ?= 30s
STATICCHECK_VERSION := v0.8.2
BIN         := $(CURDIR)/bin
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NODE_PEERS  := interop/peers/node
BROWSER     := dashboard/browser

.PHONY: test deps lint soak fuzz bench bench-full tether demo-cluster clean

# Every test runs under both engines (docs/scale.md): the event engine,
# where the loops read the sockets, and a reader goroutine per connection.
ENGINES := poll goroutine

test: deps lint
	@for e in $(ENGINES); do \
		echo "== every test, TETHER_ENGINE=$$e"; \
		TETHER_ENGINE=$$e $(GO) test -race -count=1 -timeout 15m ./... || exit 1; \
	done
	@for e in $(ENGINES); do \
		echo "== conformance summary (Autobahn-style cases, both roles), TETHER_ENGINE=$$e"; \
		TETHER_ENGINE=$$e TETHER_CONFORMANCE_SUMMARY=1 $(GO) test -count=1 -v -run 'TestConformance$$' ./conformance/ 2>/dev/null \
			| sed -n '/conformance summary/,/^server: /p'; \
	done

# deps installs the real peers the interop tests talk to, and the browser
# the dashboard test drives, only when missing.
deps: $(NODE_PEERS)/node_modules/.package-lock.json $(BROWSER)/node_modules/.package-lock.json
	@command -v rsvg-convert >/dev/null || { \
		echo "installing librsvg2-bin (rsvg-convert, for the diagnose SVG test)"; \
		$(SUDO) apt-get install -y -q librsvg2-bin || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q librsvg2-bin; }; }
	@/usr/bin/python3 -c 'import websockets' 2>/dev/null || { \
		echo "installing python3-websockets"; \
		$(SUDO) apt-get install -y -q python3-websockets || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-websockets; }; }
	@[ -x /usr/bin/chromium ] || { \
		echo "installing chromium"; \
		$(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }; }

$(NODE_PEERS)/node_modules/.package-lock.json: $(NODE_PEERS)/package-lock.json
	cd $(NODE_PEERS) && npm ci --no-audit --no-fund

$(BROWSER)/node_modules/.package-lock.json: $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(BIN)/staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@# go vet runs the stdversion analyzer: it fails on any standard-library
	@# symbol newer than go.mod's go line, the version importers must have
	@# (README, "Requirements"). The line is the lowest the code and its
	@# dependencies allow: raise it only when one of them needs more.
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	@echo "== builds for other systems (the library and the CLI)"
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...

# soak is the long fault run (about 10 minutes, docs/reliability.md): the
# fault and hostile-input suite at full size (200 resets, 5,000 slowloris
# handshakes), then TestSoak: 2,000 resuming subscribers behind 20 proxies
# for SOAK_FOR under random faults, with its figures at the end. `make test`
# runs the quick version of the same suite.
SOAK_FOR ?= 8m
soak:
	@log=$$(mktemp); TETHER_SOAK=1 TETHER_SOAK_FOR=$(SOAK_FOR) $(GO) test -count=1 -timeout 30m -v ./internal/faults/ \
		>$$log 2>&1; status=$$?; grep -v -e '^=== ' -e '^{' $$log; rm -f $$log; exit $$status

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

# bench is the quick round (about 10 minutes): the Go benchmarks, then Tether
# side by side with its peers (bench/, its own module), written to
# bench/results/latest.md: issue 17's figures first (idle memory at 5,000 and
# 19,000 connections, keepalive CPU per ping at 19,000, echo CPU, handshakes;
# Tether on the engine it picks, on TETHER_ENGINE=goroutine, and `tether
# serve`, against lesismal/nbio and the others) as ratios with their targets.
# Keepalive's own share of the CPU (on minus off) is
# `go run ./internal/cmd/kabench -n 20000 -procs 2`. bench-full is the long
# comparison.
bench: $(NODE_PEERS)/node_modules/.package-lock.json
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@echo "== side by side with the peers (quick): bench/results/latest.md"
	cd bench && $(GO) run ./cmd/benchrun -profile quick

bench-full: $(NODE_PEERS)/node_modules/.package-lock.json
	cd bench && $(GO) run ./cmd/benchrun -profile full

tether:
	$(GO) build -o $(BIN)/tether ./cmd/tether

# demo-cluster runs an embedded NATS server (JetStream) on 127.0.0.1:4222 and
# three `tether serve` nodes, n1-n3 on ports 8081-8083 (docs/cluster.md).
# Enter stops and restarts NATS; Ctrl-C stops everything.
demo-cluster: tether
	$(GO) build -o $(BIN)/democluster ./internal/cmd/democluster
	$(BIN)/democluster -tether $(BIN)/tether

clean:
	rm -rf $(BIN)
