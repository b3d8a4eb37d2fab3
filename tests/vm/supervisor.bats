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
	run "$VSOCKIFY" --supervise busybox wget -q -O - http://127.128.0.1:18099/
	[ "$status" -ne 0 ]
	[[ $tcp == *"Connection refused"* ]]
	[ "${output//127.128.0.1/127.0.0.1}" = "$tcp" ]
}

@test "static C: blocking connect, then getpeername/getsockname show TCP addresses" {
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:17007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	run "$STATIC/supprobe" connect 127.0.0.1 17007
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

@test "static C: name truncation and NULL buffers, as the kernel does for TCP" {
	start_bg echo socat -d -d VSOCK-LISTEN:7007,fork,reuseaddr EXEC:cat
	wait_for_log echo "listening on"
	start_bg techo socat -d -d TCP-LISTEN:17007,bind=127.0.0.1,fork,reuseaddr EXEC:cat
	wait_for_log techo "listening on"
	run "$STATIC/addrcheck" 127.0.0.1 17007
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
	pgrep -f 'httpd -p 127.255.255.255:8083' >"$TEST_TMP/daemon.pid"
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
	run "$VSOCKIFY" --supervise "$STATIC/supprobe" accept-intr 127.255.255.255 7010
	[ "${lines[0]}" = "listening" ]
	[ "${lines[1]}" = "accept=EINTR" ]
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
