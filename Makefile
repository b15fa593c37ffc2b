# The two commands of the README: `make demo` runs everything locally, `make test` runs every test.
# Both install what they need (PostgreSQL + PostGIS, Mosquitto, Chromium, gcc) through apt first;
# that step is quick when everything is present.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: demo test build setup setup-demo bench clean

demo: setup-demo
	$(GO) run ./cmd/aghali demo

test: setup
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

build:
	$(GO) build -o bin/aghali ./cmd/aghali

setup:
	@scripts/setup.sh test

setup-demo:
	@scripts/setup.sh demo

bench: setup
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
