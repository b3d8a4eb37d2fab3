#!/usr/bin/env bats
# Regression tests for the defects an adversarial review found: races on the
# fd number, signals, sockets already in use, error sequences, logging, and
# edge cases of the resolver and socket calls.  Wherever possible the same
# program runs over plain TCP on 127.0.0.1 (the oracle) and over the shim,
# and the two outputs are compared.  No timing assertions: `timeout` only
# bounds a hang.

load ../lib/common

ROBUST=$ROOT/build/helpers/robust

setup() {
	require_vm
	common_setup
	need_helper robust
}
teardown() { common_teardown; }

# beside_tcp SUBCOMMAND VSOCK_PORT TCP_PORT: the robust helper against an echo
# server over plain TCP, then through the shim to one over vsock; the two
# outputs must be identical.  Leaves the TCP output in $tcp_out.
beside_tcp() {
	start_echo vecho vsock "$2"
	start_echo techo tcp "$3"
	run timeout 20 "$ROBUST" "$1" 127.0.0.1 "$3"
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	tcp_out=$output
	run timeout 20 env LD_PRELOAD="$LIB" "$ROBUST" "$1" 127.128.0.1 "$2"
	echo "shim (status $status): $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp_out" ]
}

# field KEY: the number after "KEY=" in $output
field() {
	grep -oP "\b$1=\K-?[0-9]+" <<<"$output" | tail -1
}

# ---- 1. logging from inside the one-time initialisation --------------------

@test "log: a bad VSOCKIFY_LOG with VSOCKIFY_LOG_FILE does not hang, and the file says why" {
	run timeout 20 env VSOCKIFY_LOG=bogus VSOCKIFY_LOG_FILE="$TEST_TMP/x.log" \
		LD_PRELOAD="$LIB" getent hosts localhost
	echo "status=$status output=$output"
	cat "$TEST_TMP/x.log" || true
	[ "$status" -eq 0 ]
	grep -E '^vsockify\[[0-9]+\]: .*VSOCKIFY_LOG.*bogus' "$TEST_TMP/x.log"
}

@test "log: an exec'd child adopting a shimmed socket, with debug logging to a file, completes" {
	run timeout 20 env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/x.log" \
		LD_PRELOAD="$LIB" python3 - <<'PY'
import socket, subprocess, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("vsock-any.local", 9102)); l.listen()
c = socket.create_connection(("vsock-1.local", 9102))
a, peer = l.accept()
child = "import socket, sys; s = socket.socket(fileno=int(sys.argv[1])); print('child', s.family.name, s.getpeername()[0])"
subprocess.run([sys.executable, "-c", child, str(a.fileno())], pass_fds=[a.fileno()],
               check=True, timeout=15)
print("done")
PY
	echo "status=$status output=$output"
	cat "$TEST_TMP/x.log" || true
	[ "$status" -eq 0 ]
	[[ $output == *"child AF_INET 127.128.0.1"* ]]
	[[ $output == *"done"* ]]
	grep -q 'inherited' "$TEST_TMP/x.log"
}

# ---- 2. connect() and a concurrent close+open of the same fd number --------

@test "connect() never takes over an fd number another thread closed and reused for a file" {
	start_echo vecho vsock 9103
	run timeout 300 env LD_PRELOAD="$LIB" "$ROBUST" racefd 127.128.0.1 9103 1500 "$TEST_TMP/data"
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$(field reused)" -gt 0 ]          # the race was really run
	[ "$(field takeovers)" -eq 0 ]
	[ "$(field corrupt)" -eq 0 ]
	# the oracle: the kernel's TCP connect never does it either
	start_echo techo tcp 9104
	run timeout 300 "$ROBUST" racefd 127.0.0.1 9104 300 "$TEST_TMP/data"
	echo "tcp: $output"
	[ "$(field takeovers)" -eq 0 ]
	[ "$(field corrupt)" -eq 0 ]
}

# ---- 3. signals during a blocking connect ----------------------------------

@test "a SIGALRM storm during blocking connects (python, PEP 475): no failures, as over TCP" {
	start_echo vecho vsock 9105
	start_echo techo tcp 9106
	cat >"$TEST_TMP/sig.py" <<'PY'
import errno, signal, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGALRM, lambda *a: None)
signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
fails = {}
for i in range(n):
    s = socket.socket()
    try:
        s.connect((host, port))
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            d = s.recv(4 - len(got))
            if not d:
                raise EOFError
            got += d
    except (OSError, EOFError) as e:
        k = type(e).__name__ + ":" + errno.errorcode.get(getattr(e, "errno", 0) or 0, "-")
        fails[k] = fails.get(k, 0) + 1
    finally:
        s.close()
signal.setitimer(signal.ITIMER_REAL, 0)
print("runs=%d failures=%d" % (n, sum(fails.values())), fails)
PY
	run timeout 300 python3 "$TEST_TMP/sig.py" 127.0.0.1 9106 300
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	[ "$(field failures)" -eq 0 ]
	run timeout 300 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/sig.py" 127.128.0.1 9105 1500
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$(field failures)" -eq 0 ]
}

@test "SA_RESTART: a blocking connect is never interrupted (no EINTR), as over TCP" {
	start_echo vecho vsock 9107
	start_echo techo tcp 9108
	run timeout 300 "$ROBUST" sarestart 127.0.0.1 9108 300
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	[ "$(field failed)" -eq 0 ]
	[ "$(field sendfail)" -eq 0 ]
	run timeout 300 env LD_PRELOAD="$LIB" "$ROBUST" sarestart 127.128.0.1 9107 1500
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$(field failed)" -eq 0 ]
	[ "$(field sendfail)" -eq 0 ]
}

# ---- 4. a socket already connected or listening is not swapped -------------

@test "connect/bind to a fake on a TCP socket already in use: EISCONN/EINVAL, the old socket intact" {
	start_echo techo tcp 9109
	start_echo vecho vsock 9110     # the fake target exists: a swap would succeed
	start_echo techo2 tcp 9112
	cat >"$TEST_TMP/inuse.py" <<'PY'
import errno, socket, sys
chost, cport, bhost, bport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def e(f):
    try:
        f(); return "ok"
    except OSError as x:
        return errno.errorcode[x.errno]
s = socket.create_connection(("127.0.0.1", 9109))
print("connect", e(lambda: s.connect((chost, cport))))
s.sendall(b"still")
print("old connection", s.recv(5), s.getpeername() == ("127.0.0.1", 9109),
      s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(); where = l.getsockname()
print("bind", e(lambda: l.bind((bhost, bport))))
c = socket.create_connection(where, timeout=5)
a, _ = l.accept()
print("listener", a.getsockname() == where, l.getsockname() == where)
PY
	run timeout 20 python3 "$TEST_TMP/inuse.py" 127.0.0.1 9112 127.0.0.1 0
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	tcp_out=$output
	run timeout 20 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/inuse.py" 127.128.0.1 9110 127.255.255.255 9111
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp_out" ]
	[[ $output == *"connect EISCONN"* && $output == *"bind EINVAL"* ]]
}

# ---- 5. another thread on the same fd during the swap ----------------------

@test "a thread reading names and SO_DOMAIN of the fd during the swap does not undo it" {
	start_echo vecho vsock 9113
	run timeout 300 env LD_PRELOAD="$LIB" "$ROBUST" swaprace 127.128.0.1 9113 2000
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$(field connfail)" -eq 0 ]
	[ "$(field badpeer)" -eq 0 ]
	[ "$(field echofail)" -eq 0 ]
	start_echo techo tcp 9114
	run timeout 300 "$ROBUST" swaprace 127.0.0.1 9114 300
	echo "tcp: $output"
	[ "$(field badpeer)" -eq 0 ]
	[ "$(field echofail)" -eq 0 ]
}

# ---- 6. a failed non-blocking connect --------------------------------------

@test "a failed non-blocking connect: the next connect says ECONNREFUSED, then a new one works (as TCP)" {
	start_echo vecho vsock 9116
	start_echo techo tcp 9118
	run timeout 30 "$ROBUST" nbseq 127.0.0.1 9117 9118
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	tcp_out=$output
	[[ $tcp_out == *"second ECONNREFUSED"* ]]
	run timeout 30 env LD_PRELOAD="$LIB" "$ROBUST" nbseq 127.128.0.1 9115 9116
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp_out" ]
}

@test "perl IO::Socket::INET with a Timeout to a closed port says Connection refused, as over TCP" {
	script='use IO::Socket::INET;
my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 3);
print $s ? "connected\n" : "failed: $@\n";'
	run timeout 20 perl -e "$script" 127.0.0.1:9119
	echo "tcp: $output"
	tcp_out=$output
	[[ $tcp_out == *"Connection refused"* ]]
	run timeout 20 env LD_PRELOAD="$LIB" perl -e "$script" vsock-1.local:9119
	echo "shim: $output"
	[ "$output" = "$tcp_out" ]
}

# ---- 7. TCP options need no spare fd ---------------------------------------

@test "TCP options on a shimmed socket still work with the fd table full (no EMFILE), as over TCP" {
	beside_tcp emfile 9120 9121
	[[ $tcp_out == *"table full: EMFILE"* ]]
}

# ---- 8. log lines and log files --------------------------------------------

@test "log: a name with newlines cannot forge log lines" {
	run timeout 20 env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/x.log" \
		LD_PRELOAD="$LIB" python3 - <<'PY'
import socket
for name in [b"vsock-x\nvsockify[1]: forged.local", b"vsock-y\nFORGED line.local"]:
    try:
        socket.getaddrinfo(name, 80)
        print("resolved")
    except socket.gaierror as e:
        print("gaierror", e.errno == socket.EAI_NONAME)
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c 'gaierror True' <<<"$output")" -eq 2 ]
	timeout 20 env VSOCKIFY_LOG=debug VSOCKIFY_LOG_FILE="$TEST_TMP/x.log" \
		LD_PRELOAD="$LIB" getent hosts $'vsock-z\nvsockify[1]: forged by getent.local' || true
	cat -A "$TEST_TMP/x.log"
	[ "$(wc -l <"$TEST_TMP/x.log")" -ge 3 ]     # the malformed names were logged
	! grep -vE '^vsockify\[[0-9]+\]: ' "$TEST_TMP/x.log"
	! grep -E '^vsockify\[1\]: forged' "$TEST_TMP/x.log"
}

@test "log: VSOCKIFY_LOG_FILE that is a symlink is not followed" {
	echo precious >"$TEST_TMP/target"
	ln -s "$TEST_TMP/target" "$TEST_TMP/link.log"
	# control: the same trigger writes a line to a regular log file
	run timeout 20 env VSOCKIFY_LOG=warn VSOCKIFY_LOG_FILE="$TEST_TMP/plain.log" \
		LD_PRELOAD="$LIB" getent hosts vsock-bad.local
	grep -q 'not a valid vsock name' "$TEST_TMP/plain.log"
	run timeout 20 env VSOCKIFY_LOG=warn VSOCKIFY_LOG_FILE="$TEST_TMP/link.log" \
		LD_PRELOAD="$LIB" getent hosts vsock-bad.local
	echo "status=$status"
	cat "$TEST_TMP/target"
	[ "$status" -eq 2 ]        # getent: not found, and no hang
	[ "$(cat "$TEST_TMP/target")" = "precious" ]
	[ -L "$TEST_TMP/link.log" ]
}

@test "log: VSOCKIFY_LOG_FILE that is a FIFO with no reader does not block the program" {
	mkfifo "$TEST_TMP/fifo"
	run timeout 20 env VSOCKIFY_LOG=warn VSOCKIFY_LOG_FILE="$TEST_TMP/fifo" \
		LD_PRELOAD="$LIB" getent hosts vsock-bad.local
	echo "status=$status"
	[ "$status" -eq 2 ]        # 124 would be the timeout: blocked in open()
}

@test "log: with stderr closed and fd 2 reused for a data file, no log line lands in the file" {
	run timeout 20 env VSOCKIFY_LOG=warn LD_PRELOAD="$LIB" python3 -c '
import os, socket, sys
os.close(2)
f = open(sys.argv[1], "w")
assert f.fileno() == 2, f.fileno()
try:
    socket.getaddrinfo("vsock-bad.local", 80)
except socket.gaierror:
    pass
f.write("data\n"); f.close()
print("done")' "$TEST_TMP/data"
	echo "$output"
	cat -A "$TEST_TMP/data"
	[ "$status" -eq 0 ]
	[ "$(cat "$TEST_TMP/data")" = "data" ]
}

# ---- 9. non-integer TCP options --------------------------------------------

@test "TCP_CONGESTION (a string option) keeps its size and value, as over TCP" {
	start_echo vecho vsock 9122
	start_echo techo tcp 9123
	cat >"$TEST_TMP/cong.py" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
T = socket.TCP_CONGESTION
print("default", s.getsockopt(socket.IPPROTO_TCP, T, 16))
s.setsockopt(socket.IPPROTO_TCP, T, b"reno")
print("reno", s.getsockopt(socket.IPPROTO_TCP, T, 16))
s.setsockopt(socket.IPPROTO_TCP, T, b"cubic")
print("cubic", s.getsockopt(socket.IPPROTO_TCP, T, 16))
print("short buffer", s.getsockopt(socket.IPPROTO_TCP, T, 3))
PY
	run timeout 20 python3 "$TEST_TMP/cong.py" 127.0.0.1 9123
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	tcp_out=$output
	[[ $tcp_out == *"reno b'reno\x00"* ]]
	run timeout 20 env LD_PRELOAD="$LIB" python3 "$TEST_TMP/cong.py" 127.128.0.1 9122
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "$tcp_out" ]
}

# ---- 10. close_range in one thread, accept in another ----------------------

@test "close_range of other fds in one thread never untranslates a socket accepted in another" {
	run timeout 300 env LD_PRELOAD="$LIB" "$ROBUST" closerange 127.255.255.255 127.128.0.1 9125 1000
	echo "shim: $output"
	[ "$status" -eq 0 ]
	[ "$(field accepted)" -eq 1000 ]
	[ "$(field client)" -eq 0 ]
	[ "$(field lost)" -eq 0 ]
	run timeout 300 "$ROBUST" closerange 127.0.0.1 127.0.0.1 9126 300
	echo "tcp: $output"
	[ "$(field lost)" -eq 0 ]
}

# ---- 11. smaller edge cases ------------------------------------------------

@test "addrlen 200 is EINVAL, AF_UNSPEC disconnects and allows a new connect, a bad buffer is EFAULT (as TCP)" {
	beside_tcp small 9127 9128
	[[ $tcp_out == *"addrlen200 rc=-1 EINVAL"* ]]
	[[ $tcp_out == *"efault rc=-1 EFAULT"* ]]
}

@test "getaddrinfo of a vsock name asking for UDP or SOCK_DGRAM answers as 127.0.0.1 does; a UDP connect then gets EPROTOTYPE" {
	run timeout 20 env VSOCKIFY_LOG=warn LD_PRELOAD="$LIB" python3 - <<'PY'
import errno, socket
def shape(host, kw):
    try:
        return [(x[1].name, x[2]) for x in socket.getaddrinfo(host, "80", socket.AF_INET, **kw)]
    except socket.gaierror as e:
        return "gaierror %d" % e.errno
for what, kw in [("tcp", dict(proto=socket.IPPROTO_TCP)),
                 ("udp", dict(proto=socket.IPPROTO_UDP)),
                 ("dgram", dict(type=socket.SOCK_DGRAM)),
                 ("dgram+tcp", dict(type=socket.SOCK_DGRAM, proto=socket.IPPROTO_TCP))]:
    mine = shape("vsock-1.local", kw)
    print(what, mine, "same" if mine == shape("127.0.0.1", kw) else "DIFFERS")
f, t, p, _, sa = socket.getaddrinfo("vsock-1.local", 9, socket.AF_INET, socket.SOCK_DGRAM)[0]
u = socket.socket(f, t, p)
try: u.connect(sa); print("udp connect succeeded")
except OSError as e: print("udp connect", errno.errorcode[e.errno])
PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"tcp [('SOCK_STREAM', 6)] same"* ]]
	[[ $output == *"udp [('SOCK_DGRAM', 17)] same"* ]]
	[[ $output == *"dgram [('SOCK_DGRAM', 17)] same"* ]]
	[[ $output == *"dgram+tcp gaierror $(python3 -c 'import socket; print(socket.EAI_SOCKTYPE)') same"* ]]
	[[ $output == *"udp connect EPROTOTYPE"* ]]
	[[ $output == *"vsockify["*"]: connect to 127.128.0.1:9: only TCP"* ]]
	[[ $output != *DIFFERS* ]]
}

@test "VSOCKIFY_FAKE_NET4=127.0.0.0/8 or 0.0.0.0/8 is refused with a log line; 127.0.0.1 stays TCP" {
	start_echo techo tcp 9129
	script='import socket, sys
for host in ("127.0.0.1", "0.0.0.0"):
    s = socket.create_connection((host, int(sys.argv[1])), timeout=10)
    s.sendall(b"hi")
    print(host, s.recv(2), s.getpeername())'
	run timeout 20 python3 -c "$script" 9129
	echo "tcp: $output"
	[ "$status" -eq 0 ]
	tcp_out=$output
	for net in 127.0.0.0/8 0.0.0.0/8; do
		run timeout 20 env VSOCKIFY_FAKE_NET4=$net LD_PRELOAD="$LIB" python3 -c "$script" 9129
		echo "shim, $net: $output"
		[ "$status" -eq 0 ]
		[[ $output == *"vsockify["*"VSOCKIFY_FAKE_NET4"* ]]
		[ "$(grep -v 'vsockify\[' <<<"$output")" = "$tcp_out" ]
	done
}

@test "AI_CANONNAME of a name with many leading zeros is the canonical vsock-3.local" {
	run timeout 20 env LD_PRELOAD="$LIB" python3 -c '
import socket
name = b"vsock-" + b"0" * 300 + b"3.local"
r = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
print("canon", r[0][3], r[0][4])'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "canon vsock-3.local ('127.128.0.3', 80)" ]
}

# ---- 12. the first hooked call made from a signal handler ------------------

@test "the first hooked call, made in a signal handler interrupting malloc, does not deadlock" {
	for i in 1 2 3 4 5 6 7 8; do
		run timeout 10 env LD_PRELOAD="$LIB" "$ROBUST" sigfirst
		echo "run $i: status=$status $output"
		[ "$status" -eq 0 ]         # 124: deadlocked in the handler
		[[ $output =~ ^handled=([0-9]+)$ ]]
		[ "${BASH_REMATCH[1]}" -ge 20 ]
	done
}

@test "init runs in a constructor: configuration is read before main's first instruction (strace)" {
	# A bad setting is reported while the configuration is read; that line is
	# written before main's first instruction (the access() marker), so
	# dlsym, malloc and pthread_once never run first from a signal handler.
	# (arm64 has no access(2): glibc calls faccessat there.)
	run timeout 30 env VSOCKIFY_LOG=bogus strace -f -E LD_PRELOAD="$LIB" -e trace=write,access,faccessat,faccessat2 "$ROBUST" closeneg
	echo "$output"
	[ "$status" -eq 0 ]
	init=$(grep -n 'ignoring VSOCKIFY_LOG' <<<"$output" | head -1 | cut -d: -f1)
	main=$(grep -n 'vsockify-robust-main-starts' <<<"$output" | head -1 | cut -d: -f1)
	echo "config read at line ${init:-none}, main at line ${main:-none}"
	[ -n "$init" ]
	[ -n "$main" ]
	[ "$init" -lt "$main" ]
}
