#!/usr/bin/env bats
# The arm64 build (make ARCH=aarch64, docs/setup.md "aarch64"), run on this
# x86-64 host under qemu-aarch64 (qemu-user): the unit tests, the library's
# resolver hooks in an arm64 program, and the arm64 wrapper's choice of the
# way in.  No vsock traffic: names and ELF files only, under the no-vsock
# filter like every host suite (qemu-user makes the host's syscalls, so
# the filter holds for the arm64 code too).

bats_require_minimum_version 1.5.0
load ../lib/common

AB=$ROOT/build/aarch64
SYSROOT=/usr/aarch64-linux-gnu

setup() {
	common_setup
	command -v aarch64-linux-gnu-gcc >/dev/null ||
		skip "no aarch64-linux-gnu-gcc (make deps installs gcc-aarch64-linux-gnu)"
	command -v qemu-aarch64 >/dev/null || skip "no qemu-aarch64 (make deps installs qemu-user)"
	# the tools are there: then the build must be too (make check builds it)
	[[ -f $AB/libvsockify.so && -x $AB/test_core && -x $AB/helpers/gaidump ]] ||
		{ echo "build/aarch64 is missing: run make aarch64" >&2; return 1; }
}
teardown() { common_teardown; }

a64() { qemu-aarch64 -L "$SYSROOT" "$@"; }

@test "aarch64: every file of the build is an arm64 ELF" {
	local f
	for f in "$AB/libvsockify.so" "$AB/vsockify" "$AB/test_core" "$AB/helpers/gaidump" \
		"$AB/helpers/static/vsbench" "$AB/helpers/novsock"; do
		run readelf -h "$f"
		[[ $output == *"Machine:"*"AArch64"* ]] || { echo "$f: $output"; return 1; }
	done
}

@test "aarch64: the library exports exactly the hooks the x86-64 build does" {
	syms() { nm -D --defined-only "$1" | awk '{print $3}' | sort | tr '\n' ' '; }
	[ "$(syms "$AB/libvsockify.so")" = "$(syms "$ROOT/build/libvsockify.so")" ]
	run bash -c "objdump -p '$AB/libvsockify.so' | awk '/NEEDED/{print \$2}' | sort | tr '\n' ' '"
	[ "$output" = "libc.so.6 " ] || [ "$output" = "ld-linux-aarch64.so.1 libc.so.6 " ]
}

@test "aarch64: the unit tests pass under qemu-aarch64" {
	run a64 "$AB/test_core"
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} =~ ^1\.\.[0-9]+$ ]]
	[ "${lines[-1]}" = "$(build/test_core | tail -1)" ] # the same tests as on x86-64
	! grep -q '^not ok' <<<"$output"
}

@test "aarch64: an arm64 program's getaddrinfo through the arm64 library: our names faked, others untouched" {
	run a64 "$AB/helpers/gaidump" gai vsock-3.local 80 - 0 0
	local plain=$output
	[[ $plain == *"Name or service not known"* ]]
	run a64 -E LD_PRELOAD="$AB/libvsockify.so" "$AB/helpers/gaidump" gai vsock-3.local 80 - 0 0
	[ "$status" -eq 0 ]
	[[ $output == *"family=2 socktype=1 protocol=6 canon=- addr=127.128.0.3 port=80"* ]]
	# the same program and name as the x86-64 build gives
	[ "$output" = "$(LD_PRELOAD=$ROOT/build/libvsockify.so build/helpers/gaidump gai vsock-3.local 80 - 0 0)" ]
	run a64 "$AB/helpers/gaidump" gai localhost 80 - 0 0
	plain=$output
	run a64 -E LD_PRELOAD="$AB/libvsockify.so" "$AB/helpers/gaidump" gai localhost 80 - 0 0
	[ "$output" = "$plain" ]
}

@test "aarch64: the arm64 wrapper picks the way in from an arm64 ELF, and the x86-64 one refuses it" {
	run a64 "$AB/vsockify" --check "$AB/helpers/gaidump"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$AB/helpers/gaidump: the preload library (dynamically linked (/lib/ld-linux-aarch64.so.1))" ]
	[ "${lines[1]}" = "$AB/helpers/gaidump: library $AB/libvsockify.so (a glibc program)" ]
	run a64 "$AB/vsockify" --check "$AB/helpers/static/vsbench"
	[ "$output" = "$AB/helpers/static/vsbench: the supervisor (statically linked)" ]
	run "$VSOCKIFY" --check "$AB/helpers/gaidump"
	[[ ${lines[0]} == *"built for another architecture: neither way in translates it"* ]]
}
