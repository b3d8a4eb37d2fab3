#!/usr/bin/env bats
# Early vsock sockets (docs/design.md), an opt-in feature turned on for every
# test here: once a call site's connects went to vsock, its next socket() is
# AF_VSOCK from the start.  mixed.bats checks the default (off).  strace proves which
# socket the kernel made; every behaviour is compared with the same program
# over plain TCP (the oracle), run without the shim.  Ports 9301..9349.

load ../lib/common

EARLY=$HELPERS/early_client.py

setup() {
	require_vm
	common_setup
	export VSOCKIFY_EARLY_SOCKETS=on
	VP=9301 TP=9302
	start_echo vecho vsock $VP
	start_echo techo tcp $TP
	start_echo toracle tcp $VP # the oracle's "vsock" server, on TCP
}
teardown() { common_teardown; }

# oracle_and_shim MODE: run the client both ways; the reports must match.
oracle_and_shim() {
	run python3 "$EARLY" "$1" 127.0.0.1 $VP $TP
	[ "$status" -eq 0 ] || { echo "oracle failed: $output"; return 1; }
	oracle=$output
	run env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/shim.log" \
		strace -f -o "$TEST_TMP/strace" -e trace=socket,dup3 \
		env LD_PRELOAD="$LIB" python3 "$EARLY" "$1" vsock-1.local $VP $TP
	[ "$status" -eq 0 ] || { echo "shim run failed: $output"; return 1; }
	shim=$output
	if [[ $oracle != "$shim" ]]; then
		diff <(echo "$oracle") <(echo "$shim") || true
		return 1
	fi
}

# How many sockets of a family the traced program asked the kernel for.
count_sockets() {
	grep -c "socket($1, SOCK_STREAM" "$TEST_TMP/strace" || true
}

@test "a call site that connects to vsock gets AF_VSOCK sockets from socket() on, with no TCP socket made and thrown away" {
	cat >"$TEST_TMP/loop.py" <<'PY'
import socket, sys
for i in range(6):
    s = socket.create_connection(("vsock-1.local", int(sys.argv[1])))
    s.sendall(b"n%d\n" % i)
    assert s.recv(10) == b"n%d\n" % i
    assert s.getpeername()[0].startswith("127.128."), s.getpeername()
    s.close()
print("six ok")
PY
	run strace -f -o "$TEST_TMP/strace" -e trace=socket,dup3 \
		env LD_PRELOAD="$LIB" python3 "$TEST_TMP/loop.py" $VP
	[ "$status" -eq 0 ]
	[[ $output == *"six ok"* ]]
	# Two swaps teach the predictor; the other four are vsock from the start.
	[ "$(count_sockets AF_INET)" -eq 2 ]
	[ "$(count_sockets AF_VSOCK)" -eq 6 ]
	[ "$(grep -c '^[0-9]* *dup3(' "$TEST_TMP/strace")" -eq 2 ]
	# Turned off, every connect swaps.
	run env VSOCKIFY_EARLY_SOCKETS=off strace -f -o "$TEST_TMP/strace" -e trace=socket,dup3 \
		env LD_PRELOAD="$LIB" python3 "$TEST_TMP/loop.py" $VP
	[ "$status" -eq 0 ]
	[ "$(count_sockets AF_INET)" -eq 6 ]
	[ "$(grep -c '^[0-9]* *dup3(' "$TEST_TMP/strace")" -eq 6 ]
}

@test "vsock and TCP connects from one call site: names, echo and unbound names as over TCP" {
	oracle_and_shim alternate
	echo "$shim"
	[[ $shim == *done ]]
	# Early sockets were made, and some had to become TCP.
	[ "$(count_sockets AF_VSOCK)" -ge 8 ]
	grep -q "early vsock socket is TCP again" "$TEST_TMP/shim.log"
	grep -q "(early socket)" "$TEST_TMP/shim.log"
}

@test "options set on an early socket read back as TCP's and reach its TCP socket; bind and an option vsock lacks make it TCP" {
	oracle_and_shim options
	echo "$shim"
	[[ $shim == *"bound-connected 127.0.0.1 echo o3"* ]]
	[ "$(count_sockets AF_VSOCK)" -ge 5 ]
	[ "$(grep -c "early vsock socket is TCP again" "$TEST_TMP/shim.log")" -ge 3 ]
}

@test "a refused connect on an early socket leaves a TCP socket that connects again, as TCP does" {
	oracle_and_shim refused
	echo "$shim"
	[[ $shim == *"ConnectionRefusedError 111"* ]]
	[[ $shim == *"second connect: echo r1 peer True"* ]]
	grep -q "(early socket)" "$TEST_TMP/shim.log" # the primes after the first two
	grep -q "connect to vsock:1:9306 failed" "$TEST_TMP/shim.log"
}

@test "SO_SNDTIMEO before a connect to vsock keeps the TCP options set before it; a dup made before a TCP connect shares the connection" {
	oracle_and_shim more
	echo "$shim"
	[[ $shim == *"sndtimeo: echo t1 nodelay 1 sndtimeo (5, 0)"* ]]
	[[ $shim == *"dup: reply on the other number b'dup\n' peer True"* ]]
	# Only the dup made an early socket TCP; SO_SNDTIMEO swapped from it.
	[ "$(grep -c "early vsock socket is TCP again" "$TEST_TMP/shim.log")" -eq 1 ]
}

@test "listeners made at a primed call site listen on TCP as asked, bound or autobound" {
	oracle_and_shim listen
	echo "$shim"
	[[ $shim == *"autobound listener: 0.0.0.0 True"* ]]
	[ "$(grep -c "early vsock socket is TCP again" "$TEST_TMP/shim.log")" -ge 1 ]
}

@test "unconnected early sockets inherited across exec: the new program connects them to TCP and to vsock" {
	oracle_and_shim exec
	echo "$shim"
	[[ $shim == *"to tcp: echo x1 peer True"* ]]
	[[ $shim == *"to ours: echo x2 local-fam v4"* ]]
	[ "$(count_sockets AF_VSOCK)" -ge 3 ]
	grep -q "early vsock socket is TCP again" "$TEST_TMP/shim.log"
}

@test "epoll registered before a non-blocking connect (edge-triggered, one-shot re-armed) sees it complete, to vsock and to TCP" {
	oracle_and_shim epoll
	echo "$shim"
	[ "$(grep -c "connected True echo e-" <<<"$shim")" -eq 4 ]
	grep -q "(early socket) (in progress)" "$TEST_TMP/shim.log"
	grep -q "early vsock socket is TCP again" "$TEST_TMP/shim.log"
}

@test "asyncio (non-blocking connects) on early sockets: every stream right" {
	cat >"$TEST_TMP/aio.py" <<'PY'
import asyncio, sys
async def one(i):
    r, w = await asyncio.open_connection("vsock-1.local", int(sys.argv[1]))
    w.write(b"a%d\n" % i)
    line = await r.readline()
    w.close()
    await w.wait_closed()
    return line == b"a%d\n" % i
async def main():
    ok = [await one(i) for i in range(8)]
    ok += await asyncio.gather(*(one(100 + i) for i in range(8)))
    print("ok", sum(ok), "of", len(ok))
asyncio.run(main())
PY
	run env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/shim.log" \
		strace -f -o "$TEST_TMP/strace" -e trace=socket,dup3 \
		env LD_PRELOAD="$LIB" python3 "$TEST_TMP/aio.py" $VP
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"ok 16 of 16"* ]]
	[ "$(count_sockets AF_INET)" -le 3 ]
	grep -q "(early socket) (in progress)" "$TEST_TMP/shim.log"
}

@test "curl fetching vsock and TCP URLs in one process: each answer from the right server" {
	printf 'HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nvsock\n' >"$TEST_TMP/v.http"
	printf 'HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\ntcp\n' >"$TEST_TMP/t.http"
	start_vsock_http vhttp 9311 "$TEST_TMP/v.http"
	start_bg thttp socat -d -d TCP-LISTEN:9312,bind=127.0.0.1,fork,reuseaddr \
		SYSTEM:"sed -n '/^\r*$/q' >/dev/null; cat '$TEST_TMP/t.http'"
	wait_for_tcp_port 9312
	urls=() want=""
	for k in v v v t v t t v v t; do
		if [[ $k == v ]]; then urls+=(http://vsock-1.local:9311/); want+="vsock "
		else urls+=(http://127.0.0.1:9312/); want+="tcp "; fi
	done
	run env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/shim.log" \
		strace -f -o "$TEST_TMP/strace" -e trace=socket \
		env LD_PRELOAD="$LIB" curl -sS --max-time 20 "${urls[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo $output) " == "$want" ]
	[ "$(count_sockets AF_VSOCK)" -ge 7 ]
	grep -q "(early socket)" "$TEST_TMP/shim.log"
}
