#!/usr/bin/env bats
# Names and sockets that are not ours behave exactly as without the shim:
# every test runs the same real program twice and compares the output.

load ../lib/common

setup() { common_setup; }
teardown() { common_teardown; }

GAIDUMP() { "$ROOT/build/helpers/gaidump" "$@"; }

# same_output CMD...: CMD prints the same with and without the library.
same_output() {
	local plain shimmed
	plain=$("$@" 2>&1; echo "exit=$?")
	shimmed=$(export LD_PRELOAD=$LIB; "$@" 2>&1; echo "exit=$?")
	if [[ $plain != "$shimmed" ]]; then
		echo "differs for: $*"
		diff <(echo "$plain") <(echo "$shimmed")
		return 1
	fi
	echo "$plain"
}

hosts_name() { # a name from /etc/hosts other than localhost
	awk '!/^[[:space:]]*#/ && NF >= 2 { for (i = 2; i <= NF; i++) if ($i != "localhost") { print $i; exit } }' /etc/hosts
}

@test "getaddrinfo over names and hints is byte-identical (C program)" {
	local h
	h=$(hosts_name)
	[ -n "$h" ]
	AI_PASSIVE=1 AI_CANONNAME=2 AI_NUMERICHOST=4 AI_ADDRCONFIG=32
	for node in localhost 127.0.0.1 ::1 "$h" - no-such-host.invalid 127.128.0.3 vsock-3.local.example; do
		for hints in "- - -" "0 0 0" "2 1 0" "10 1 0" "0 1 $AI_PASSIVE" "0 1 $AI_CANONNAME" \
			"0 1 $AI_NUMERICHOST" "0 2 $AI_ADDRCONFIG" "0 0 $((AI_PASSIVE | AI_CANONNAME))"; do
			[[ $node == - && $hints == *" $AI_CANONNAME" ]] && continue
			# shellcheck disable=SC2086
			same_output GAIDUMP gai "$node" 8080 $hints >/dev/null
		done
	done
	same_output GAIDUMP gai - http 0 1 $AI_PASSIVE
	same_output GAIDUMP gai - - 0 0 0 # both fail the same way
}

@test "python getaddrinfo, gethostbyname and getnameinfo are identical" {
	local h
	h=$(hosts_name)
	run same_output python3 -c '
import socket, sys
for n in ["localhost", "127.0.0.1", "::1", sys.argv[1], None]:
    for flags in [0, socket.AI_PASSIVE, socket.AI_CANONNAME, socket.AI_NUMERICHOST]:
        try: print(n, flags, socket.getaddrinfo(n, 80, 0, 0, 0, flags))
        except socket.gaierror as e: print(n, flags, "error", e.errno)
print(socket.gethostbyname("localhost"), socket.gethostbyname_ex(sys.argv[1]))
print(socket.getnameinfo(("127.0.0.1", 22), 0), socket.gethostbyaddr("127.0.0.1"))' "$h"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "gethostbyname_r: ours fills the caller's buffer, reports ERANGE when short" {
	run preload "$ROOT/build/helpers/gaidump" hostent_r vsock-6.local 512
	[ "$output" = "rc=0 herr=0 result=vsock-6.local addr=127.128.0.6" ]
	run preload "$ROOT/build/helpers/gaidump" hostent_r vsock-6.local 8
	[ "$output" = "rc=34 herr=-1 result=NULL" ]
	run preload "$ROOT/build/helpers/gaidump" hostent_r vsock-x.local 512
	[ "$output" = "rc=0 herr=1 result=NULL" ]
	run preload "$ROOT/build/helpers/gaidump" hostaddr 127.128.0.6
	[ "$output" = "vsock-6.local" ]
	# and libc's own answers pass through
	run same_output "$ROOT/build/helpers/gaidump" hostent_r localhost 512
	[ "$status" -eq 0 ]
	run same_output "$ROOT/build/helpers/gaidump" hostent_r localhost 8
	[ "$status" -eq 0 ]
}

@test "curl to a local TCP server is unchanged, and stays AF_INET (strace)" {
	port=$(free_tcp_port)
	mkdir -p "$TEST_TMP/www" && echo "plain tcp" >"$TEST_TMP/www/index.html"
	start_bg http python3 -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/www" "$port"
	wait_for_tcp_port "$port"
	run same_output curl -sS -w ' %{http_code} %{remote_ip} %{remote_port} %{local_ip}\n' "http://localhost:$port/index.html"
	[ "$status" -eq 0 ]
	[[ $output == *"plain tcp"*" 200 127.0.0.1 $port 127.0.0.1"* ]] || [[ $output == *"plain tcp"*" 200 ::1 $port"* ]]
	run env LD_PRELOAD="$LIB" strace -f -e trace=socket,connect,dup3 curl -sS "http://127.0.0.1:$port/index.html"
	[[ $output == *"connect("*"sa_family=AF_INET, sin_port=htons($port)"* ]]
	! grep -q AF_VSOCK <<<"$output"
	! grep -q 'dup3(' <<<"$output"
}

@test "a unix-socket client is unchanged" {
	start_bg usrv socat UNIX-LISTEN:"$TEST_TMP/sock",fork EXEC:"tr a-z A-Z"
	for _ in $(seq 50); do [ -S "$TEST_TMP/sock" ] && break; sleep 0.1; done
	run same_output python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1]); s.sendall(b"hello"); s.shutdown(socket.SHUT_WR)
print(s.recv(100), s.family, s.getpeername() == sys.argv[1], s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))' "$TEST_TMP/sock"
	[ "$status" -eq 0 ]
	[[ $output == *"b'HELLO'"* ]]
}

@test "plain TCP sockets: names, options and errors are unchanged" {
	port=$(free_tcp_port)
	start_bg echo socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork EXEC:cat
	wait_for_tcp_port "$port"
	run same_output python3 -c '
import errno, socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print(s.getpeername(), s.getsockname()[0], s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
print(s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
try: socket.create_connection(("127.0.0.1", 1))
except OSError as e: print("refused", errno.errorcode[e.errno])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0)); u.sendto(b"x", u.getsockname()); print("udp", u.recv(1))' "$port"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"refused ECONNREFUSED"* ]]
}
