# Developer entry points. `make test` is what CI runs (see .ci/run).

CARGO ?= cargo

.PHONY: all build test check lint fmt clean

all: build

build:
	$(CARGO) build --workspace --release

# the full CI suite: formatting, lints, every unit, integration and doc test
test: check
	$(CARGO) test --workspace

check: fmt-check lint

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
