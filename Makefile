# Developer entry points. `make test` is what CI runs (see .ci/run).

CARGO ?= cargo

.PHONY: all build demo test check lint fuzz-lock fmt clean deb lintian test-deb bench bench-previous fuzz fuzz-build fuzz-seed test-faults soak test-ui duplicates

all: build

build:
	$(CARGO) build --workspace --release

# `make demo`: README.md's quick start as written - the sh block between its
# quick-start markers (tests/readme.rs runs the same block) - with the
# release binaries, each line of the block printed before it runs. The trap
# stops the daemon the block starts if a later line fails (the block stops
# it itself otherwise).
demo:
	$(CARGO) build --release --bins
	@{ echo 'trap '"'"'[ -z "$${API:-}" ] || kill $$API 2>/dev/null || true'"'"' EXIT'; \
	   echo 'set -v'; \
	   sed -n '/^<!-- quick-start/,/^<!-- \/quick-start -->/p' README.md | sed '/^<!--/d; /^```/d'; \
	} > target/demo.sh
	@echo "make demo: running README.md's quick start (target/demo.sh)"
	@sh -e target/demo.sh

# the full CI suite: formatting, lints, every unit, integration and doc test
test: check
	$(CARGO) test --workspace

check: fmt-check lint fuzz-lock

# the fuzz crate is its own workspace with its own Cargo.lock: a dependency
# added to a crate it builds must land there too (cargo fuzz builds it
# --locked); this checks that without building it
fuzz-lock:
	$(CARGO) metadata --locked --manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null

fmt-check:
	$(CARGO) fmt --all -- --check

# --all-targets leaves out test = false targets: the browser tests too
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --test ui -- -D warnings

fmt:
	$(CARGO) fmt --all

# benchmarks (docs/performance.md): criterion first, then the whole-process
# report, which reads criterion's results of the same run; about 6 minutes;
# not part of `make test`. BENCH_FLAGS="--features mimalloc": with mimalloc
bench:
	$(CARGO) bench $(BENCH_FLAGS) --bench keystore
	$(CARGO) bench $(BENCH_FLAGS) --bench report

# the whole-process list of this tree against PREVIOUS_REV's, side by side in
# one run (issue 20): builds PREVIOUS_REV's release proxmox-backup-manager in
# target/previous/REV (from `git archive`, its own target dir), then runs the
# report's `previous` part. The default is main as it was when issue 20 was
# filed.
PREVIOUS_REV ?= 8027def
PREVIOUS_DIR = $(CURDIR)/target/previous/$(PREVIOUS_REV)
bench-previous:
	test -x $(PREVIOUS_DIR)/target/release/proxmox-backup-manager || { \
	    rm -rf $(PREVIOUS_DIR) && mkdir -p $(PREVIOUS_DIR) && \
	    git archive $(PREVIOUS_REV) | tar -x -C $(PREVIOUS_DIR) && \
	    cd $(PREVIOUS_DIR) && $(CARGO) build --release --locked --bin proxmox-backup-manager; }
	PBS_BENCH_ONLY=previous PBS_BENCH_PREVIOUS=$(PREVIOUS_DIR)/target/release/proxmox-backup-manager \
	    $(CARGO) bench $(BENCH_FLAGS) --bench report

clean:
	$(CARGO) clean
	rm -rf build

# `make test-ui`: the key management page in headless Chromium through
# chromedriver (tests/ui/, docs/ui.md), against a daemon on 127.0.0.1 with
# a temporary config dir; screenshots of every view in
# target/ui-screenshots/. Installs Debian's chromium and chromium-driver
# when missing (as root). About a minute; .ci/run runs it after `make test`.
# --workspace: the features of `make test`'s build, so nothing is built again
UI_DEBS := chromium chromium-driver

test-ui:
	$(call need-debs,$(UI_DEBS))
	$(CARGO) test --workspace --test ui

# --- hardening (docs/security.md) -------------------------------------------

# the fault injection and secrets audit tests alone (all of them are part of
# `make test` too: they take seconds; mounts and user switches need root)
test-faults:
	$(CARGO) test --test integration -- faults:: secrets_audit::
	$(CARGO) test --test processes -- faults:: full_disk:: crash:: daemon::

# `make soak`: the API daemon on loopback for SOAK_SECONDS under SOAK_CLIENTS
# clients doing mixed operations (examples/soak.rs: bounded, stops by
# itself, fails on unexpected answers, growing RSS or fds, or an unclean
# verify). Not part of `make test`.
SOAK_SECONDS ?= 600
SOAK_CLIENTS ?= 16

soak:
	$(CARGO) build --release --bins --example soak
	nice -n 10 $(CARGO) run --release --example soak -- $(SOAK_SECONDS) $(SOAK_CLIENTS)

# `make fuzz SECONDS=N`: each fuzz target for N seconds, one after the other,
# at the lowest CPU priority. cargo-fuzz on the stable toolchain: no
# sanitizer by default (`SANITIZER=address` needs RUSTC_BOOTSTRAP=1, which
# this passes along only then). Seed corpora are copied from the golden
# vectors into fuzz/corpus (git-ignored) at run time; findings land in
# fuzz/artifacts/TARGET/, libFuzzer's output in fuzz/artifacts/TARGET.log.
SECONDS ?= 60
SANITIZER ?= none
FUZZ_TARGETS ?= section_config key_config access_config api_request api_auth
VECTORS ?= $(or $(PBS_VECTORS_DIR),../shared/vectors)
FUZZ_ENV = $(if $(filter none,$(SANITIZER)),,RUSTC_BOOTSTRAP=1)
FUZZ_FLAGS = --fuzz-dir fuzz --sanitizer $(SANITIZER) --release --debug-assertions

fuzz-build:
	$(FUZZ_ENV) nice -n 19 cargo fuzz build $(FUZZ_FLAGS)

# seeds: the golden vectors, and for the access files and API requests a few
# hand-written inputs (there are no vectors for them)
fuzz-seed:
	mkdir -p $(addprefix fuzz/corpus/,section_config key_config access_config api_request api_auth)
	cp $(VECTORS)/section-config/*.cfg $(VECTORS)/configdir-example/*.cfg fuzz/corpus/section_config/
	cp $(VECTORS)/keys/*.enc $(VECTORS)/configdir-example/encryption-keys/*.enc fuzz/corpus/key_config/
	printf 'acl:1:/:root@pam!t,alice@pbs:Admin\nacl:0:/system/encryption-keys:@admins,bob@pbs!x:Audit,NoAccess\n' > fuzz/corpus/access_config/seed-acl
	printf 'user: alice@pbs\n\tcomment Alice\n\tenable 1\n\texpire 0\n\ntoken: alice@pbs!t1\n\tenable 0\n' > fuzz/corpus/access_config/seed-user
	printf 'GET\n/api2/json/config/encryption-keys?include-archived=True&_dc=1\n\n' > fuzz/corpus/api_request/seed-list
	printf 'POST\n/api2/json/access/ticket\napplication/x-www-form-urlencoded\nusername=alice%%40pbs&password=a+b%%20c' > fuzz/corpus/api_request/seed-ticket
	printf 'DELETE\n/api2/json/config/encryption-keys/k-1/?digest=%s\n\n' $$(printf '%064d' 0) > fuzz/corpus/api_request/seed-delete
	printf 'GET\n/api2/json/config/encryption-keys/k%%2D1/verify\n\n' > fuzz/corpus/api_request/seed-verify
	{ printf 'POST\n/api2/json/config/encryption-keys\napplication/x-www-form-urlencoded\nid=k-1&key='; cat $(VECTORS)/keys/unprotected.enc; } > fuzz/corpus/api_request/seed-import-form
	{ printf 'POST\n/api2/json/config/encryption-keys\nApplication/JSON; charset=utf-8\n{"id":"k-2","key":'; python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()), end="")' $(VECTORS)/keys/unprotected.enc; printf '}'; } > fuzz/corpus/api_request/seed-import-json
	printf 'PBSAPIToken=root@pam!admin:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n\n' > fuzz/corpus/api_auth/seed-token
	printf 'PBSAPIToken alice@pbs!t1:secret%%20with%%20spaces\nother=1\n' > fuzz/corpus/api_auth/seed-token-space
	printf '\nPBSAuthCookie=PBS:alice@pbs:6B03A161::V848lNlqz2rqs+vKH3oT9ZX1IRs/jTf+xDKu73eRmzPntLu4ElONZsuLzNcsmFUO74IOBXi7HXF6u64tAA; x=y\n6B03A161:D17PR2/SuQeS1Hb7V923iCdZkYbMSVdJOtSw4Tlk3Ak\n' > fuzz/corpus/api_auth/seed-ticket

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


# --- Debian package (docs/packaging.md) -------------------------------------
# `make deb` builds build/$(PACKAGE)_<version>_<arch>.deb from a copy of the
# work tree (tracked and untracked, not ignored files) and runs lintian on it;
# `make test-deb` installs it into a fresh Debian root (debootstrap, cached in
# /var/cache/pbs-keystore/test-deb) and checks the maintainer scripts. Neither
# is part of `make test`. Missing Debian tools are installed when run as root.

PACKAGE := proxmox-backup-keystore
DEB_VERSION = $(shell dpkg-parsechangelog -S Version)
DEB_ARCH = $(shell dpkg-architecture -qDEB_BUILD_ARCH)
BUILDDIR = build/$(PACKAGE)-$(DEB_VERSION)
DEB ?= build/$(PACKAGE)_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_TOOLS := dpkg-dev debhelper lintian libssl-dev libcrypt-dev pkg-config
TEST_DEB_TOOLS := debootstrap curl

# $(call need-debs,PACKAGES): install what is missing (once, as root)
need-debs = @missing=""; for p in $(1); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "make $@: installing$$missing"; \
	    apt-get install -y -q --no-install-recommends $$missing || \
	    { apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; } || \
	    { echo "make $@: cannot install$$missing - install them by hand" >&2; exit 1; }; \
	fi

deb:
	$(call need-debs,$(DEB_TOOLS))
	rm -rf $(BUILDDIR) $(BUILDDIR).tmp
	mkdir -p $(BUILDDIR).tmp
	git ls-files -z --cached --others --exclude-standard | \
	    xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
	    tar --null -T - -cf - | tar -xf - -C $(BUILDDIR).tmp
	git rev-parse HEAD > $(BUILDDIR).tmp/debian/repoid
	mv $(BUILDDIR).tmp $(BUILDDIR)
	rm -f build/$(PACKAGE)_$(DEB_VERSION)_*
	cd $(BUILDDIR) && CARGO_TARGET_DIR=$(CURDIR)/target dpkg-buildpackage -b -uc -us
	@echo "built $(DEB)"
	$(MAKE) --no-print-directory lintian

lintian:
	$(call need-debs,lintian)
	lintian --display-info --fail-on error $(DEB)

# with DEB=FILE on the command line, tests that package instead of building
test-deb: $(if $(filter command line,$(origin DEB)),,deb)
	$(call need-debs,$(TEST_DEB_TOOLS))
	tests/deb/test-deb.sh $(DEB)

# --- code health ------------------------------------------------------------
# `make duplicates`: the repeated-code scan (pairs of places sharing six or
# more identical or same-shape lines), with the `duplicates` command of the
# developers' tool library; not part of `make test`
DUPLICATES_MOST ?= 40

duplicates:
	@command -v duplicates >/dev/null 2>&1 || { \
	    echo "make duplicates: the 'duplicates' command is not on PATH (it comes with the developers' tool library)" >&2; exit 1; }
	duplicates --seconds 120 --most $(DUPLICATES_MOST)
