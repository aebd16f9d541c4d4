# Developer entry points. `make test` is what CI runs (see .ci/run).

CARGO ?= cargo

.PHONY: all build test check lint fmt clean deb lintian test-deb bench

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

# benchmarks (docs/performance.md): criterion first, then the whole-process
# report, which reads criterion's results of the same run; about 6 minutes;
# not part of `make test`. BENCH_FLAGS="--features mimalloc": with mimalloc
bench:
	$(CARGO) bench $(BENCH_FLAGS) --bench keystore
	$(CARGO) bench $(BENCH_FLAGS) --bench report

clean:
	$(CARGO) clean
	rm -rf build

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
