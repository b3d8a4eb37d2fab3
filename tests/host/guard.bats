#!/usr/bin/env bats
# The host suites run under build/helpers/novsock, a seccomp filter that
# refuses socket(AF_VSOCK) and socketpair(AF_VSOCK): a shim mistake on the
# host dies with SIGSYS instead of dialling this machine's own vsock device.
# These tests prove the guard is there and does exactly that.  Nothing here
# connects anywhere but 127.0.0.1; a broken guard at worst creates an unbound
# or listening AF_VSOCK socket, which is harmless.

bats_require_minimum_version 1.5.0
load ../lib/common

NOVSOCK() { "$ROOT/build/helpers/novsock" "$@"; }
SIGSYS_STATUS=159 # 128 + SIGSYS

setup() {
	common_setup
	cd "$TEST_TMP" || return # a core dump, if limits allow one, lands in the temp dir
}
teardown() { common_teardown; }

VSOCK_SOCKET='import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); print("created")'

@test "this suite itself runs under the guard" {
	run python3 -c "$VSOCK_SOCKET"
	if [ "$status" -ne "$SIGSYS_STATUS" ]; then
		echo "AF_VSOCK socket was not refused (status $status): run the host suites as"
		echo "  build/helpers/novsock bats tests/host   (tests/run-all.sh does)"
		grep Seccomp /proc/self/status
		false
	fi
}

@test "novsock kills socket(AF_VSOCK) and socketpair(AF_VSOCK) with SIGSYS" {
	run NOVSOCK python3 -c "$VSOCK_SOCKET"
	[ "$status" -eq "$SIGSYS_STATUS" ]
	[[ $output != *created* ]]
	run NOVSOCK python3 -c 'import socket; socket.socketpair(socket.AF_VSOCK); print("created")'
	[ "$status" -eq "$SIGSYS_STATUS" ]
	# inherited across fork and exec: a shell that runs python
	run NOVSOCK sh -c 'python3 -c "$1"; echo "child status $?"' sh "$VSOCK_SOCKET"
	[[ $output == *"child status $SIGSYS_STATUS"* ]]
}

@test "novsock --errno cannot loosen an outer guard: the kill wins" {
	# Seccomp applies the strictest action of all stacked filters, so under
	# the suite's guard --errno still dies.  (Its EPERM shows only where no
	# outer filter exists, e.g. in the test VM.)
	run NOVSOCK --errno python3 -c "$VSOCK_SOCKET"
	[ "$status" -eq "$SIGSYS_STATUS" ]
	[[ $output != *created* ]]
}

@test "the filter has no side doors: high bits in the domain, x32 syscall numbers" {
	# The kernel reads the domain as an int, so 0x1_0000_0028 is AF_VSOCK.
	run NOVSOCK python3 -c '
import ctypes, platform
nr = {"x86_64": 41, "aarch64": 198}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
print(libc.syscall(ctypes.c_long(nr), ctypes.c_long((1 << 32) | 40), ctypes.c_long(1), ctypes.c_long(0)))'
	[ "$status" -eq "$SIGSYS_STATUS" ]
	[[ $(uname -m) == x86_64 ]] || return 0
	# x32 socket() (__X32_SYSCALL_BIT | 41) is killed whatever its arguments.
	run NOVSOCK python3 -c '
import ctypes
print(ctypes.CDLL(None).syscall(ctypes.c_long(0x40000000 | 41), 2, 1, 0))'
	[ "$status" -eq "$SIGSYS_STATUS" ]
}

@test "TCP, UDP, IPv6 and Unix sockets still work under novsock" {
	run NOVSOCK python3 -c '
import socket
srv = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
c.sendall(b"tcp"); print(a.recv(3))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
u.sendto(b"udp", u.getsockname()); print(u.recv(3))
socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
x, y = socket.socketpair(socket.AF_UNIX); x.sendall(b"unix"); print(y.recv(4))'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'b\'tcp\'\nb\'udp\'\nb\'unix\'' ]
}

@test "a shimmed bind to vsock-any.local on the host dies under the guard" {
	# Without the guard this would make a real AF_VSOCK listener here.
	run NOVSOCK env LD_PRELOAD="$LIB" python3 -c '
import socket
s = socket.socket(); s.bind(("vsock-any.local", 0)); print("bound")'
	[ "$status" -eq "$SIGSYS_STATUS" ]
	[[ $output != *bound* ]]
	# and the same program without a vsock name is untouched by the guard
	run NOVSOCK env LD_PRELOAD="$LIB" python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print("bound")'
	[ "$status" -eq 0 ]
	[ "$output" = bound ]
}

@test "novsock: usage and exec errors exit 125/126/127 like env(1)" {
	run -125 NOVSOCK
	[[ $output == "usage: novsock "* ]]
	run -125 NOVSOCK --bogus true
	[[ $output == *"unknown option '--bogus'"* ]]
	run -127 NOVSOCK /nonexistent/program
	[[ $output == *"/nonexistent/program: No such file or directory"* ]]
	run -126 NOVSOCK "$TEST_TMP"
	run -0 NOVSOCK --errno -- sh -c 'echo "$0 $1"' -x y
	[ "$output" = "-x y" ]
}
