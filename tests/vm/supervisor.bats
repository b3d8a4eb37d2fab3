#!/usr/bin/env bats
# The seccomp supervisor (docs/supervisor.md): programs that never call
# libc's socket functions (busybox-static, static C, Go) run unmodified
# under `vsockify --supervise`, each result beside the same program over
# plain TCP.  The peers are native AF_VSOCK programs (socat), so a test
# fails unless the traffic really crossed vsock.

load ../lib/common

STATIC=$ROOT/build/helpers/static

setup() {
	require_vm
	common_setup
	no_rules_from_environment
	printf 'HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom vsk\n' >"$TEST_TMP/resp"
	start_vsock_http web 8080 "$TEST_TMP/resp"
	[[ -x $STATIC/supprobe ]] || { echo "build/helpers/static is missing: run make" >&2; return 1; }
}
teardown() { common_teardown; }

# tcp_http NAME PORT: the same responder over plain TCP on 127.0.0.1.
tcp_http() {
	start_bg "$1" socat -d -d TCP-LISTEN:"$2",bind=127.0.0.1,fork,reuseaddr \
		SYSTEM:"sed -n '/^\r*$/q' >/dev/null; cat '$TEST_TMP/resp'"
	wait_for_log "$1" "listening on"
}

@test "busybox-static wget fetches over vsock with a fake address, as over TCP" {
	tcp_http tweb 18080
	run busybox wget -q -O - http://127.0.0.1:18080/
	[ "$status" -eq 0 ]
	local tcp=$output
	run "$VSOCKIFY" --supervise busybox wget -q -O - http://127.128.0.1:8080/
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp" ]
	[ "$output" = "from vsk" ]
}

@test "one supervisor, 40 processes one after another, each connect translated (pidfd cache)" {
	# More processes than the supervisor keeps pidfds for (16): each wget
	# is a new process whose connect is ours, so the cache fills, evicts
	# and reopens.  A wrong or stale pidfd leaves a connect untranslated
	# (TCP to the fake: refused) and that fetch fails.
	tcp_http tweb 18082
	loop='n=0; for i in $(busybox seq 40); do
		[ "$(busybox wget -q -O - "http://$1/")" = "from vsk" ] && n=$((n + 1)); done; echo "$n fetched"'
	run busybox sh -c "$loop" sh 127.0.0.1:18082
	[ "$output" = "40 fetched" ]
	run "$VSOCKIFY" --supervise busybox sh -c "$loop" sh 127.128.0.1:8080
	[ "$status" -eq 0 ]
	[ "$output" = "40 fetched" ]
}

@test "strace: the vsock socket is the supervisor's, installed on the program's fd" {
	run strace -f -qq -e trace=socket,connect -o "$TEST_TMP/st" \
		"$VSOCKIFY" --supervise busybox wget -q -O - http://127.128.0.1:8080/
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
	grep -q 'socket(AF_VSOCK' "$TEST_TMP/st"
	grep -q 'connect(.*AF_VSOCK.*svm_cid=VMADDR_CID_LOCAL' "$TEST_TMP/st"
	# The program itself only ever asked for TCP.
	grep 'connect(.*127.128.0.1' "$TEST_TMP/st"
}

@test "a closed vsock port is 'connection refused', as a closed TCP port" {
	run busybox wget -q -O - http://127.0.0.1:18099/
	local tcp=$output
	VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE=$TEST_TMP/log \
		run "$VSOCKIFY" --supervise busybox wget -q -O - http://127.128.0.1:18099/
	[ "$status" -ne 0 ]
	[[ $tcp == *"Connection refused"* ]]
	[ "${output//127.128.0.1/127.0.0.1}" = "$tcp" ]
	# Refused by vsock, not by a TCP connect to 127.128.0.1 left alone.
	grep -q 'connect 127.128.0.1:18099 -> vsock:1:18099' "$TEST_TMP/log"
}

@test "static C: blocking connect, then getpeername/getsockname show TCP addresses" {
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:7007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	run "$STATIC/supprobe" connect 127.0.0.1 7007
	local tcp=$output
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" connect 127.128.0.1 7007
	[ "$status" -eq 0 ]
	[ "$output" = "${tcp//127.0.0.1/127.128.0.1}" ]
	[[ $output == *"peer=inet addr=127.128.0.1 port=7007"* ]]
	[[ $output == *"local=inet"* ]]
	# AF_INET6 with the IPv6 fake.
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" connect 100::7673:6f63:0:1 7007
	[[ $output == *"peer=inet6 addr=100::7673:6f63:0:1 port=7007"* ]]
}

@test "static C: one fd number reused with other flags, each connect as over TCP (kept fdinfo files)" {
	# The supervisor reads a fd's flags (blocking, close-on-exec) from a
	# /proc fdinfo file it keeps open by fd number.  Read stale, the
	# non-blocking second socket would get a blocking connect (0, not
	# EINPROGRESS) and lose close-on-exec.
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:7007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	run "$STATIC/supprobe" fd-reuse 127.0.0.1 7007
	[ "$status" -eq 0 ]
	local tcp=$output
	[[ $tcp == *"round=2 same_fd=1 connect=EINPROGRESS so_error=0 nonblock=1 cloexec=1 echo=ok"* ]]
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" fd-reuse 127.128.0.1 7007
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp" ]
}

@test "static C: name truncation and NULL buffers, as the kernel does for TCP" {
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:7007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	run "$STATIC/addrcheck" 127.0.0.1 7007
	[ "$status" -eq 0 ]
	local tcp=$output
	run "$VSOCKIFY" --supervise "$STATIC/addrcheck" 127.128.0.1 7007
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp" ]
}

@test "a fake address that names no CID: EHOSTUNREACH" {
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" connect 127.255.255.254 80
	[ "$output" = "connect=EHOSTUNREACH" ]
}

@test "busybox httpd serves over vsock on vsock-any's fake" {
	mkdir -p "$TEST_TMP/www"
	echo served >"$TEST_TMP/www/index.html"
	start_bg httpd "$VSOCKIFY" --supervise busybox httpd -f -vv -p 127.255.255.255:8081 -h "$TEST_TMP/www"
	sleep 1
	run bash -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | socat -T 10 - VSOCK-CONNECT:1:8081"
	[ "$status" -eq 0 ]
	[[ $output == *"200 OK"* ]]
	[[ ${lines[-1]} == "served" ]]
	# httpd logs the peer it was shown: the fake of CID 1, not an error.
	grep -q '127.128.0.1' "$TEST_TMP/httpd.log"
}

@test "a daemon that forks into the background keeps its vsock listener after vsockify returns" {
	mkdir -p "$TEST_TMP/www"
	echo daemon >"$TEST_TMP/www/index.html"
	# Without -f, busybox httpd forks, and its parent exits at once.
	run "$VSOCKIFY" --supervise busybox httpd -p 127.255.255.255:8083 -h "$TEST_TMP/www"
	[ "$status" -eq 0 ]
	# The daemon alone (the supervisor's own command line starts with
	# vsockify, and goes when the daemon does).
	pgrep -f '^busybox httpd -p 127.255.255.255:8083' >"$TEST_TMP/daemon.pid"
	[ "$(wc -l <"$TEST_TMP/daemon.pid")" -eq 1 ]
	run bash -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | socat -T 10 - VSOCK-CONNECT:1:8083"
	[[ ${lines[-1]} == "daemon" ]]
	run bash -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | socat -T 10 - VSOCK-CONNECT:1:8083"
	[[ ${lines[-1]} == "daemon" ]]
}

@test "busybox nc -l under a listen rule; the peer shown is the fake of CID 1" {
	start_bg nc "$VSOCKIFY" -r 'listen *:8082 vsock:any' --supervise busybox nc -l -p 8082
	sleep 1
	run bash -c "echo hello-nc | socat -T 5 - VSOCK-CONNECT:1:8082"
	sleep 0.5
	grep -q hello-nc "$TEST_TMP/nc.log"
}

@test "static C server: blocking accept interrupted by a signal gives EINTR, as TCP" {
	run "$STATIC/supprobe" accept-intr 127.0.0.1 17010
	[ "${lines[1]}" = "accept=EINTR" ]
	VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE=$TEST_TMP/log \
		run "$VSOCKIFY" --supervise "$STATIC/supprobe" accept-intr 127.255.255.255 7010
	[ "${lines[0]}" = "listening" ]
	[ "${lines[1]}" = "accept=EINTR" ]
	# The accept waited on a vsock listener, not on a TCP one left alone.
	grep -q 'bind 127.255.255.255:7010 -> vsock:4294967295:7010' "$TEST_TMP/log"
}

@test "static C server: with SA_RESTART the accept goes on and takes the next client" {
	start_bg tsrv "$STATIC/supprobe" accept-restart 127.0.0.1 17011
	wait_for_log tsrv listening
	sleep 0.6
	echo x | socat -T 2 - TCP:127.0.0.1:17011 || true
	wait_for_log tsrv "accept="
	local tcp
	tcp=$(tail -1 "$TEST_TMP/tsrv.log")
	start_bg vsrv "$VSOCKIFY" --supervise "$STATIC/supprobe" accept-restart 127.255.255.255 7011
	wait_for_log vsrv listening
	sleep 0.6 # past the signal, which restarts the trapped accept
	echo x | socat -T 2 - VSOCK-CONNECT:1:7011 || true
	wait_for_log vsrv "accept="
	[ "$(tail -1 "$TEST_TMP/vsrv.log")" = "$tcp" ]
	[ "$tcp" = "accept=ok peer=inet len=16" ]
}

@test "static C server: a burst of 50 clients, each answered" {
	start_bg srv "$VSOCKIFY" --supervise "$STATIC/supprobe" serve 127.255.255.255 7012 50
	wait_for_log srv listening
	local ok=0
	for i in $(seq 50); do
		[[ $(echo "c$i" | socat -T 5 - VSOCK-CONNECT:1:7012) == "c$i" ]] && ok=$((ok + 1))
	done
	[ "$ok" -eq 50 ]
	wait_for_log srv "served=50"
}

@test "MPTCP sockets (Go 1.24's default for listeners) are swapped as TCP ones are, client and server" {
	# socket(..., IPPROTO_MPTCP) is a TCP stream to the program; the
	# library swaps it, and so must the supervisor.  Passed through, the
	# connect to the fake is refused and the server listens on TCP.
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:7007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	SUPPROBE_PROTO=262 run "$STATIC/supprobe" connect 127.0.0.1 7007
	local tcp=$output
	[[ $tcp == "proto=262"$'\n'"connect=0"* ]]
	SUPPROBE_PROTO=262 run "$VSOCKIFY" --supervise "$STATIC/supprobe" connect 127.128.0.1 7007
	[ "$status" -eq 0 ]
	[ "$output" = "${tcp//127.0.0.1/127.128.0.1}" ]
	# server: an MPTCP listener on vsock-any's fake, reached by a vsock client
	SUPPROBE_PROTO=262 start_bg srv "$VSOCKIFY" --supervise "$STATIC/supprobe" serve \
		127.255.255.255 7013 2
	wait_for_log srv listening
	[[ $(echo one | socat -T 5 - VSOCK-CONNECT:1:7013) == one ]]
	[[ $(echo two | socat -T 5 - VSOCK-CONNECT:1:7013) == two ]]
	wait_for_log srv "served=2"
}

@test "plain TCP and names under the supervisor stay untouched" {
	tcp_http tweb 18081
	run "$VSOCKIFY" --supervise busybox wget -q -O - http://127.0.0.1:18081/
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
	start_bg techo socat -d -d TCP-LISTEN:17013,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	run "$STATIC/supprobe" connect 127.0.0.1 17013
	local tcp=$output
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" connect 127.0.0.1 17013
	[ "$output" = "$tcp" ]
}

@test "exit status and signals: the program's status; a signal to vsockify reaches the program" {
	run "$VSOCKIFY" --supervise busybox sh -c 'exit 7'
	[ "$status" -eq 7 ]
	start_bg slp "$VSOCKIFY" --supervise busybox sleep 30
	sleep 1
	kill -TERM "$(<"$TEST_TMP/slp.pid")"
	local st=0
	wait "$(<"$TEST_TMP/slp.pid")" || st=$?
	[ "$st" -eq 143 ]
	! pgrep -f 'busybox sleep 30'
}

@test "the supervisor killed: the program's next connect fails (ENOSYS) instead of hanging" {
	start_bg prog "$VSOCKIFY" --supervise busybox sh -c \
		'echo $PPID >'"$TEST_TMP"'/super; sleep 2; wget -q -O - http://127.128.0.1:8080/; echo "wget=$?"'
	sleep 1
	kill -9 "$(<"$TEST_TMP/super")"
	for _ in $(seq 100); do grep -q 'wget=' "$TEST_TMP/prog.log" && break; sleep 0.1; done
	grep -q 'wget=1' "$TEST_TMP/prog.log"
	grep -qi 'not implemented' "$TEST_TMP/prog.log"
}

@test "refusals: setuid programs, and a process already under a supervisor" {
	cp /bin/busybox "$TEST_TMP/bb"
	chmod u+s "$TEST_TMP/bb"
	run "$VSOCKIFY" --supervise "$TEST_TMP/bb" true
	[ "$status" -eq 2 ]
	[[ $output == *"setuid or setgid"* ]]
	run "$VSOCKIFY" --supervise "$VSOCKIFY" --supervise busybox true
	[ "$status" -eq 2 ]
	[[ $output == *"already under a seccomp supervisor"* ]]
}

@test "native AF_VSOCK calls under the supervisor are never translated" {
	start_bg echo socat -d -d VSOCK-LISTEN:7014,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	# socat is dynamic: forced under the supervisor, its own VSOCK-CONNECT
	# (a sockaddr_vm, not a fake) passes untouched.
	run bash -c "echo native | '$VSOCKIFY' --supervise socat -T 5 - VSOCK-CONNECT:1:7014"
	[ "$status" -eq 0 ]
	[ "$output" = "native" ]
}

# ---- Go --------------------------------------------------------------------

GO=$ROOT/build/helpers/go

need_go() {
	[[ -x $GO/gonet && -x $GO/govsock && -x $GO/gonet-cgo ]] ||
		{ echo "build/helpers/go is missing: make deps, then make" >&2; return 1; }
}

# mask_ports: ephemeral ports differ from run to run.
mask_ports() { sed -E 's/:[0-9]{4,5}( |$)/:PORT\1/g'; }

start_echoes() {
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:17007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
}

@test "Go (static): net.Dial to a fake and to vsock-1.local, addresses as over TCP" {
	need_go
	start_echoes
	run "$GO/gonet" dial 127.0.0.1:17007 hi
	[ "$status" -eq 0 ]
	local tcp
	tcp=$(mask_ports <<<"${output//127.0.0.1/127.128.0.1}")
	run "$VSOCKIFY" "$GO/gonet" dial 127.128.0.1:7007 hi
	[ "$status" -eq 0 ]
	[ "$(mask_ports <<<"$output")" = "$tcp" ]
	# The name goes through Go's own resolver to the supervisor's responder.
	run "$VSOCKIFY" "$GO/gonet" dial vsock-1.local:7007 hi
	[ "$status" -eq 0 ]
	[ "$(mask_ports <<<"$output")" = "$tcp" ]
}

@test "Go (static): the way in is chosen by itself, and --check says why" {
	need_go
	run "$VSOCKIFY" --check "$GO/gonet"
	[ "$output" = "$GO/gonet: the supervisor (a static Go program)" ]
	run "$VSOCKIFY" --check "$GO/gonet-cgo"
	[[ $output == *"the preload library and the supervisor (a dynamically linked Go program"* ]]
	run "$VSOCKIFY" --check /bin/true
	[[ $output == "/bin/true: the preload library (dynamically linked"* ]]
	run "$VSOCKIFY" --check busybox
	[[ $output == *"busybox: the supervisor (statically linked)" ]]
}

# with_dns CMD...: CMD with /etc/resolv.conf naming a DNS server on
# 127.0.0.1 that the test runs (dns.log lists what reached it).
with_dns() {
	echo "nameserver 127.0.0.1" >"$TEST_TMP/resolv.conf"
	unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$TEST_TMP/resolv.conf" "$@"
}
start_dns() {
	start_bg dns python3 "$HELPERS/dns_server.py" 127.0.0.1 53 example.test=127.0.0.7
	wait_for_log dns listening
}

@test "Go's resolver: our names answered by the supervisor, other names by DNS, untouched" {
	need_go
	start_dns
	run with_dns "$GO/gonet" lookup example.test
	[ "$status" -eq 0 ]
	local tcp=$output
	[ "$tcp" = "127.0.0.7" ]
	run with_dns "$VSOCKIFY" "$GO/gonet" lookup example.test
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp" ]
	run with_dns "$VSOCKIFY" "$GO/gonet" lookup nosuch.test
	[ "$status" -eq 1 ]
	[[ $output == *"no such host"* ]]
	run with_dns "$VSOCKIFY" "$GO/gonet" lookup vsock-3.local
	[ "$output" = "127.128.0.3" ]
	run with_dns "$VSOCKIFY" "$GO/gonet" lookup vsock-4294967290.local
	[ "$output" = "100::7673:6f63:ffff:fffa" ]
	run with_dns "$VSOCKIFY" -r 'name db.internal vsock:7' "$GO/gonet" lookup db.internal
	[ "$output" = "127.128.0.7" ]
	run with_dns "$VSOCKIFY" "$GO/gonet" lookup vsock-bad.local
	[ "$status" -eq 1 ]
	[[ $output == *"no such host"* ]]
	# Our names never reached the DNS server; the others did.
	grep -q 'query example.test' "$TEST_TMP/dns.log"
	grep -q 'query nosuch.test' "$TEST_TMP/dns.log"
	! grep -qE 'vsock|db.internal' "$TEST_TMP/dns.log"
}

@test "Go (static): net.Listen on vsock-any.local and under a listen rule (dual-stack ::)" {
	need_go
	start_bg tsrv "$GO/gonet" serve 127.0.0.1:17090
	wait_for_log tsrv listening
	echo via-tcp | socat -T 5 - TCP:127.0.0.1:17090
	wait_for_log tsrv accepted
	local tcp
	tcp=$(grep accepted "$TEST_TMP/tsrv.log" | mask_ports)
	start_bg srv "$VSOCKIFY" "$GO/gonet" serve vsock-any.local:8090
	wait_for_log srv listening
	run bash -c "echo via-vsock | socat -T 5 - VSOCK-CONNECT:1:8090"
	[ "$output" = "via-vsock" ]
	wait_for_log srv accepted
	[ "$(grep accepted "$TEST_TMP/srv.log" | mask_ports)" = "${tcp//127.0.0.1/127.128.0.1}" ]
	grep -q 'listening 127.255.255.255:8090' "$TEST_TMP/srv.log"
	# net.Listen("tcp", ":8091") makes one AF_INET6 socket with IPV6_V6ONLY=0.
	start_bg rsrv "$VSOCKIFY" -r 'listen *:8091 vsock:any' "$GO/gonet" serve :8091
	wait_for_log rsrv listening
	run bash -c "echo rule | socat -T 5 - VSOCK-CONNECT:1:8091"
	[ "$output" = "rule" ]
	grep -q 'listening \[::\]:8091' "$TEST_TMP/rsrv.log"
}

@test "Go (cgo): libc resolves through the library, the supervisor connects, one swap" {
	need_go
	start_echoes
	VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE=$TEST_TMP/log run "$VSOCKIFY" "$GO/gonet-cgo" dial vsock-1.local:7007 hi
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "hi" ]
	[[ ${lines[0]} == "local=127.128.0.1:"*" remote=127.128.0.1:7007" ]]
	# The library resolved the name; the supervisor made the one swap.
	grep -q 'getaddrinfo("vsock-1.local") -> CID 1' "$TEST_TMP/log"
	[ "$(grep -c 'supervisor: pid .* connect 127.128.0.1:7007 -> vsock:1:7007' "$TEST_TMP/log")" -eq 1 ]
}

@test "a native AF_VSOCK Go program (mdlayher/vsock) is left untouched" {
	need_go
	start_echoes
	run "$VSOCKIFY" "$GO/govsock" dial 1 7007 native
	[ "$status" -eq 0 ]
	[ "$output" = "native" ]
	start_bg gv "$VSOCKIFY" "$GO/govsock" listen 7020
	sleep 2
	run bash -c "echo back | socat -T 5 - VSOCK-CONNECT:1:7020"
	[ "$output" = "back" ]
}

@test "Debian's Go programs: hey (client) and caddy reverse-proxy (TCP in, vsock out)" {
	command -v hey caddy >/dev/null || { echo "hey/caddy missing: make deps" >&2; return 1; }
	run "$VSOCKIFY" hey -n 20 -c 4 http://vsock-1.local:8080/
	[ "$status" -eq 0 ]
	[[ $output == *"[200]	20 responses"* ]]
	export HOME=$TEST_TMP XDG_DATA_HOME=$TEST_TMP XDG_CONFIG_HOME=$TEST_TMP
	start_bg caddy "$VSOCKIFY" caddy reverse-proxy --from :18095 --to vsock-1.local:8080
	for _ in $(seq 600); do curl -s -o /dev/null http://127.0.0.1:18095/ && break; sleep 0.1; done
	run curl -sS http://127.0.0.1:18095/
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
}

@test "Debian's Go servers: caddy file-server and nats-server listen on vsock" {
	command -v caddy nats-server >/dev/null || { echo "caddy/nats-server missing: make deps" >&2; return 1; }
	export HOME=$TEST_TMP XDG_DATA_HOME=$TEST_TMP XDG_CONFIG_HOME=$TEST_TMP
	mkdir -p "$TEST_TMP/site"
	echo caddy-over-vsock >"$TEST_TMP/site/index.html"
	start_bg caddy "$VSOCKIFY" caddy file-server --listen vsock-any.local:8096 --root "$TEST_TMP/site"
	local out=
	for _ in $(seq 120); do
		out=$(printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | socat -T 5 - VSOCK-CONNECT:1:8096 2>/dev/null) && [[ $out == *caddy-over-vsock* ]] && break
		sleep 0.5
	done
	[[ $out == *"caddy-over-vsock"* ]]
	start_bg nats "$VSOCKIFY" nats-server -a vsock-any.local -p 4222
	for _ in $(seq 120); do
		out=$(socat -T 2 - VSOCK-CONNECT:1:4222 </dev/null 2>/dev/null | head -1) && [[ $out == INFO* ]] && break
		sleep 0.5
	done
	[[ $out == "INFO {"* ]]
}

# ---- process models ------------------------------------------------------------

@test "fork and exec: a static shell runs wget and a dynamic curl, both translated" {
	run "$VSOCKIFY" --supervise busybox sh -c 'busybox wget -q -O - http://127.128.0.1:8080/; curl -sS http://127.128.0.1:8080/'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "from vsk" ]
	[ "${lines[1]}" = "from vsk" ]
}

@test "exec keeps the translation: nc -e hands its accepted socket to python, which sees TCP" {
	start_bg nc "$VSOCKIFY" -r 'listen *:8097 vsock:any' --supervise busybox nc -l -p 8097 -e \
		python3 -c 'import socket; s = socket.socket(fileno=0); print(s.family.name, s.proto, s.getsockname()[1]); print(s.getpeername()[0])'
	sleep 1.5
	run socat -t 30 -T 30 - VSOCK-CONNECT:1:8097
	[ "${lines[0]}" = "AF_INET6 6 8097" ]
	# An AF_INET6 listener shows its peers in the IPv6 fake form, as
	# under the library.
	[ "${lines[1]}" = "100::7673:6f63:0:1" ]
}

@test "a shimmed shell script that runs a static Go program hands it to the supervisor" {
	need_go
	start_echoes
	# Without the hand-off, the Go program's raw connect to the fake
	# would be plain TCP to 127.128.0.1, and refused.
	run "$VSOCKIFY" bash -c "'$GO/gonet' dial vsock-1.local:7007 from-bash"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "from-bash" ]
	run "$VSOCKIFY" python3 -c "import subprocess; subprocess.run(['$GO/gonet', 'dial', '127.128.0.1:7007', 'from-python'], check=True)"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "from-python" ]
}

@test "posix_spawn, posix_spawnp and execl hand a static program over too (python3, make, script)" {
	# libc's posix_spawn* and execl* reach the kernel without its execve.
	# Without their hooks busybox runs unsupervised, and its connect to
	# the fake is plain TCP to 127.128.0.1:8080, refused.
	local url=http://127.128.0.1:8080/ py
	py="import os, sys; spawn = getattr(os, sys.argv[1]); pid = spawn(sys.argv[2], ['wget', '-q', '-O', '-', '$url'], os.environ); sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))"
	run "$VSOCKIFY" python3 -c "$py" posix_spawn "$(command -v busybox)"
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
	run "$VSOCKIFY" python3 -c "$py" posix_spawnp busybox
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
	# GNU make runs a recipe without shell syntax by posix_spawn itself.
	printf 'all:\n\tbusybox wget -q -O - %s\n' "$url" >"$TEST_TMP/Makefile"
	run "$VSOCKIFY" make -s -C "$TEST_TMP"
	[ "$status" -eq 0 ]
	[ "$output" = "from vsk" ]
	# script(1) starts $SHELL with execl.
	ln -s "$(command -v busybox)" "$TEST_TMP/sh"
	run env SHELL="$TEST_TMP/sh" "$VSOCKIFY" script -qec "busybox wget -q -O - $url" /dev/null
	[ "$status" -eq 0 ]
	[ "$(tr -d '\r' <<<"$output")" = "from vsk" ]
}

@test "a program with a seccomp filter of its own: filters stack, the stricter answer wins" {
	start_echoes
	# Its filter allows connect: ours still sees it, and translates it.
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" own-filter 127.128.0.1 7007 0
	[ "${lines[0]}" = "mkdir=EPERM" ]
	[ "${lines[1]}" = "connect=0" ]
	[[ ${lines[3]} == "peer=inet addr=127.128.0.1 port=7007" ]]
	# Its filter refuses connect (EACCES): that answer wins, as without us.
	run "$STATIC/supprobe" own-filter 127.0.0.1 17007 13
	local plain=$output
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" own-filter 127.128.0.1 7007 13
	[ "$output" = "$plain" ]
	[ "${lines[1]}" = "connect=EACCES" ]
}

@test "threads: a thread blocked in accept never stalls another thread's connect" {
	start_echoes
	run timeout 60 "$STATIC/supprobe" threads 127.0.0.1 17007 17030
	local plain=$output
	[ "$status" -eq 0 ]
	run timeout 60 "$VSOCKIFY" --supervise "$STATIC/supprobe" threads 127.128.0.1 7007 7030
	[ "$status" -eq 0 ]
	[ "$output" = "$plain" ]
	[ "$output" = $'listening\nmain echo=echo\nthread accept=ok' ]
}

@test "shutdown() of a vsock listener: blocked accepts in threads and a fork child get EINVAL, poll wakes, as over TCP" {
	run timeout 120 "$STATIC/supprobe" listen-shutdown 127.0.0.1 17040 127.0.0.1
	echo "oracle ($status): $output"
	[ "$status" -eq 0 ]
	local oracle=$output
	[[ $oracle == *"SHUT_RDWR: blocked accepts: EINVAL EINVAL"* ]]
	VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE=$TEST_TMP/log \
		run timeout 120 "$VSOCKIFY" --supervise "$STATIC/supprobe" listen-shutdown \
		127.255.255.255 7040 127.128.0.1
	echo "supervised ($status): $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$oracle" ] || { diff <(echo "$oracle") <(echo "$output"); return 1; }
	# The listeners were vsock, and their shutdown was the supervisor's.
	grep -q 'bind 127.255.255.255:7041 -> vsock:' "$TEST_TMP/log"
	grep -q 'listener shut down' "$TEST_TMP/log"
}

@test "signals during blocking connects (SA_RESTART, and EINTR then connect again): every connect works, as over TCP" {
	start_echoes
	for mode in restart retry; do
		run timeout 120 "$STATIC/supprobe" connect-signals 127.0.0.1 17007 $mode 150 400
		echo "TCP $mode: $output"
		[ "$output" = "connects=150 ok=150" ]
		VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE=$TEST_TMP/log-$mode \
			run timeout 120 "$VSOCKIFY" --supervise "$STATIC/supprobe" connect-signals \
			127.128.0.1 7007 $mode 150 400
		echo "supervised $mode: $output"
		[ "$output" = "connects=150 ok=150" ]
		grep -q 'connect 127.128.0.1:7007 -> vsock:1:7007' "$TEST_TMP/log-$mode"
	done
}
