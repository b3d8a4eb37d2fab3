#!/usr/bin/env bats
# Programs that use AF_VSOCK themselves run under the shim exactly as
# without it: their sockets are never translated.

load ../lib/common

setup() { require_vm; common_setup; }
teardown() { common_teardown; }

@test "socat VSOCK-LISTEN and VSOCK-CONNECT under the shim move the same bytes" {
	head -c 200000 /dev/urandom >"$TEST_TMP/data"
	start_bg srv preload socat -u VSOCK-LISTEN:7100,reuseaddr OPEN:"$TEST_TMP/got",creat,trunc
	sleep 1
	run preload socat -u OPEN:"$TEST_TMP/data" VSOCK-CONNECT:1:7100
	[ "$status" -eq 0 ]
	for _ in $(seq 50); do kill -0 "$(<"$TEST_TMP/srv.pid")" 2>/dev/null || break; sleep 0.1; done
	cmp "$TEST_TMP/data" "$TEST_TMP/got"
}

native_script() {
	python3 - <<'PY'
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, 7101))
s.listen()
print("listener", s.getsockname(), s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
c = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
c.connect((1, 7101))
a, addr = s.accept()
print("accepted from cid", addr[0])
print("client peer", c.getpeername())
print("server local", a.getsockname())
print("server peer cid", a.getpeername()[0])
print("domain", a.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN),
      "protocol", a.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
try:
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("nodelay accepted")
except OSError as e:
    print("nodelay errno", e.errno)
try:
    socket.create_connection(("127.0.0.1", 1))
except OSError as e:
    print("tcp errno", e.errno)
PY
}

@test "python AF_VSOCK sockets return AF_VSOCK tuples, identical with and without the shim" {
	run native_script
	[ "$status" -eq 0 ]
	plain=$output
	export LD_PRELOAD=$LIB
	run native_script
	unset LD_PRELOAD
	[ "$status" -eq 0 ]
	echo "$output"
	[ "$output" = "$plain" ]
	[[ $output == *"listener (4294967295, 7101) 40"* ]]
	[[ $output == *"client peer (1, 7101)"* ]]
	[[ $output == *"domain 40 protocol 0"* ]]
	[[ $output == *"nodelay errno 92"* ]]
}
