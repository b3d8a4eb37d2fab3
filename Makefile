# vsockify — see README.md.  Outputs go to build/.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib/vsockify
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=
B          := build

CC         ?= cc
WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS     ?= -O2 -g
BASEFLAGS  := -std=gnu11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN)
SAN        := -fsanitize=address,undefined -fno-omit-frame-pointer

CORE_SRC   := $(wildcard shim/core/*.c)
SHIM_SRC   := shim/init.c shim/log.c shim/fdtable.c shim/swap.c shim/hybrid.c shim/early.c \
              shim/hooks_common.c shim/hooks_socket.c shim/hooks_connect.c shim/hooks_listen.c \
              shim/hooks_names.c shim/hooks_options.c shim/hooks_send.c \
              shim/hooks_fd.c shim/hooks_resolve.c shim/hooks_exec.c
HEADERS    := $(wildcard shim/*.h shim/core/*.h)
HELPERS    := $(patsubst tests/helpers/%.c,$(B)/helpers/%,$(wildcard tests/helpers/*.c))
# Go test programs (tests/helpers/go/), built offline against Debian's
# packaged Go libraries (golang-*-dev) in GOPATH mode.
GO         ?= go
GO_DIRS    := $(wildcard tests/helpers/go/*/main.go)
GO_HELPERS := $(patsubst tests/helpers/go/%/main.go,$(B)/helpers/go/%,$(GO_DIRS))
GO_ENV     := GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off \
              GOCACHE=$(abspath $(B))/go-cache $(if $(GOARCH),GOARCH=$(GOARCH))
HAVE_GO    := $(shell command -v $(GO) 2>/dev/null)
HAVE_CC    := $(shell command -v $(CC) 2>/dev/null)

.PHONY: all check check-host check-vm check-arm64 demo deps install uninstall clean asan asan-build \
        bench valgrind fuzz stress tsan go-helpers musl musl-if-there aarch64 aarch64-if-there

# Static builds of some helpers: programs only the supervisor can translate.
STATIC_HELPERS := $(B)/helpers/static/supprobe $(B)/helpers/static/addrcheck \
                  $(B)/helpers/static/vsbench

all: $(B)/libvsockify.so $(B)/vsockify $(B)/vsockify-vm $(B)/test_core $(HELPERS) $(STATIC_HELPERS) \
     go-helpers $(B)/stress/stress-static

# The stress program, static: tests/vm/stress.bats runs it without the
# supervisor too, as the control that must fail.
$(B)/stress/stress-static: tests/stress/stress.c tests/stress/run.sh | $(B)
	@VSOCKIFY_BUILD_DIR=$(B) CC=$(CC) tests/stress/run.sh --build-only --supervised

# The preloaded stress program.  Natively tests/stress/run.sh builds it on
# demand; an arm64 guest has no compiler, so make aarch64 builds it here.
$(B)/stress/stress: tests/stress/stress.c tests/stress/run.sh | $(B)
	@VSOCKIFY_BUILD_DIR=$(B) CC=$(CC) tests/stress/run.sh --build-only

# The throwaway vsock VM (man/vsockify-vm.1): a script, copied so that
# build/ holds every command.
$(B)/vsockify-vm: shim/vsockify-vm | $(B)
	@install -m 0755 $< $@

$(B)/libvsockify.so: $(CORE_SRC) $(SHIM_SRC) $(HEADERS) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -shared -Wl,-z,defs -Wl,-z,now -o $@ \
	    $(CORE_SRC) $(SHIM_SRC) -ldl -pthread

# The wrapper checks rules with the same core the library uses.
# It also holds the supervisor (shim/super_*.c, docs/supervisor.md).
SUPER_SRC  := shim/super_launch.c shim/super_calls.c shim/super_dns.c
$(B)/vsockify: shim/vsockify.c $(SUPER_SRC) $(CORE_SRC) $(HEADERS) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DVSK_VERSION='"$(VERSION)"' \
	    -DVSK_LIBDIR='"$(LIBDIR)"' -Ishim -o $@ $< $(SUPER_SRC) $(CORE_SRC) -pthread

$(B)/test_core: tests/unit/test_core.c $(CORE_SRC) shim/core/core.h | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -Ishim -o $@ $< $(CORE_SRC)

$(B)/helpers/%: tests/helpers/%.c tests/helpers/malloc_storm.h | $(B)
	@mkdir -p $(B)/helpers
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $<

$(B)/helpers/static/%: tests/helpers/%.c | $(B)
	@mkdir -p $(B)/helpers/static
	@$(CC) $(BASEFLAGS) $(CFLAGS) -static -o $@ $< 2>$@.err || { cat $@.err >&2; exit 1; }
	@grep -v 'statically linked applications requires\|: in function' $@.err >&2 || true; rm -f $@.err

# Static, pure Go (what the preload library cannot reach), and one cgo
# build of gonet, dynamic like most packaged Go programs.
# go is looked for when the rule runs, not when make reads this file: make
# check installs golang-go (deps) in the same make run, after parsing.
ifeq ($(HAVE_GO),)
go-helpers:
	@if command -v $(GO) >/dev/null 2>&1; then $(MAKE) --no-print-directory go-helpers; \
	else echo "go not found: skipping the Go test helpers (make deps installs golang-go)"; fi
else
go-helpers: $(GO_HELPERS) $(if $(HAVE_CC),$(B)/helpers/go/gonet-cgo)

$(B)/helpers/go/%: tests/helpers/go/%/main.go | $(B)
	@mkdir -p $(B)/helpers/go
	$(GO_ENV) CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./$(<D)

$(B)/helpers/go/gonet-cgo: tests/helpers/go/gonet/main.go | $(B)
	@mkdir -p $(B)/helpers/go
	$(GO_ENV) CGO_ENABLED=1 CC=$(CC) $(GO) build -trimpath -o $@ ./$(<D)
endif

# ---- musl (docs/design.md, "musl") -----------------------------------------
# The library, the unit tests and the C test programs built with musl-gcc
# (Debian's musl-tools), in build/musl/.  The wrapper preloads
# build/musl/libvsockify.so into programs whose interpreter is ld-musl-*.
# Debian's musl-gcc sees no kernel headers: build/musl/kinc links the
# host's (searched last, -idirafter, so a musl toolchain's own win).
MUSL_CC    ?= musl-gcc
HAVE_MUSL  := $(shell command -v $(MUSL_CC) 2>/dev/null)
MB         := $(B)/musl
MUSL_ASM   := $(firstword $(wildcard /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null)/asm) \
                          $(wildcard /usr/include/asm))
MUSL_FLAGS := $(BASEFLAGS) -idirafter $(abspath $(MB))/kinc
MUSL_HELPERS := $(patsubst tests/helpers/%.c,$(MB)/helpers/%,$(filter-out tests/helpers/novsock.c,$(wildcard tests/helpers/*.c)))

ifeq ($(HAVE_MUSL),)
musl:
	@echo "$(MUSL_CC) not found: make deps installs musl-tools" >&2; exit 1
else
musl: $(MB)/libvsockify.so $(MB)/test_core $(MUSL_HELPERS) $(MB)/stress/stress
endif

# For the check targets: after make deps, so a musl-gcc it just installed
# counts (HAVE_MUSL was decided before it ran).
musl-if-there: $(if $(filter check check-vm,$(MAKECMDGOALS)),deps)
	@if command -v $(MUSL_CC) >/dev/null 2>&1; then $(MAKE) -s musl; \
	else echo "$(MUSL_CC) not found: skipping the musl build and its tests" >&2; fi

$(MB)/kinc/.done:
	@mkdir -p $(MB)/kinc
	@[ -d /usr/include/linux ] && ln -sfn /usr/include/linux $(MB)/kinc/linux || true
	@[ -d /usr/include/asm-generic ] && ln -sfn /usr/include/asm-generic $(MB)/kinc/asm-generic || true
	@[ -n "$(MUSL_ASM)" ] && ln -sfn $(MUSL_ASM) $(MB)/kinc/asm || true
	@touch $@

$(MB)/libvsockify.so: $(CORE_SRC) $(SHIM_SRC) $(HEADERS) $(MB)/kinc/.done
	$(MUSL_CC) $(MUSL_FLAGS) $(CFLAGS) -shared -Wl,-z,defs -Wl,-z,now -o $@ \
	    $(CORE_SRC) $(SHIM_SRC) -ldl -pthread

$(MB)/test_core: tests/unit/test_core.c $(CORE_SRC) shim/core/core.h $(MB)/kinc/.done
	$(MUSL_CC) $(MUSL_FLAGS) $(CFLAGS) -Ishim -o $@ $< $(CORE_SRC)

# The stress program (tests/stress/), for tests/vm/musl.bats's quick run.
$(MB)/stress/stress: tests/stress/stress.c tests/helpers/musl_compat.h $(MB)/kinc/.done
	@mkdir -p $(MB)/stress
	$(MUSL_CC) $(MUSL_FLAGS) $(CFLAGS) -include tests/helpers/musl_compat.h -o $@ $< -pthread

$(MB)/helpers/%: tests/helpers/%.c tests/helpers/malloc_storm.h tests/helpers/musl_compat.h $(MB)/kinc/.done
	@mkdir -p $(MB)/helpers
	$(MUSL_CC) $(MUSL_FLAGS) $(CFLAGS) -include tests/helpers/musl_compat.h -o $@ $< -pthread

# ---- aarch64, cross-built (docs/setup.md, "aarch64") -------------------------
# make ARCH=aarch64 (or make aarch64): the library, the wrapper, the unit
# tests and the C test programs for arm64, with Debian's
# gcc-aarch64-linux-gnu, in build/aarch64/.  On an arm64 machine plain
# make builds natively into build/.  tests/host/aarch64.bats runs the arm64
# unit tests and programs under qemu-aarch64 (qemu-user).
AARCH_CC   ?= aarch64-linux-gnu-gcc
HAVE_AARCH := $(shell command -v $(AARCH_CC) 2>/dev/null)
AB         := $(B)/aarch64
AARCH_HELPERS := $(patsubst tests/helpers/%.c,$(AB)/helpers/%,$(wildcard tests/helpers/*.c))
AARCH_STATIC  := $(patsubst $(B)/helpers/static/%,$(AB)/helpers/static/%,$(STATIC_HELPERS))
ifeq ($(ARCH),aarch64)
.DEFAULT_GOAL := aarch64
endif

ifeq ($(HAVE_AARCH),)
aarch64:
	@echo "$(AARCH_CC) not found: make deps installs gcc-aarch64-linux-gnu" >&2; exit 1
else
# The native rules, with the cross compiler and B=build/aarch64.
aarch64:
	@$(MAKE) -s B=$(AB) CC=$(AARCH_CC) GOARCH=arm64 $(AB)/libvsockify.so $(AB)/vsockify \
	    $(AB)/vsockify-vm $(AB)/test_core $(AARCH_HELPERS) $(AARCH_STATIC) go-helpers \
	    $(AB)/stress/stress-static $(AB)/stress/stress
endif

# For the check targets: after make deps, as musl-if-there.
aarch64-if-there: $(if $(filter check check-host check-vm,$(MAKECMDGOALS)),deps)
	@if command -v $(AARCH_CC) >/dev/null 2>&1; then $(MAKE) -s aarch64; \
	else echo "$(AARCH_CC) not found: skipping the aarch64 build and its tests" >&2; fi

# Sanitizer build of the library and unit tests, in build/asan/.
asan-build:
	@$(MAKE) -s B=$(B)/asan CFLAGS="-O1 -g $(SAN)" $(B)/asan/libvsockify.so $(B)/asan/test_core

asan: asan-build
	$(B)/asan/test_core

$(B):
	@mkdir -p $(B)

# Installs the Debian packages the tests and demo need (only when root).
deps:
	@tests/install-deps.sh

check: deps all asan-build musl-if-there aarch64-if-there
	@tests/run-all.sh

check-host: all musl-if-there aarch64-if-there
	@tests/run-all.sh --host-only

check-vm: deps all musl-if-there aarch64-if-there
	@tests/run-all.sh --vm-only

# Every VM suite in the arm64 test VM (vsockify-vm --arch aarch64), against
# the arm64 build; make check runs a subset (tests/run-all.sh).
check-arm64: deps all aarch64
	@tests/run-all.sh --arm64

demo: deps all
	@tests/vm/run-in-vm.sh -- tests/demo.sh

bench: deps all $(if $(filter aarch64,$(ARCH)),aarch64)
	@tests/bench/run.sh $(if $(QUICK),--quick) $(if $(PUBLISH),--publish) $(if $(ARCH),--arch $(ARCH))

valgrind: deps all
	@tests/vm/run-in-vm.sh -- bats --tap tests/vm/valgrind.bats

# ---- fuzzing (tests/fuzz/; libFuzzer, host, under the no-vsock filter) ----
FUZZ_SECONDS ?= 60
fuzz: deps all
	@build/helpers/novsock tests/fuzz/run.sh --seconds $(FUZZ_SECONDS)

# ---- stress (tests/stress/; in the VM) ------------------------------------
# The preload run, then the supervised one (a static build: only the
# supervisor can translate it), in one VM boot; both must pass.
stress: deps all
	@tests/stress/run.sh --build-only
	@tests/stress/run.sh --build-only --supervised
	@tests/vm/run-in-vm.sh -- bash -c 'rc=0; tests/stress/run.sh --full || rc=1; \
	    tests/stress/run.sh --full --supervised || rc=1; exit $$rc'

tsan: deps all
	@tests/stress/run.sh --build-only --tsan
	@tests/vm/run-in-vm.sh --timeout 7200 -- tests/stress/run.sh --full --tsan

# The musl library (when musl-gcc is there) goes to $(LIBDIR)/musl/, where
# the wrapper looks for it for a musl program, as build/musl/ beside build/.
install: $(B)/libvsockify.so $(B)/vsockify $(B)/vsockify-vm $(if $(HAVE_MUSL),$(MB)/libvsockify.so)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(B)/libvsockify.so $(DESTDIR)$(LIBDIR)/libvsockify.so
	$(if $(HAVE_MUSL),install -d $(DESTDIR)$(LIBDIR)/musl)
	$(if $(HAVE_MUSL),install -m 0644 $(MB)/libvsockify.so $(DESTDIR)$(LIBDIR)/musl/libvsockify.so)
	install -m 0755 $(B)/vsockify $(DESTDIR)$(BINDIR)/vsockify
	install -m 0755 $(B)/vsockify-vm $(DESTDIR)$(BINDIR)/vsockify-vm
	install -m 0644 man/vsockify.1 $(DESTDIR)$(MANDIR)/man1/vsockify.1
	install -m 0644 man/vsockify-vm.1 $(DESTDIR)$(MANDIR)/man1/vsockify-vm.1
	install -m 0644 man/vsockify.conf.5 $(DESTDIR)$(MANDIR)/man5/vsockify.conf.5

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/musl/libvsockify.so
	-rmdir $(DESTDIR)$(LIBDIR)/musl 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libvsockify.so $(DESTDIR)$(BINDIR)/vsockify \
	    $(DESTDIR)$(BINDIR)/vsockify-vm $(DESTDIR)$(MANDIR)/man1/vsockify-vm.1 \
	    $(DESTDIR)$(MANDIR)/man1/vsockify.1 $(DESTDIR)$(MANDIR)/man5/vsockify.conf.5
	-rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null
	-rmdir $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 2>/dev/null

clean:
	rm -rf $(B)
