#!/usr/bin/env bats
# musl-built C programs (make musl: build/musl/helpers/) through the musl
# library (build/musl/libvsockify.so), chosen by the wrapper from their
# ld-musl-* interpreter, over real vsock.  Each test checks that the bytes
# really went over AF_VSOCK: a native vsock peer (socat VSOCK-*), or
# strace of the program's own socket calls.

bats_require_minimum_version 1.5.0
load ../lib/common

MLIB=$ROOT/build/musl/libvsockify.so
MH=$ROOT/build/musl/helpers

setup() {
	require_vm
	common_setup
	# The VM sees the host's /: musl-gcc there means make musl could run.
	command -v musl-gcc >/dev/null || skip "no musl-gcc (make deps installs musl-tools)"
	[[ -f $MLIB && -x $MH/vsbench && -x $MH/servers && -x $MH/addrcheck ]] || {
		echo "build/musl is missing: run make musl" >&2
		return 1
	}
}
teardown() { common_teardown; }

@test "musl: a musl vsbench server and client through the wrapper move verified bytes over vsock" {
	start_bg srv timeout 60 "$VSOCKIFY" -d "$MH/vsbench" server --host vsock-any.local --port 7400
	wait_for_log srv '^listening port=7400'
	grep -q "library $MLIB (a musl program" "$TEST_TMP/srv.log"
	run --separate-stderr timeout 60 strace -f -qq -e trace=socket,dup2,dup3 -o "$TEST_TMP/strace" \
		"$VSOCKIFY" "$MH/vsbench" bulk --host vsock-1.local --port 7400 --quick
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[[ $output == *"test=bulk"*"verified=1"* ]]
	cat "$TEST_TMP/strace"
	# The client's TCP socket became a vsock socket on the same number
	# (musl's dup3 with no flags is the dup2 system call).
	local inet_fd vsock_fd
	inet_fd=$(sed -n 's/.*socket(AF_INET6\{0,1\}, SOCK_STREAM, IPPROTO_\(IP\|TCP\)) = \([0-9]*\)$/\2/p' "$TEST_TMP/strace" | head -1)
	vsock_fd=$(sed -n 's/.*socket(AF_VSOCK, SOCK_STREAM|SOCK_CLOEXEC, 0) = \([0-9]*\)$/\1/p' "$TEST_TMP/strace" | head -1)
	[ -n "$inet_fd" ] && [ -n "$vsock_fd" ]
	grep -Eq "dup[23]\($vsock_fd, $inet_fd[,)]" "$TEST_TMP/strace"
	# The musl server loaded the musl library, and no glibc one.
	local pid
	pid=$(pgrep -f "^$MH/vsbench server" | head -1)
	[ -n "$pid" ]
	grep -q " $MLIB\$" /proc/"$pid"/maps
	! grep -q " $ROOT/build/libvsockify.so\$" /proc/"$pid"/maps
}

@test "musl: a musl C server on vsock-any.local answers a native AF_VSOCK client (socat VSOCK-CONNECT)" {
	start_bg srv timeout 60 "$VSOCKIFY" "$MH/servers" multibind vsock-any.local 7401 2 -1
	wait_for_log srv '^listening n='
	run timeout 20 socat -t 5 - VSOCK-CONNECT:1:7401 <<<"hello"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok "[01] ]]
	run timeout 20 socat -t 5 - VSOCK-CONNECT:1:7401 <<<"hello"
	[[ $output == "ok "[01] ]]
	wait_for_log srv '^total=' 30 || true
	cat "$TEST_TMP/srv.log"
	grep -q '^total=2 bad=0$' "$TEST_TMP/srv.log"
	grep -q '^listener idx=0 family=AF_INET addr=127.255.255.255 port=7401$' "$TEST_TMP/srv.log"
	[ "$(grep -c 'MISMATCH\|^FAIL' "$TEST_TMP/srv.log")" -eq 0 ]
}

@test "musl: a musl C client reaches a native AF_VSOCK listener (socat VSOCK-LISTEN), and sees TCP names" {
	start_bg lsn timeout 60 socat -d -d VSOCK-LISTEN:7402,reuseaddr SYSTEM:'cat >/dev/null'
	wait_for_log lsn 'listening on'
	run timeout 20 "$VSOCKIFY" "$MH/addrcheck" vsock-1.local 7402
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"peerfull rc=0 len=16"* ]]
	wait_for_log lsn 'accepting connection from AF=40' 10
}

@test "musl: the stress program (--quick), built with musl, under the musl library: every counter 0" {
	[[ -x $ROOT/build/musl/stress/stress ]] || { echo "run make musl" >&2; return 1; }
	ulimit -n 4096 2>/dev/null || true
	run --separate-stderr timeout 900 "$VSOCKIFY" "$ROOT/build/musl/stress/stress" --quick
	echo "$output"; echo "$stderr" | tail -20
	[ "$status" -eq 0 ]
	grep -q '^counter ' <<<"$output"
	[ -z "$(grep '^counter ' <<<"$output" | grep -v ' 0$')" ]
}
