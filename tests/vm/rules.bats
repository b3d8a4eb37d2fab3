#!/usr/bin/env bats
# Rules (docs/rules.md) with real traffic: unmodified programs whose
# addresses cannot be changed (PostgreSQL on 127.0.0.1:5432, a server on
# 0.0.0.0, a client dialling 10.0.2.2, ssh to a host name) carried over
# vsock by connect, listen and name rules; the first match wins; a bad
# source is ignored whole by the library.  The VM has no network card, so
# a dial that no rule catches fails (or reaches a TCP server on 127.0.0.1
# that the test started).  Ports 9400..9499, 5432, 2422..2423.

bats_require_minimum_version 1.5.0
load ../lib/common

DIAL=$HELPERS/dial.py
PGBIN=/usr/lib/postgresql/15/bin

setup() {
	require_vm
	common_setup
	no_rules_from_environment
}
teardown() { common_teardown; }

# serve vsock|tcp NAME PORT: a native server (never shimmed) that greets each
# client with NAME: AF_VSOCK on any CID, or TCP on 127.0.0.1.
serve() {
	local addr
	case $1 in
	vsock) addr=VSOCK-LISTEN:$3 ;;
	tcp) addr=TCP4-LISTEN:$3,bind=127.0.0.1 ;;
	esac
	start_bg "$2" socat -d -d "$addr,fork,reuseaddr" SYSTEM:"echo $2"
	wait_for_log "$2" "listening on"
}

# vsock_dial PORT [MESSAGE]: a native AF_VSOCK client to CID 1; prints what
# came back until EOF (newlines as spaces), or "error ERRNO".
vsock_dial() {
	python3 -c '
import errno, socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); s.settimeout(30)
try: s.connect((1, int(sys.argv[1])))
except OSError as e: print("error", errno.errorcode[e.errno]); sys.exit(1)
if len(sys.argv) > 2: s.sendall(sys.argv[2].encode())
buf = b""
while True:
    d = s.recv(65536)
    if not d: break
    buf += d
print(" ".join(buf.decode(errors="replace").split()))' "$@"
}

# no_tcp_listener PORT: nothing listens on TCP PORT (IPv4 or IPv6).
no_tcp_listener() {
	local hex
	hex=$(printf ':%04X ' "$1")
	! grep -h "$hex" /proc/net/tcp /proc/net/tcp6 | grep -q " 0A "
}

# ---- 1. PostgreSQL: a server and a client that only know 127.0.0.1:5432 ------

@test "postgres: its only listener comes from a listen rule; psql reaches it through a connect rule" {
	[[ -x $PGBIN/postgres && -x $PGBIN/initdb ]] || { echo "PostgreSQL 15 is not installed (tests/install-deps.sh)"; false; }
	command -v psql
	local d=$TEST_TMP/pg
	# postgres refuses to run as root: the cluster belongs to nobody
	chmod 711 "$TEST_TMP"
	mkdir "$d"
	chown nobody:nogroup "$d"
	asnobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$d" "$@"; }
	run asnobody "$PGBIN/initdb" -N -D "$d/data" -U postgres --auth=trust --no-locale -E UTF8
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	# clients arrive from the fake address of CID 1; nothing else may log in
	printf 'host all postgres 127.128.0.1/32 trust\n' >"$d/data/pg_hba.conf"
	start_bg pg setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$VSOCKIFY" -r 'listen 127.0.0.1:5432 vsock:any:5432' \
		"$PGBIN/postgres" -D "$d/data" -c listen_addresses=127.0.0.1 -c port=5432 \
		-c unix_socket_directories= -c log_connections=on -c fsync=off
	wait_for_log pg "database system is ready to accept connections" 120
	grep -q 'listening on IPv4 address "127.0.0.1", port 5432' "$TEST_TMP/pg.log"
	# the listener is AF_VSOCK: no TCP listener, a native vsock client gets
	# PostgreSQL's answer to an SSLRequest ('N': no SSL)
	no_tcp_listener 5432
	run python3 -c '
import socket, struct
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); s.settimeout(30)
s.connect((1, 5432)); s.sendall(struct.pack("!ii", 8, 80877103)); print(s.recv(1))'
	[ "$output" = "b'N'" ]
	# without the shim, psql finds nothing at 127.0.0.1:5432
	run psql -h 127.0.0.1 -p 5432 -U postgres -Atc 'select 1'
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"Connection refused"* ]]
	# with the connect rule, the same command works
	run "$VSOCKIFY" -r 'connect 127.0.0.1:5432 vsock:1:5432' psql -h 127.0.0.1 -p 5432 -U postgres -Atc 'select 1'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
	# the server sees the client as CID 1's fake address, on its own port
	run "$VSOCKIFY" -r 'connect 127.0.0.1:5432 vsock:1' psql -h 127.0.0.1 -p 5432 -U postgres -Atc \
		'select inet_client_addr(), inet_server_port(), inet_client_port() between 1 and 65535'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "127.128.0.1|5432|t" ]
	run "$VSOCKIFY" -r 'connect 127.0.0.1:5432 vsock:1' psql -h 127.0.0.1 -p 5432 -U postgres -Atc 'select inet_server_addr()'
	echo "server address: $output"
	[[ $output == 127.0.0.1 || $output == 127.128.0.1 ]]
	grep -E 'connection received: host=127\.128\.0\.1 port=[0-9]+' "$TEST_TMP/pg.log"
	# and the client's own socket shows the address it dialled
	# (an SSLRequest again: the answer is 'N')
	run "$VSOCKIFY" -r 'connect 127.0.0.1:5432 vsock:1' python3 "$DIAL" 127.0.0.1 5432 hex:0000000804d2162f 1
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'peer 127.0.0.1 5432\nlocal 127.128.0.1\ngot N' ]
}

# ---- 2. a server on 0.0.0.0 and a client with a hard-coded address -----------

@test "http.server on 0.0.0.0 under a listen rule, curl to 10.0.2.2 under a connect rule" {
	mkdir "$TEST_TMP/www"
	echo "hello over a rule" >"$TEST_TMP/www/f.txt"
	start_bg web "$VSOCKIFY" -r 'listen 0.0.0.0:9410 vsock:any:9410' \
		python3 -u -m http.server --bind 0.0.0.0 --directory "$TEST_TMP/www" 9410
	wait_for_log web "Serving HTTP"
	# getsockname shows the address the app bound
	grep -q "Serving HTTP on 0.0.0.0 port 9410 " "$TEST_TMP/web.log"
	no_tcp_listener 9410
	# the VM has no network: without the rule, 10.0.2.2 is unreachable
	run curl -sS --max-time 20 http://10.0.2.2:9410/f.txt
	[ "$status" -eq 7 ]
	run "$VSOCKIFY" -r 'connect 10.0.2.2:9410 vsock:1:9410' \
		curl -sS --max-time 20 -w '%{remote_ip}:%{remote_port}\n' http://10.0.2.2:9410/f.txt
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'hello over a rule\n10.0.2.2:9410' ]
	run "$VSOCKIFY" -r 'connect 10.0.2.2:9410 vsock:1:9410' curl -sS -v --max-time 20 -o /dev/null http://10.0.2.2:9410/f.txt
	[[ $output == *"Connected to 10.0.2.2 (10.0.2.2) port 9410"* ]]
	# the server logged its client as the fake address of CID 1
	cat "$TEST_TMP/web.log"
	grep -E '^127\.128\.0\.1 - - \[.*\] "GET /f.txt HTTP/1.1" 200' "$TEST_TMP/web.log"
	! grep -E '^(10\.|127\.0\.0\.1|0\.0\.0\.0)' "$TEST_TMP/web.log"
	# a native vsock client reaches the same server
	run vsock_dial 9410 $'GET /f.txt HTTP/1.0\r\n\r\n'
	[[ $output == "HTTP/1.0 200 OK"*"hello over a rule" ]]
}

@test "python getpeername/getsockname after a connect rule: the dialled address, and this machine's fake" {
	serve vsock v9411 9411
	run "$VSOCKIFY" -r 'connect 10.0.2.2:80 vsock:1:9411' python3 "$DIAL" 10.0.2.2 80
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'peer 10.0.2.2 80\nlocal 127.128.0.1\ngot v9411' ]
	# CID 2 loops back in the VM too; the port can change
	run "$VSOCKIFY" -r 'connect 10.0.2.2:80 vsock:host:9411' python3 "$DIAL" 10.0.2.2 80
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "peer 10.0.2.2 80" ]
	[ "${lines[2]}" = "got v9411" ]
	# without the rule: no route
	run python3 "$DIAL" 10.0.2.2 80
	[ "$status" -eq 1 ]
	[ "$output" = "error ENETUNREACH" ]
}

# ---- 3. portless, IPv6, v4-mapped, listen * ------------------------------------

@test "a rule with no port carries every port of the address, each to the same vsock port" {
	serve vsock v9420 9420
	serve vsock v9421 9421
	for p in 9420 9421; do
		run "$VSOCKIFY" -r 'connect 192.0.2.7 vsock:1' python3 "$DIAL" 192.0.2.7 "$p"
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$output" = "peer 192.0.2.7 $p
local 127.128.0.1
got v$p" ]
	done
	# a port with no vsock server: refused, as over TCP
	run "$VSOCKIFY" -r 'connect 192.0.2.7 vsock:1' python3 "$DIAL" 192.0.2.7 9429
	[ "$output" = "error ECONNREFUSED" ]
	# another address is not covered
	run "$VSOCKIFY" -r 'connect 192.0.2.7 vsock:1' python3 "$DIAL" 192.0.2.8 9420
	[ "$output" = "error ENETUNREACH" ]
}

@test "an IPv6 rule: [fd00::5]:80 to another vsock port, curl and python" {
	printf 'HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nfrom v6\n' >"$TEST_TMP/resp"
	start_vsock_http web6 9422 "$TEST_TMP/resp"
	run "$VSOCKIFY" -r 'connect [fd00::5]:80 vsock:1:9422' \
		curl -sS --max-time 20 -w '%{remote_ip}:%{remote_port}\n' 'http://[fd00::5]/'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'from v6\nfd00::5:80' ]
	run "$VSOCKIFY" -r 'connect [fd00::5]:80 vsock:1:9422' python3 "$DIAL" fd00::5 80 $'GET / HTTP/1.0\r\n\r\n'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "peer fd00::5 80" ]
	[ "${lines[1]}" = "local 100::7673:6f63:0:1" ]
	[[ ${lines[2]} == "got HTTP/1.0 200 OK"*"from v6" ]]
	# another port of fd00::5 is not covered; nor is [fd00::5:80], a different address
	run "$VSOCKIFY" -r 'connect [fd00::5]:80 vsock:1:9422' python3 "$DIAL" fd00::5 81
	[ "$output" = "error ENETUNREACH" ]
	run "$VSOCKIFY" -r 'connect [fd00::5:80] vsock:1:9422' python3 "$DIAL" fd00::5 80
	[ "$output" = "error ENETUNREACH" ]
	run "$VSOCKIFY" -r 'connect [fd00::5:80] vsock:1:9422' python3 "$DIAL" fd00::5:80 80 $'GET / HTTP/1.0\r\n\r\n'
	[ "${lines[0]}" = "peer fd00::5:80 80" ]
	[[ ${lines[2]} == *"from v6" ]]
	# [fd00::5] in brackets with no port: every port of it
	run "$VSOCKIFY" -r 'connect [fd00::5] vsock:1' python3 "$DIAL" fd00::5 9422 $'GET / HTTP/1.0\r\n\r\n'
	[ "${lines[0]}" = "peer fd00::5 9422" ]
	[[ ${lines[2]} == *"from v6" ]]
	# a bare IPv6 address is refused: the wrapper runs nothing
	run "$VSOCKIFY" -r 'connect fd00::5 vsock:1' python3 "$DIAL" fd00::5 9422
	[ "$status" -eq 2 ]
	[[ $output == *"--rule 1: "* && $output != *peer* ]]
}

@test "an IPv4 rule matches the IPv4-mapped address an AF_INET6 socket dials" {
	serve vsock v9423 9423
	run "$VSOCKIFY" -r 'connect 10.0.2.2:9423 vsock:1' python3 "$DIAL" ::ffff:10.0.2.2 9423
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'peer ::ffff:10.0.2.2 9423\nlocal ::ffff:127.128.0.1\ngot v9423' ]
	# and a portless IPv4 rule
	run "$VSOCKIFY" -r 'connect 10.0.2.2 vsock:1' python3 "$DIAL" ::ffff:10.0.2.2 9423
	[ "${lines[2]}" = "got v9423" ]
	# the JVM, which always uses AF_INET6 sockets
	cat >"$TEST_TMP/Dial.java" <<-'JAVA'
		public class Dial {
		  public static void main(String[] a) throws Exception {
		    try (var s = new java.net.Socket("10.0.2.2", 9423)) {
		      var in = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream()));
		      System.out.println(in.readLine() + " " + s.getRemoteSocketAddress());
		    }
		  }
		}
	JAVA
	run "$VSOCKIFY" -r 'connect 10.0.2.2:9423 vsock:1' java "$TEST_TMP/Dial.java"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "v9423 /10.0.2.2:9423" ]
}

@test "listen *:P catches a server binding :: (python http.server --bind ::)" {
	mkdir "$TEST_TMP/www"
	echo "dual stack" >"$TEST_TMP/www/index.html"
	start_bg web "$VSOCKIFY" -r 'listen *:9424 vsock:any' \
		python3 -u -m http.server --bind :: --directory "$TEST_TMP/www" 9424
	wait_for_log web "Serving HTTP"
	grep -q "Serving HTTP on :: port 9424 " "$TEST_TMP/web.log"
	no_tcp_listener 9424
	run vsock_dial 9424 $'GET / HTTP/1.0\r\n\r\n'
	[[ $output == "HTTP/1.0 200 OK"*"dual stack" ]]
	run "$VSOCKIFY" curl -sS --max-time 20 http://vsock-1.local:9424/
	[ "$status" -eq 0 ]
	[ "$output" = "dual stack" ]
	# the clients show as CID 1's fake in the listener's family (AF_INET6)
	cat "$TEST_TMP/web.log"
	[ "$(grep -cE '^(100::7673:6f63:0:1|::ffff:127\.128\.0\.1) - - \[.*\] "GET / HTTP/1\.[01]" 200' "$TEST_TMP/web.log")" -eq 2 ]
}

@test "listen rules: the vsock port can differ from the app's, and the app still sees its own" {
	run "$VSOCKIFY" -r 'listen 127.0.0.1:9425 vsock:any:9426' python3 -c '
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 9425)); l.listen()
print("name", l.getsockname())
v = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); v.settimeout(30)
v.connect((1, 9426))
a, peer = l.accept()
print("peer", peer[0], 0 < peer[1] <= 65535)
v.sendall(b"hi"); print("data", a.recv(2))
t = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
# (vsock answers a port with no listener with a reset)
try: t.connect((1, 9425)); print("9425 connected")
except (ConnectionRefusedError, ConnectionResetError): print("9425 refused")'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "name ('127.0.0.1', 9425)
peer 127.128.0.1 True
data b'hi'
9425 refused" ]
	# bound to port 0 under "listen 127.0.0.1 vsock:any": the real vsock port shows
	run "$VSOCKIFY" -r 'listen 127.0.0.1 vsock:any' python3 -c '
import socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
host, port = l.getsockname()
v = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); v.settimeout(30)
v.connect((1, port)); a, _ = l.accept(); v.sendall(b"ok")
print(host, 1024 <= port <= 65535, a.recv(2))'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "127.0.0.1 True b'ok'" ]
}

# ---- 4. ssh -------------------------------------------------------------------

# rules_sshd PORT LISTENADDRESS WRAPPER_ARGS...: sshd (re-exec mode) on ADDR:PORT.
rules_sshd() {
	local port=$1 addr=$2
	shift 2
	start_sshd "$addr:$port" "$@"
	SSH_OPTS+=(-p "$port")
}

@test "ssh box1.guests.example through a wildcard name rule" {
	rules_sshd 2422 vsock-any.local
	run "$VSOCKIFY" -r 'name *.guests.example vsock:1' ssh -v "${SSH_OPTS[@]}" root@box1.guests.example 'echo ran $((6 * 7))'
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx 'ran 42' <<<"$output"
	[[ $output == *"Connecting to box1.guests.example [127.128.0.1] port 2422"* ]]
	grep -E "Accepted publickey for root from 127\.128\.0\.1 port [0-9]+" "$TEST_TMP/sshd.log"
	# a deeper name, in capitals, works too; the suffix itself does not match
	run "$VSOCKIFY" -r 'name *.guests.example vsock:local' ssh "${SSH_OPTS[@]}" root@A.Box2.GUESTS.example. 'echo ok'
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ok ]
	run "$VSOCKIFY" -r 'name *.guests.example vsock:1' ssh "${SSH_OPTS[@]}" root@guests.example true
	echo "$output"
	[ "$status" -eq 255 ]
	[[ $output == *"Could not resolve hostname guests.example"* ]]
	# without the rule the name is unknown
	run "$VSOCKIFY" ssh "${SSH_OPTS[@]}" root@box1.guests.example true
	[ "$status" -eq 255 ]
	[[ $output == *"Could not resolve hostname box1.guests.example"* ]]
}

@test "sshd on 0.0.0.0 under a listen rule: the accepted socket crosses sshd's re-exec" {
	rules_sshd 2423 0.0.0.0 -r 'listen *:2423 vsock:any'
	grep -q "Server listening on 0.0.0.0 port 2423" "$TEST_TMP/sshd.log"
	no_tcp_listener 2423
	run "$VSOCKIFY" -r 'connect 10.0.2.2:2423 vsock:1' ssh "${SSH_OPTS[@]}" root@10.0.2.2 'echo "$SSH_CLIENT"'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} =~ ^127\.128\.0\.1\ [0-9]+\ 2423$ ]]
	cat "$TEST_TMP/sshd.log"
	grep -E "Connection from 127\.128\.0\.1 port [0-9]+ on [0-9.]+ port 2423" "$TEST_TMP/sshd.log"
	grep -E "Accepted publickey for root from 127\.128\.0\.1 port [0-9]+" "$TEST_TMP/sshd.log"
	! grep -Ei "UNKNOWN|getnameinfo|get_sock_port|getpeername|getsockname" "$TEST_TMP/sshd.log"
}

# ---- exec -----------------------------------------------------------------------

@test "across exec, sockets made by rules show the same addresses" {
	cat >"$TEST_TMP/show.py" <<-'PY'
		import socket, subprocess, sys
		def show(tag, fds):
		    for name, fd in fds:
		        s = socket.socket(fileno=fd)
		        try: peer = s.getpeername()[:2]
		        except OSError: peer = "-"
		        print(tag, name, s.getsockname()[:2] if name != "c" else s.getsockname()[0], peer)
		        s.detach()
		if sys.argv[1] == "child":
		    show("after", [(n, int(f)) for n, f in (a.split("=") for a in sys.argv[2:])])
		    sys.exit(0)
		l1 = socket.socket(); l1.bind(("0.0.0.0", 9430)); l1.listen()
		l2 = socket.socket(); l2.bind(("127.0.0.1", 9431)); l2.listen()
		c = socket.create_connection(("10.0.2.2", 80), timeout=30)
		a, _ = l2.accept()
		fds = [("l1", l1.fileno()), ("l2", l2.fileno()), ("c", c.fileno()), ("a", a.fileno())]
		show("before", fds)
		sys.stdout.flush()
		subprocess.run([sys.executable, sys.argv[0], "child"] + ["%s=%d" % f for f in fds],
		               pass_fds=[f for _, f in fds], check=True)
	PY
	run "$VSOCKIFY" -r 'listen *:9430 vsock:any' -r 'listen 127.0.0.1:9431 vsock:any:9432' \
		-r 'connect 10.0.2.2:80 vsock:1:9432' python3 "$TEST_TMP/show.py" parent
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 8 ]
	for i in 0 1 2 3; do
		[ "${lines[i]#before }" = "${lines[i + 4]#after }" ]
	done
	[ "${lines[0]}" = "before l1 ('0.0.0.0', 9430) -" ]
	[ "${lines[1]}" = "before l2 ('127.0.0.1', 9431) -" ]
	[ "${lines[2]}" = "before c 127.128.0.1 ('10.0.2.2', 80)" ]
	[[ ${lines[3]} == "before a "*" ('127.128.0.1', "* ]]
}

@test "threads that make the process's first lookups at once all follow the rules" {
	# (a native echo server with a deep backlog: socat's is 5)
	start_echo echo vsock 9470
	local i
	for i in $(seq 8); do
		run timeout 120 "$VSOCKIFY" -r 'connect 10.0.2.2:9470 vsock:1' -r 'listen *:9471 vsock:any' python3 -c '
import socket, threading
n = 16
b = threading.Barrier(n)
res = []
def go():
    s = socket.socket()
    b.wait()
    try:
        s.connect(("10.0.2.2", 9470)); s.settimeout(30)
        s.sendall(b"v9470\n")
        res.append(s.makefile().readline().strip())
    except OSError as e:
        res.append(repr(e))
ts = [threading.Thread(target=go) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(set(res)), len(res))'
		echo "run $i: $output"
		[ "$status" -eq 0 ]
		[ "$output" = "['v9470'] 16" ]
	done
}

# ---- 5. the first match wins --------------------------------------------------

@test "first match wins: port rule before portless rule, and the other way round" {
	serve vsock v9440 9440
	serve vsock v9441 9441
	run "$VSOCKIFY" -r 'connect 10.0.2.2:9440 vsock:1:9441' -r 'connect 10.0.2.2 vsock:1' python3 "$DIAL" 10.0.2.2 9440
	echo "$output"
	[ "${lines[2]}" = "got v9441" ]
	run "$VSOCKIFY" -r 'connect 10.0.2.2 vsock:1' -r 'connect 10.0.2.2:9440 vsock:1:9441' python3 "$DIAL" 10.0.2.2 9440
	echo "$output"
	[ "${lines[2]}" = "got v9440" ]
	# by CID: CID 7 does not exist here
	run "$VSOCKIFY" -r 'connect 10.0.2.2:9440 vsock:7' -r 'connect 10.0.2.2 vsock:1' python3 "$DIAL" 10.0.2.2 9440
	[ "$output" = "error EHOSTUNREACH" ]
	run "$VSOCKIFY" -r 'connect 10.0.2.2 vsock:1' -r 'connect 10.0.2.2:9440 vsock:7' python3 "$DIAL" 10.0.2.2 9440
	[ "${lines[2]}" = "got v9440" ]
	# across sources: the file comes before VSOCKIFY_RULES, which comes before -r
	printf 'connect 10.0.2.2 vsock:1\n' >"$TEST_TMP/f.conf"
	run env VSOCKIFY_RULES='connect 10.0.2.2:9440 vsock:1:9441' "$VSOCKIFY" -c "$TEST_TMP/f.conf" python3 "$DIAL" 10.0.2.2 9440
	[ "${lines[2]}" = "got v9440" ]
	run env VSOCKIFY_RULES='connect 10.0.2.2:9440 vsock:1:9441' "$VSOCKIFY" -r 'connect 10.0.2.2 vsock:7' python3 "$DIAL" 10.0.2.2 9440
	[ "${lines[2]}" = "got v9441" ]
}

@test "first match wins for listen rules too" {
	local srv='import socket
l = socket.socket(); l.bind(("0.0.0.0", 9442)); l.listen(); print("listening", flush=True)
while True:
    a, _ = l.accept(); a.sendall(b"srv\n"); a.close()'
	start_bg s1 "$VSOCKIFY" -r 'listen *:9442 vsock:any:9443' -r 'listen 0.0.0.0:9442 vsock:any:9444' python3 -c "$srv"
	wait_for_log s1 listening
	run vsock_dial 9443
	[ "$output" = srv ]
	run vsock_dial 9444
	[[ $output =~ ^error\ ECONNRE(FUSED|SET)$ ]] # vsock: a reset for no listener
	kill "$(<"$TEST_TMP/s1.pid")"
	while kill -0 "$(<"$TEST_TMP/s1.pid")" 2>/dev/null; do sleep 0.1; done
	start_bg s2 "$VSOCKIFY" -r 'listen 0.0.0.0:9442 vsock:any:9444' -r 'listen *:9442 vsock:any:9443' python3 -c "$srv"
	wait_for_log s2 listening
	run vsock_dial 9444
	[ "$output" = srv ]
	run vsock_dial 9443
	[[ $output =~ ^error\ ECONNRE(FUSED|SET)$ ]]
}

@test "a rule cannot redefine vsock-N.local: an error for the wrapper, ignored by the library" {
	serve vsock v9445 9445
	run --separate-stderr "$VSOCKIFY" -r 'name vsock-5.local vsock:1' python3 "$DIAL" vsock-5.local 9445
	echo "$output $stderr"
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rule 1: "* ]]
	[ -z "$output" ]
	# library alone: the source is ignored whole, vsock-5.local stays CID 5
	# (CID 5 does not exist here: no route)
	run env VSOCKIFY_RULES='name db.internal vsock:1; name vsock-5.local vsock:1' LD_PRELOAD="$LIB" \
		python3 "$DIAL" vsock-5.local 9445
	echo "$output"
	[[ $output == *"error EHOSTUNREACH"* ]]
	# (the rules are read, and their problem logged, at the first lookup that needs them)
	run env VSOCKIFY_RULES='name db.internal vsock:1; name vsock-5.local vsock:1' LD_PRELOAD="$LIB" \
		python3 "$DIAL" db.internal 9445
	echo "$output"
	[[ $output == *"vsockify["*"]: VSOCKIFY_RULES: rule 2: "* ]]
	[[ $output == *"gaierror"* ]]
	# the same first rule alone works
	run env VSOCKIFY_RULES='name db.internal vsock:1' LD_PRELOAD="$LIB" python3 "$DIAL" db.internal 9445
	[ "$output" = $'peer 127.128.0.1 9445\nlocal 127.128.0.1\ngot v9445' ]
}

# ---- 6. bad input, library preloaded alone -------------------------------------

@test "library alone: a file with one bad rule is ignored whole; the built-in names still work" {
	serve vsock vsock9450 9450
	serve tcp tcp9450 9450
	printf '%s\n' '# good, then bad' 'connect 127.0.0.1:9450 vsock:1' 'connect 10.0.2.2:80 vsock:1:65536' >"$TEST_TMP/bad.conf"
	# the oracle: the good rule alone carries the dial to vsock
	head -n 2 "$TEST_TMP/bad.conf" >"$TEST_TMP/good.conf"
	run env VSOCKIFY_CONFIG="$TEST_TMP/good.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9450
	[ "$output" = $'peer 127.0.0.1 9450\nlocal 127.128.0.1\ngot vsock9450' ]
	# with the bad line the dial is plain TCP, and the problem is logged
	run env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9450
	echo "$output"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "vsockify["*"]: $TEST_TMP/bad.conf:3: "* ]]
	[ "$(grep -v '^vsockify\[' <<<"$output")" = $'peer 127.0.0.1 9450\nlocal 127.0.0.1\ngot tcp9450' ]
	# with the same bad file, built-in names still work
	run env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" LD_PRELOAD="$LIB" python3 "$DIAL" vsock-1.local 9450
	[ "${lines[-1]}" = "got vsock9450" ]
	# the log line goes to VSOCKIFY_LOG_FILE when set
	run env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" VSOCKIFY_LOG_FILE="$TEST_TMP/log" LD_PRELOAD="$LIB" \
		python3 "$DIAL" 127.0.0.1 9450
	[ "$output" = $'peer 127.0.0.1 9450\nlocal 127.0.0.1\ngot tcp9450' ]
	grep -q "^vsockify\[[0-9]*\]: .*$TEST_TMP/bad.conf:3: " "$TEST_TMP/log"
}

@test "library alone: each kind of bad rule makes its whole source ignored" {
	serve vsock vsock9451 9451
	serve tcp tcp9451 9451
	local bad
	for bad in 'forward 10.0.2.2:80 vsock:1' 'connect 10.0.2.2:80' 'connect 10.0.2.2:80 vsock:1 x' \
		'connect 10.0.2.2:80 1' 'connect [fd00::5 vsock:1' 'connect fd00::5]:80 vsock:1' \
		'connect 10.0.2.2:0 vsock:1' 'connect 10.0.2.2:80 vsock:1:65536' 'connect 10.0.2.2:80 vsock:4294967295' \
		'name db.internal:80 vsock:1' 'name db.internal vsock:1:80' 'name vsock-5.local vsock:1' \
		'connect 127.0.0.1:9451 vsock:2'; do
		run env VSOCKIFY_RULES="connect 127.0.0.1:9451 vsock:1; $bad" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9451
		echo "$bad => $output"
		[[ ${lines[0]} == "vsockify["*"]: VSOCKIFY_RULES: rule 2: "* ]]
		[ "${lines[-1]}" = "got tcp9451" ]
		printf 'connect 127.0.0.1:9451 vsock:1\n%s\n' "$bad" >"$TEST_TMP/bad.conf"
		run env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9451
		[[ ${lines[0]} == "vsockify["*"]: $TEST_TMP/bad.conf:2: "* ]]
		[ "${lines[-1]}" = "got tcp9451" ]
	done
	# a NUL byte, and a missing file
	printf 'connect 127.0.0.1:9451 vsock:1\n#\0\n' >"$TEST_TMP/nul.conf"
	run env VSOCKIFY_CONFIG="$TEST_TMP/nul.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9451
	[[ ${lines[0]} == "vsockify["*"]: $TEST_TMP/nul.conf:2: "* ]]
	[ "${lines[-1]}" = "got tcp9451" ]
	run env VSOCKIFY_CONFIG="$TEST_TMP/none.conf" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9451
	[[ ${lines[0]} == "vsockify["*"]: "*"$TEST_TMP/none.conf"* ]]
	[ "${lines[-1]}" = "got tcp9451" ]
	# the oracle: the same good rule with nothing bad goes to vsock
	run env VSOCKIFY_RULES="connect 127.0.0.1:9451 vsock:1" LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 9451
	[ "$output" = $'peer 127.0.0.1 9451\nlocal 127.128.0.1\ngot vsock9451' ]
}

@test "library alone: a bad VSOCKIFY_RULES leaves a good VSOCKIFY_CONFIG working, and the other way round" {
	serve vsock vsock9452 9452
	serve vsock vsock9453 9453
	serve tcp tcp9452 9452
	serve tcp tcp9453 9453
	printf 'connect 127.0.0.1:9452 vsock:1\n' >"$TEST_TMP/good.conf"
	printf 'connect 127.0.0.1:9452 vsock:1\nconnect 127.0.0.1:9452 vsock:1\n' >"$TEST_TMP/bad.conf"
	# good file, bad rules
	for p in 9452 9453; do
		run env VSOCKIFY_CONFIG="$TEST_TMP/good.conf" VSOCKIFY_RULES="connect 127.0.0.1:9453 vsock:1; listen *:0 vsock:any" \
			LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 "$p"
		echo "$output"
		[[ $output == *"vsockify["*"]: VSOCKIFY_RULES: rule 2: "* ]]
		[[ $output != *"good.conf"* ]]
		want=tcp; [[ $p == 9452 ]] && want=vsock
		[ "${lines[-1]}" = "got $want$p" ]
	done
	# bad file (a repeated rule), good rules
	for p in 9452 9453; do
		run env VSOCKIFY_CONFIG="$TEST_TMP/bad.conf" VSOCKIFY_RULES="connect 127.0.0.1:9453 vsock:1" \
			LD_PRELOAD="$LIB" python3 "$DIAL" 127.0.0.1 "$p"
		echo "$output"
		[[ $output == *"vsockify["*"]: $TEST_TMP/bad.conf:2: "* ]]
		[[ $output != *"VSOCKIFY_RULES"* ]]
		want=tcp; [[ $p == 9453 ]] && want=vsock
		[ "${lines[-1]}" = "got $want$p" ]
	done
}
