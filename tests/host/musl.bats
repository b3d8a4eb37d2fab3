#!/usr/bin/env bats
# The musl build (make musl, docs/design.md "musl"): its shape, and that
# the wrapper gives a musl program the musl library and a glibc program
# the glibc one.  No vsock traffic (the resolver answers vsock-*.local
# itself).

bats_require_minimum_version 1.5.0
load ../lib/common

MLIB=$ROOT/build/musl/libvsockify.so
MH=$ROOT/build/musl/helpers

setup() {
	common_setup
	command -v musl-gcc >/dev/null || skip "no musl-gcc (make deps installs musl-tools)"
	[[ -f $MLIB && -x $MH/gaidump ]] || skip "make musl has not been run"
}
teardown() { common_teardown; }

@test "musl library exports the glibc hooks but fcntl64 (musl has none)" {
	run bash -c "nm -D --defined-only '$MLIB' | awk '{print \$3}' | sort | tr '\n' ' '"
	[ "$status" -eq 0 ]
	# (musl-gcc links crti.o/crtn.o's _init and _fini into every shared object)
	[ "$output" = "_fini _init accept accept4 bind close close_range connect dup dup2 dup3 epoll_ctl execl execle execlp execv execve execvp execvpe fcntl getaddrinfo gethostbyaddr gethostbyaddr_r gethostbyname gethostbyname2 gethostbyname2_r gethostbyname_r getnameinfo getpeername getsockname getsockopt listen posix_spawn posix_spawnp recvmsg sendmsg sendto setsockopt shutdown socket " ]
}

@test "musl library and test programs link musl only" {
	run bash -c "objdump -p '$MLIB' | awk '/NEEDED/{print \$2}' | tr '\n' ' '"
	[ "$status" -eq 0 ]
	[ "$output" = "libc.so " ]
	run readelf -l "$MH/vsbench"
	[[ $output == *"[Requesting program interpreter: /lib/ld-musl-"* ]]
}

@test "--check: a musl program gets the musl library, a glibc one the glibc library" {
	run "$VSOCKIFY" --check "$MH/vsbench"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$MH/vsbench: the preload library (dynamically linked (/lib/ld-musl-x86_64.so.1))" ]
	[ "${lines[1]}" = "$MH/vsbench: library $MLIB (a musl program (interpreter ld-musl-*))" ]
	run "$VSOCKIFY" --check "$ROOT/build/helpers/vsbench"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "$ROOT/build/helpers/vsbench: library $ROOT/build/libvsockify.so (a glibc program)" ]
	# A static program gets the supervisor and no library line.
	run "$VSOCKIFY" --check "$ROOT/build/helpers/static/addrcheck"
	[ "${#lines[@]}" -eq 1 ]
}

@test "-d says which library and why; LD_PRELOAD holds the musl one only" {
	run --separate-stderr env LD_PRELOAD="$LIB" "$VSOCKIFY" -d "$MH/gaidump" hostent_r vsock-3.local 512
	[ "$status" -eq 0 ]
	[ "$output" = "rc=0 herr=0 result=vsock-3.local addr=127.128.0.3" ]
	[[ $stderr == *"gaidump: library $MLIB (a musl program (interpreter ld-musl-*))"* ]]
}

@test "the musl library resolves vsock names in a musl program (getaddrinfo, gethostbyname_r)" {
	run "$VSOCKIFY" "$MH/gaidump" gai vsock-3.local 80 2 1 0
	[ "$status" -eq 0 ]
	[[ $output == *"addr=127.128.0.3 port=80"* ]]
	run "$MH/gaidump" gai vsock-3.local 80 2 1 0
	[[ $output != *"addr=127.128.0.3"* ]]
}

@test "a glibc program that runs a musl program hands it to the wrapper, which gives it the musl library" {
	run --separate-stderr "$VSOCKIFY" -d sh -c "exec '$MH/gaidump' hostent_r vsock-7.local 512"
	[ "$status" -eq 0 ]
	[ "$output" = "rc=0 herr=0 result=vsock-7.local addr=127.128.0.7" ]
	[[ $stderr == *"a program of the other libc, handed to the wrapper"* ]]
	[[ $stderr == *"gaidump: library $MLIB"* ]]
}

@test "the musl unit tests pass" {
	run "$ROOT/build/musl/test_core"
	[ "$status" -eq 0 ]
	[[ $output != *"not ok"* ]]
}
