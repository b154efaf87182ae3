# ringmaster build, test and demo entry points.
GO      ?= go
BIN     := bin
CMDS    := ringd ringctl pload
# go test runs up to one package per core at a time (the real-process tests
# pick random ports and namespace names, so packages do not collide);
# testprogress prints each package as it finishes and names the ones still
# running every minute. The concurrent packages then run again under the
# race detector.
TESTFLAGS ?= -timeout 20m
PROGRESS  := $(GO) run ./internal/cmd/testprogress
RACE_PKGS := ./ipc/... ./totem/... ./cpg/... ./votequorum/... ./confdb/... ./lrmd/... ./clients/... ./internal/... ./stonithd/...

.PHONY: all build test test-race lint bench demo fuzz clean staticcheck man

all: build

build:
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

## test: every package's tests (root-only namespace tests included when root),
## then the concurrent packages again under -race.
test: build
	$(PROGRESS) $(TESTFLAGS) ./...
	$(PROGRESS) -race $(TESTFLAGS) $(RACE_PKGS)

lint: staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$$( $(GO) env GOPATH )/bin/staticcheck ./...

staticcheck:
	@test -x $$( $(GO) env GOPATH )/bin/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

## fuzz: run every fuzz target for FUZZTIME each.
FUZZTIME ?= 20s
fuzz:
	@scripts/fuzz-all.sh $(FUZZTIME)

## demo: a 3-node cluster on 127.0.0.1-3 as the current user; Ctrl-C stops it.
demo: build
	@scripts/demo.sh

## man: man pages of every ringctl command (section 8) into man/, generated
## from the command tree (read one with: man -l man/ringctl-crm-status.8).
man: build
	rm -rf man
	$(BIN)/ringctl man man

clean:
	rm -rf $(BIN) man
