#!/usr/bin/env bats
# Unmodified TCP servers listening on vsock by name.

load ../lib/common

setup() {
	require_vm
	common_setup
	mkdir -p "$TEST_TMP/www"
	echo "served over vsock" >"$TEST_TMP/www/index.html"
}
teardown() { common_teardown; }

start_http_server() {
	cd "$TEST_TMP/www"
	start_bg http "$VSOCKIFY" python3 -u -m http.server --bind vsock-any.local 8080
	cd - >/dev/null
	wait_for_log http "Serving HTTP"
}

@test "python http.server on vsock-any.local serves a native vsock client" {
	start_http_server
	run socat -t 5 - VSOCK-CONNECT:1:8080 <<<$'GET /index.html HTTP/1.0\r\n\r'
	[ "$status" -eq 0 ]
	[[ $output == *"200 OK"* ]]
	[[ $output == *"served over vsock"* ]]
}

@test "python http.server serves a shimmed curl, and logs the client readably" {
	start_http_server
	run "$VSOCKIFY" curl -sS http://vsock-1.local:8080/index.html
	[ "$status" -eq 0 ]
	[ "$output" = "served over vsock" ]
	run "$VSOCKIFY" curl -sS http://vsock-host.local:8080/index.html
	[ "$status" -eq 0 ]
	[ "$output" = "served over vsock" ]
	grep -E '^127\.128\.0\.[12] - - \[.*\] "GET /index.html HTTP/1.1" 200' "$TEST_TMP/http.log"
}

@test "the listener is AF_VSOCK in the kernel, and AF_INET to the app" {
	run preload python3 - <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("vsock-any.local", 9100))
s.listen()
print("name", s.getsockname())
print("reuseaddr", s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
print("acceptconn", s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
v = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)   # a native client
v.connect((1, 9100))
c, addr = s.accept()
print("client", addr[0], 0 < addr[1] <= 65535)
print("accepted family", int(c.family), c.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
print("accepted local", c.getsockname())
print("cloexec", c.get_inheritable() is False)
v.sendall(b"abc"); print("data", c.recv(3))
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"name ('127.255.255.255', 9100)"* ]]
	[[ $output == *"reuseaddr 1"* ]]
	[[ $output == *"acceptconn 1"* ]]
	[[ $output == *"client 127.128.0.1 True"* ]]
	[[ $output == *"accepted family 2 2"* ]]
	[[ $output == *"accepted local ('127.128.0.1', 9100)"* ]]
	[[ $output == *"cloexec True"* ]]
	[[ $output == *"data b'abc'"* ]]
	run strace -f -E LD_PRELOAD="$LIB" -e trace=bind python3 -c '
import socket; s = socket.socket(); s.bind(("vsock-any.local", 9101))'
	[[ $output == *"bind("*"{sa_family=AF_VSOCK, svm_cid=VMADDR_CID_ANY, svm_port=0x238d"* ]]
}

@test "bind to port 0 picks a port a TCP client can name" {
	run preload python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("vsock-any.local", 0))
s.listen()
port = s.getsockname()[1]
assert 1024 <= port <= 65535, port
c = socket.create_connection(("vsock-1.local", port))
a, _ = s.accept()
c.sendall(b"ok"); print("port", port, a.recv(2))
PY
	[ "$status" -eq 0 ]
	[[ $output == *"b'ok'"* ]]
}

@test "IPv6 listeners: native IPv6 fake and v4-mapped fake" {
	run preload python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET6)
s.bind(("vsock-any.local", 9102))    # AF_INET6 hint -> IPv6 fake
s.listen()
print("name6", s.getsockname()[:2])
c = socket.create_connection(("vsock-1.local", 9102))
a, addr = s.accept()
print("peer6", addr[:2])
m = socket.socket(socket.AF_INET6)
m.bind(("::ffff:127.255.255.255", 9103))
m.listen()
c2 = socket.create_connection(("vsock-1.local", 9103))
a2, addr2 = m.accept()
print("peermapped", addr2[0])
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"name6 ('100::7673:6f63:ffff:ffff', 9102)"* ]]
	[[ $output == *"peer6 ('100::7673:6f63:0:1', "* ]]
	[[ $output == *"peermapped ::ffff:127.128.0.1"* ]]
}

@test "a failed bind leaves the app's TCP socket untouched" {
	run preload python3 - <<'PY'
import errno, socket
a = socket.socket(); a.bind(("vsock-any.local", 9104)); a.listen()
b = socket.socket()
try:
    b.bind(("vsock-any.local", 9104))
except OSError as e:
    print("second bind", errno.errorcode[e.errno])
print("still tcp", b.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), b.getsockname())
b.bind(("127.0.0.1", 0)); print("tcp bind ok")
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"second bind EADDRINUSE"* ]]
	[[ $output == *"still tcp 2 ('0.0.0.0', 0)"* ]]
	[[ $output == *"tcp bind ok"* ]]
}

@test "binding vsock-any.local to port 0 is an AF_VSOCK bind, AF_INET to the app" {
	run strace -f -E LD_PRELOAD="$LIB" -e trace=socket,bind,listen python3 -c '
import socket
s = socket.socket()
s.bind(("vsock-any.local", 0)); s.listen()
print("name", s.getsockname()[0], 1024 <= s.getsockname()[1] <= 65535)
print("domain", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"name 127.255.255.255 True"* ]]
	[[ $output == *"domain 2"* ]]
	[[ $output == *"bind("*"{sa_family=AF_VSOCK, svm_cid=VMADDR_CID_ANY"* ]]
}

@test "shutdown() of a vsock listener wakes accepts in threads and a fork child with EINVAL, as over TCP" {
	run python3 "$HELPERS/listen_shutdown.py" 127.0.0.1 127.0.0.1
	echo "oracle ($status): $output"
	[ "$status" -eq 0 ]
	oracle=$output
	[[ $oracle == *"SHUT_RDWR: blocked accepts: EINVAL EINVAL"* ]]
	for host in vsock-any.local vsock-1.local; do
		run env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/shim-$host.log" \
			LD_PRELOAD="$LIB" python3 "$HELPERS/listen_shutdown.py" $host vsock-1.local
		echo "shim, listening on $host ($status): $output"
		[ "$status" -eq 0 ]
		[ "$output" = "$oracle" ] || { diff <(echo "$oracle") <(echo "$output"); return 1; }
		grep -q -- "bind 127.*-> vsock:" "$TEST_TMP/shim-$host.log" # the listeners were vsock
	done
}
