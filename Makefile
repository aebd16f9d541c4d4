# Developer entry points. `make test` is what CI runs (see .ci/run).

CARGO ?= cargo

.PHONY: all build test check lint fmt clean fuzz fuzz-build fuzz-seed test-faults soak

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

# --- hardening (docs/security.md) -------------------------------------------

# the fault injection and secrets audit tests alone (all of them are part of
# `make test` too: they take seconds; mounts and user switches need root)
test-faults:
	$(CARGO) test --test integration -- faults:: secrets_audit:: keystore::first_store
	$(CARGO) test --test processes -- faults:: full_disk:: crash::

# `make fuzz SECONDS=N`: each fuzz target for N seconds, one after the other,
# at the lowest CPU priority. cargo-fuzz on the stable toolchain: no
# sanitizer by default (`SANITIZER=address` needs RUSTC_BOOTSTRAP=1, which
# this passes along only then). Seed corpora are copied from the golden
# vectors into fuzz/corpus (git-ignored) at run time; findings land in
# fuzz/artifacts/TARGET/, libFuzzer's output in fuzz/artifacts/TARGET.log.
SECONDS ?= 60
SANITIZER ?= none
FUZZ_TARGETS ?= section_config key_config
VECTORS ?= $(or $(PBS_VECTORS_DIR),../shared/vectors)
FUZZ_ENV = $(if $(filter none,$(SANITIZER)),,RUSTC_BOOTSTRAP=1)
FUZZ_FLAGS = --fuzz-dir fuzz --sanitizer $(SANITIZER) --release --debug-assertions

fuzz-build:
	$(FUZZ_ENV) nice -n 19 cargo fuzz build $(FUZZ_FLAGS)

fuzz-seed:
	mkdir -p fuzz/corpus/section_config fuzz/corpus/key_config
	cp $(VECTORS)/section-config/*.cfg $(VECTORS)/configdir-example/*.cfg fuzz/corpus/section_config/
	cp $(VECTORS)/keys/*.enc $(VECTORS)/configdir-example/encryption-keys/*.enc fuzz/corpus/key_config/

fuzz: fuzz-build fuzz-seed
	@set -e; for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/artifacts/$$target; \
		echo "fuzz: $$target for $(SECONDS) s (log: fuzz/artifacts/$$target.log)"; \
		$(FUZZ_ENV) nice -n 19 cargo fuzz run $(FUZZ_FLAGS) $$target fuzz/corpus/$$target -- \
			-max_total_time=$(SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
			-print_final_stats=1 -artifact_prefix=fuzz/artifacts/$$target/ \
			> fuzz/artifacts/$$target.log 2>&1 \
			|| { tail -n 40 fuzz/artifacts/$$target.log; exit 1; }; \
		grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::)' fuzz/artifacts/$$target.log || true; \
	done
