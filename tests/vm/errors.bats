#!/usr/bin/env bats
# Failures a TCP app understands.

load ../lib/common

setup() { require_vm; common_setup; }
teardown() { common_teardown; }

# connect_errno HOST PORT: the errno name a shimmed python connect fails with.
connect_errno() {
	preload python3 -c '
import errno, socket, sys
try: socket.create_connection((sys.argv[1], int(sys.argv[2]))); print("connected")
except OSError as e: print(errno.errorcode[e.errno])' "$@"
}

@test "connect to a CID that does not exist: EHOSTUNREACH, and curl says so" {
	run connect_errno vsock-9.local 80
	[ "$output" = "EHOSTUNREACH" ]
	run "$VSOCKIFY" curl -sS -v http://vsock-9.local:8080/
	[ "$status" -eq 7 ]
	[[ $output == *"No route to host"* ]]
}

@test "connect to a closed port: ECONNREFUSED, and curl says so" {
	run connect_errno vsock-1.local 8999
	[ "$output" = "ECONNREFUSED" ]
	run "$VSOCKIFY" curl -sS -v http://vsock-1.local:8999/
	[ "$status" -eq 7 ]
	[[ $output == *"Connection refused"* ]]
}

@test "a failed connect leaves a TCP socket the app can still use" {
	start_bg tcp socat TCP-LISTEN:7300,bind=127.0.0.1,reuseaddr EXEC:cat
	wait_for_tcp_port 7300
	run preload python3 -c '
import socket
s = socket.socket()
try: s.connect(("vsock-1.local", 8999))
except ConnectionRefusedError: print("refused")
s.connect(("127.0.0.1", 7300)); print("then tcp", s.getpeername())'
	echo "$output"
	[[ $output == *"refused"* ]]
	[[ $output == *"then tcp ('127.0.0.1', 7300)"* ]]
}

@test "UDP to a fake address gets EPROTOTYPE and a log line; nothing is sent" {
	run env VSOCKIFY_LOG=warn LD_PRELOAD="$LIB" strace -f -e trace=sendto,connect python3 -c '
import errno, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for what, f in [("connect", lambda: u.connect(("vsock-1.local", 9))),
                ("sendto", lambda: u.sendto(b"x", ("127.128.0.1", 9)))]:
    try: f(); print(what, "succeeded")
    except OSError as e: print(what, errno.errorcode[e.errno])'
	echo "$output"
	[[ $output == *"connect EPROTOTYPE"* ]]
	[[ $output == *"sendto EPROTOTYPE"* ]]
	[[ $output == *"vsockify["*"]: connect to 127.128.0.1:9: only TCP"* ]]
	! grep -E '^(\[pid +[0-9]+\] )?(sendto|connect)\([0-9]+, .*127\.128' <<<"$output"
}

@test "malformed names fail at once with EAI_NONAME, without any network syscall" {
	for name in vsock-.local vsock-3x.local vsock-4294967296.local vsock--1.local "vsock- 3.local"; do
		run env VSOCKIFY_LOG=warn LD_PRELOAD="$LIB" strace -f -e trace=network,openat python3 -c '
import socket, sys
try: socket.getaddrinfo(sys.argv[1], 80); print("resolved")
except socket.gaierror as e: print("gaierror", e.errno == socket.EAI_NONAME)' "$name"
		echo "$output"
		[[ $output == *"gaierror True"* ]]
		[[ $output == *"not a valid vsock name"* ]]
		! grep -E 'resolv.conf|nsswitch|socket\(AF_INET|socket\(AF_UNIX|connect\(' <<<"$output"
	done
}
