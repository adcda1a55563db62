# Pinned tools, installed into ./bin with `go install` from the Go module proxy.
TEMPORAL_VERSION      := v1.5.1
BUF_VERSION           := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
CONNECT_GO_VERSION    := v1.19.1
GNOSTIC_VERSION       := v0.7.1
PROTOVALIDATE_VERSION := v1.2.2
GREMLINS_VERSION      := v0.5.0

export GOBIN := $(CURDIR)/bin
export PATH  := $(CURDIR)/bin:$(PATH)
# Tests and `paymentsd dev` find the Temporal CLI here.
export PAYMENTS_TEMPORAL_CLI := $(CURDIR)/bin/temporal
export PAYMENTS_STRIPE_MOCK  := $(CURDIR)/bin/stripe-mock

GOMODCACHE := $(shell go env GOMODCACHE)

.PHONY: dev test browser chaos bench mutate mutate-rerun mutationreport build tools proto-tools proto-deps generate check-generate lint fmt vet clean

## dev: run the whole platform locally (SQLite, sandbox gateway, Temporal dev server + UI, API, worker)
dev: bin/temporal build
	bin/paymentsd dev

## test: vet and run every test with the race detector (store tests also on MySQL when PAYMENTS_TEST_MYSQL_DSN is set)
test: bin/temporal bin/stripe-mock browser
	go vet ./...
	go test -race -count=1 ./...

# Chromium for the test of the /docs page in a browser
# (TestDocsPageInABrowser): Debian's chromium package, installed when it is
# missing and apt-get can (as root); otherwise this says how to get it, and
# the test fails saying the same.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && [ -z "$$PAYMENTS_CHROMIUM" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium package for the test of /docs in a browser"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
	      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else \
	    echo "Chromium is missing: install Debian's chromium package (apt-get install chromium) or set PAYMENTS_CHROMIUM; TestDocsPageInABrowser fails without it" >&2; \
	  fi; \
	fi

## chaos: the full chaos suite (10,000 model steps under SIGKILLs of the worker and the API, MariaDB restarts and gateway faults, the card data scan, then CreatePayment held open-loop at 50/80/100% of capacity); prints the table docs/RELIABILITY.md records (make test runs a short version)
# CHAOS_SEED replays a run's steps; CHAOS_LANES runs them in that many lanes
# at once (4 by default), each on accounts of its own.
CHAOS_SEED ?=
CHAOS_LANES ?=
chaos: bin/temporal
	PAYMENTS_CHAOS=full PAYMENTS_CHAOS_SEED=$(CHAOS_SEED) PAYMENTS_CHAOS_LANES=$(CHAOS_LANES) go test -count=1 -timeout 300m -run 'TestChaos$$' -v ./tests/chaos/

## bench: payments/s through CreatePayment against empty workflows/s on one Temporal dev server (docs/PERFORMANCE.md), then the transaction history on MySQL (BenchmarkHistory)
BENCH_CLIENTS ?= 16
BENCH_SECONDS ?= 20
# BenchmarkHistory seeds a fresh database on the MySQL/MariaDB server of
# PAYMENTS_TEST_MYSQL_DSN (root@tcp(127.0.0.1:3306)/test when unset; it fails
# when the server is unreachable) with 10,000 then BENCH_HISTORY_ROWS rows,
# and reports ListTransactions' p50 latencies (first page at 10k, deep page
# at BENCH_HISTORY_ROWS) and its throughput through the API against a bare
# net/http + database/sql handler, with BENCH_HISTORY_CLIENTS clients for
# BENCH_HISTORY_SECONDS per side. More knobs atop tests/bench/history_test.go.
BENCH_HISTORY_ROWS    ?= 1000000
BENCH_HISTORY_CLIENTS ?= 8
BENCH_HISTORY_SECONDS ?= 6
bench: bin/temporal
	BENCH_CLIENTS=$(BENCH_CLIENTS) BENCH_SECONDS=$(BENCH_SECONDS) go test -run '^$$' -bench BenchmarkPlatform -benchtime 1x -count 1 ./tests/bench/
	BENCH_HISTORY_ROWS=$(BENCH_HISTORY_ROWS) BENCH_HISTORY_CLIENTS=$(BENCH_HISTORY_CLIENTS) BENCH_HISTORY_SECONDS=$(BENCH_HISTORY_SECONDS) \
	  go test -timeout 60m -run '^$$' -bench BenchmarkHistory -benchtime 1x -count 1 ./tests/bench/

## mutate: mutation testing with gremlins, slow and not part of CI; writes each package's figures to docs/TESTING.md (MUTATE_PKGS='./internal/money ./internal/store' for a subset)
# Each path is given to gremlins as a directory, which it walks with its
# sub-packages (./workflows/... is the same as ./workflows); the report splits
# the figures per package and merges them with those already in the file.
# GOFLAGS=-count=1 keeps gremlins from timing its coverage run on cached test
# results, which would make it time out every mutant. PAYMENTS_TEST_MYSQL_DSN,
# when set, is passed on: store-backed tests then run on MySQL too. The
# profile of a test run that runs no test (.blocks) lists every coverage block:
# the report marks NOT COVERED mutants outside them, which gremlins never runs,
# and runs them itself with the package's tests (MUTATE_BLIND=0: it does not).
# The test helpers of MUTATE_SKIP are left out of the report.
MUTATE_PKGS    ?= ./workflows/payment ./workflows/refund ./workflows/dispute ./workflows/maintenance ./internal/money ./internal/auth ./internal/store ./internal/gateway
MUTATE_SKIP    ?= internal/store/storetest internal/gateway/stripe/stripemock
MUTATE_TIMEOUT ?= 10
MUTATE_BLIND   ?= 1
# Bound on one test run of a mutant the report runs itself (a mutant that
# makes a loop endless would otherwise hold a worker for 10 minutes).
MUTATE_RUN_TIMEOUT ?= 2m
MUTATE_FLAGS   ?=
MUTATE_OUT     := .mutate
# The digest of a package tree's non-test Go files, to tell whether the code
# under test is still the one gremlins mutated ($$d: the tree).
MUTATE_DIGEST   = find ./$$d -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64
# The shell that names the tree of $$p ($$d) and its report files ($$out).
MUTATE_NAMES  = d=$${p%/...}; d=$${d\#./}; out=$(CURDIR)/$(MUTATE_OUT)/$$(printf %s "$$d" | tr / _)
# The shell that writes the coverage blocks of $$d and runs the report
# program on its gremlins JSON; $(1): more flags for the report.
MUTATE_REPORT = go test -count=1 -run '^$$' -coverprofile="$$out.blocks" ./$$d/... >/dev/null; \
	PAYMENTS_TEST_MYSQL_DSN='$(PAYMENTS_TEST_MYSQL_DSN)' $(MUTATE_OUT)/mutationreport -doc docs/TESTING.md \
	-blind-timeout $(MUTATE_RUN_TIMEOUT) $(1) -blocks "$$out.blocks" $(if $(filter 1,$(MUTATE_BLIND)),-run-blind) \
	-skip '$(MUTATE_SKIP)' $(if $(PAYMENTS_TEST_MYSQL_DSN),-mysql) "$$d=$$out.json"
MUTATE_DSN_SAYS = PAYMENTS_TEST_MYSQL_DSN $(if $(PAYMENTS_TEST_MYSQL_DSN),set,not set)

mutate: bin/gremlins bin/stripe-mock mutationreport
	@set -e; for p in $(MUTATE_PKGS); do \
	  $(MUTATE_NAMES); rm -f "$$out.json" "$$out.blocks"; \
	  echo "gremlins unleash ./$$d ($(MUTATE_DSN_SAYS))"; \
	  GOFLAGS=-count=1 PAYMENTS_TEST_MYSQL_DSN='$(PAYMENTS_TEST_MYSQL_DSN)' \
	    bin/gremlins unleash --timeout-coefficient $(MUTATE_TIMEOUT) $(MUTATE_FLAGS) ./$$d -o "$$out.json"; \
	  if [ ! -f "$$out.json" ]; then echo "gremlins wrote no report for ./$$d (no mutants?)" >&2; exit 1; fi; \
	  $(MUTATE_DIGEST) > "$$out.src"; \
	  $(call MUTATE_REPORT); \
	done

## mutate-rerun: after adding tests, run again only the mutants of the last make mutate that did not die (same MUTATE_PKGS; the code under test must be unchanged)
# A killed mutant stays killed when tests are only added, so this gives the
# figures of a full run in a fraction of its time. It refuses a package
# whose non-test code changed since its make mutate (digest in .src).
mutate-rerun: bin/stripe-mock mutationreport
	@set -e; for p in $(MUTATE_PKGS); do \
	  $(MUTATE_NAMES); \
	  if [ ! -f "$$out.json" ] || [ ! -f "$$out.src" ]; then echo "no make mutate report for ./$$d: run make mutate first" >&2; exit 1; fi; \
	  if [ "$$($(MUTATE_DIGEST))" != "$$(cat "$$out.src")" ]; then echo "the code of ./$$d changed since its make mutate: run make mutate again" >&2; exit 1; fi; \
	  echo "rerun of the surviving mutants of ./$$d ($(MUTATE_DSN_SAYS))"; \
	  PAYMENTS_TEST_MYSQL_DSN='$(PAYMENTS_TEST_MYSQL_DSN)' go test -count=1 -coverprofile="$$out.cover" ./$$d/... >/dev/null; \
	  $(call MUTATE_REPORT,-rerun "$$out.cover"); \
	done

# The report program of make mutate, built for each run (it is small).
mutationreport:
	@mkdir -p $(MUTATE_OUT)
	go build -o $(MUTATE_OUT)/mutationreport ./internal/mutationreport

build:
	go build -o bin/paymentsd ./cmd/paymentsd

tools: bin/temporal bin/stripe-mock proto-tools

# The Temporal CLI holds Temporal's server and UI: `paymentsd dev` and the
# tests run it as their local Temporal. It is by far the longest build here,
# about 1,300 packages, and no pinned way to get it from the Go module proxy
# compiles less, so the recipe says so first and counts the packages as they
# compile (go install -v prints each one). -s -w leaves out the debug
# information nobody debugs this binary with (40 MB of its 250 MB; the link
# is barely shorter) and, being a link flag only, keeps the compiled packages
# shareable with every other build through Go's build cache. Bash, for
# pipefail: a failed build must fail the target despite the counting pipe.
bin/temporal: SHELL := /bin/bash
bin/temporal: .SHELLFLAGS := -o pipefail -c
bin/temporal:
	@echo "make: building the Temporal CLI $(TEMPORAL_VERSION) into bin/temporal, the local Temporal server and UI that paymentsd dev and the tests run."
	@echo "make: the first build compiles about 1,300 packages: 15 to 20 minutes on 2 cores. Later runs reuse bin/temporal."
	@go install -v -ldflags='-s -w' github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION) 2>&1 | \
	  awk '/ / { print; next } { n++; if (n % 100 == 0) printf "make: %d of about 1,300 packages of the Temporal CLI compiled\n", n; fflush() } \
	       END { printf "make: %d packages of the Temporal CLI compiled\n", n }'

bin/gremlins:
	go install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)

proto-tools: bin/buf bin/protoc-gen-go bin/protoc-gen-connect-go bin/protoc-gen-openapi

bin/buf:
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
bin/protoc-gen-go:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
bin/protoc-gen-connect-go:
	go install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(CONNECT_GO_VERSION)
bin/protoc-gen-openapi:
	go install github.com/google/gnostic/cmd/protoc-gen-openapi@$(GNOSTIC_VERSION)

# The Buf Schema Registry is unreachable here: the imported .proto files come
# from the Go module cache into .proto-deps, the second module of buf.yaml.
proto-deps:
	go mod download github.com/bufbuild/protovalidate@$(PROTOVALIDATE_VERSION) github.com/google/gnostic@$(GNOSTIC_VERSION)
	rm -rf .proto-deps
	mkdir -p .proto-deps/buf/validate .proto-deps/google/api
	cp $(GOMODCACHE)/github.com/bufbuild/protovalidate@$(PROTOVALIDATE_VERSION)/proto/protovalidate/buf/validate/validate.proto .proto-deps/buf/validate/
	cp $(GOMODCACHE)/github.com/google/gnostic@$(GNOSTIC_VERSION)/cmd/protoc-gen-openapi/examples/google/api/annotations.proto \
	   $(GOMODCACHE)/github.com/google/gnostic@$(GNOSTIC_VERSION)/cmd/protoc-gen-openapi/examples/google/api/http.proto .proto-deps/google/api/
	chmod -R u+w .proto-deps

## generate: regenerate protobuf/Connect/OpenAPI and ent code (cmd/openapi-gen completes protoc-gen-openapi's document)
generate: proto-tools proto-deps
	buf format proto -w
	buf lint
	rm -rf proto/payments/v1/*.pb.go proto/payments/v1/paymentsv1connect api/openapi/openapi.yaml
	buf generate
	go run ./cmd/openapi-gen api/openapi/openapi.yaml
	go generate ./ent/...

## check-generate: fail when committed generated code is stale
check-generate: generate
	@git diff --exit-code -- proto api/openapi ent || (echo "generated code is stale: run make generate and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- proto api/openapi ent)" || (git status --porcelain -- proto api/openapi ent; echo "generated files are not committed" >&2; exit 1)

lint: proto-tools proto-deps
	buf lint
	buf format proto -d --exit-code
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin .proto-deps

## stripe-mock for the gateway contract tests
STRIPE_MOCK_VERSION := v0.203.0
bin/stripe-mock:
	go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
