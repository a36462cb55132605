# ckpt — see README.md. `make demo` runs the main job, `make test` the tests.
GO        ?= go
# containers/storage's btrfs driver needs libbtrfs headers (cgo); ckpt uses
# overlay or vfs, so leave btrfs out, as podman's builds without libbtrfs do.
export GOFLAGS := -tags=exclude_graphdriver_btrfs -buildvcs=false
PKGS      := ./...
FUZZTIME  ?= 30s
# FUZZMINIMIZE bounds the minimization of each new input by executions:
# with a time bound, slow targets spent their whole FUZZTIME minimizing.
FUZZMINIMIZE ?= 100x
BIN       := bin

.PHONY: all build test test-unit fmt-check vet lint deps demo bench fuzz fuzz-smoke clean workloads

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# deps installs CRIU >= 4, runc and iptables when missing (scripts/deps.sh;
# `bash scripts/deps.sh --plan` shows what it would do); quick when done.
deps:
	bash scripts/deps.sh

# workloads builds the static test workload used by the engine tests and the demo.
workloads:
	$(MAKE) -C testdata/workloads

# test is the README's test command and what .ci/run runs: set-up, static
# checks, then every test (the real-CRIU ones need root, CRIU and runc; under
# CI=true they fail instead of skipping when those are missing).
test: deps fmt-check vet lint workloads
	$(GO) test -race -count=1 -timeout 45m $(PKGS)

# test-unit runs the tests without installing anything.
test-unit:
	$(GO) test -count=1 $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

lint:
	$(GO) tool staticcheck $(PKGS)
	$(GO) mod tidy -diff

fuzz-smoke:
	$(GO) test -run='^$$' -fuzz='^FuzzReader$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./format

# fuzz runs each native fuzz target for FUZZTIME; crashers land in the
# package's testdata/fuzz and are committed (go test then runs them).
FUZZPKGS := ./format ./format/criuimg ./inspect ./fuzz ./rootfs
fuzz:
	@set -e; for p in $(FUZZPKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
			echo "== $$p $$t"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) $$p; \
		done; done

demo: deps build workloads
	bash scripts/demo.sh

bench: deps build workloads
	bash bench/run.sh

clean:
	rm -rf $(BIN)
