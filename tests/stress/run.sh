#!/usr/bin/env bash
# tests/stress/run.sh [--quick|--full] [--tsan|--supervised] [--build-only]
#
# Builds tests/stress/stress.c and runs it inside the test VM (it dials
# vsock): normally with build/libvsockify.so preloaded; with --tsan, a
# ThreadSanitizer build with the library sources compiled in (a TSan library
# cannot be preloaded into a TSan program); with --supervised, a static
# build (stress-static, which never calls the library) under
# `build/vsockify --supervise`, using numeric fake addresses (--numeric).
# Prints "counter NAME VALUE" lines; fails if any counter is non-zero or
# TSan reports anything.
#
# --build-only (on the host) builds into build/stress/.  In the VM the repo
# is read-only: a missing or stale binary is built into a temp dir there.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage="usage: run.sh [--quick|--full] [--tsan|--supervised] [--build-only]"
size=--full tsan=0 supervised=0 build_only=0
for arg; do
	case $arg in
	--quick | --full) size=$arg ;;
	--tsan) tsan=1 ;;
	--supervised) supervised=1 ;;
	--build-only) build_only=1 ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
done
((tsan && supervised)) && { echo "$usage" >&2; exit 2; }

cflags=(-std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -g -pthread)
srcs=(tests/stress/stress.c)
deps=(tests/stress/stress.c)
if ((tsan)); then
	name=stress-tsan
	cflags+=(-O1 -fsanitize=thread -Ishim)
	for f in shim/core/*.c shim/*.c; do [[ $f == shim/vsockify.c ]] || srcs+=("$f"); done
	deps=("${srcs[@]}" shim/*.h shim/core/*.h)
	libs=(-ldl)
elif ((supervised)); then
	name=stress-static
	cflags+=(-O2 -static)
	libs=()
else
	name=stress
	cflags+=(-O2)
	libs=()
fi

build=${VSOCKIFY_BUILD_DIR:-build}
bin=$build/stress/$name
stale=0
[[ -x $bin ]] || stale=1
for f in "${deps[@]}"; do [[ $f -nt $bin ]] && stale=1; done
if ((stale || build_only)); then
	out=$build/stress
	if ! mkdir -p "$out" 2>/dev/null || [[ ! -w $out ]]; then
		out=$(mktemp -d "${TMPDIR:-/tmp}/vsockify-stress.XXXXXX")
		trap 'rm -rf "$out"' EXIT
	fi
	bin=$out/$name
	# A static getaddrinfo makes the linker warn about NSS; only numeric
	# lookups are made there, so that warning is dropped.
	"${CC:-cc}" "${cflags[@]}" -o "$bin" "${srcs[@]}" "${libs[@]}" 2>"$bin.err" ||
		{ cat "$bin.err" >&2; exit 1; }
	grep -v 'statically linked applications requires\|: in function' "$bin.err" >&2 || true
	rm -f "$bin.err"
fi
((build_only)) && exit 0

if [[ ${VSOCKIFY_IN_VM:-} != 1 ]]; then
	echo "refusing: the stress test dials vsock; run it in the VM:" >&2
	echo "  tests/vm/run-in-vm.sh -- tests/stress/run.sh $*" >&2
	exit 2
fi

args=()
[[ $size == --quick ]] && args=(--quick)
ulimit -n 4096 2>/dev/null || true
start=$SECONDS
if ((tsan)); then
	# No halt_on_error: the run finishes and prints its counters; any report
	# still makes the exit status 66.
	TSAN_OPTIONS="exitcode=66 ${TSAN_OPTIONS:-}" "$bin" "${args[@]}" && rc=0 || rc=$?
	((rc == 66)) && echo "stress: ThreadSanitizer reported a problem (above)" >&2
elif ((supervised)); then
	build/vsockify --supervise "$bin" --numeric --supervisor-limits "${args[@]}" && rc=0 || rc=$?
else
	LD_PRELOAD=$PWD/build/libvsockify.so "$bin" "${args[@]}" && rc=0 || rc=$?
fi
echo "stress: $name $size exit $rc after $((SECONDS - start)) s"
exit "$rc"
