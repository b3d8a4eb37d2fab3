#!/usr/bin/env bats
# Limits of the process: the fd limit at the first rule lookup, and fd
# numbers above 2^20 (fs.nr_open raised).  Ports 9381..9389.

load ../lib/common

setup() {
	require_vm
	common_setup
	VP=9381 TP=9382
	start_echo vecho vsock $VP
	start_echo techo tcp $TP
}
teardown() { common_teardown; }

# at_limit SOFT HARD: a program that fills its fds up to the limit, then
# makes its first connects: a plain TCP one, one a connect rule sends to
# vsock, and the same after a few fds are freed.
at_limit() {
	python3 -c '
import errno, os, resource, socket, sys
soft, hard, tport = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
socks = [socket.socket() for _ in range(3)]
fill = []
try:
    while True:
        fill.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE
def echo(s, host, port, tag):
    try:
        s.connect((host, port)); s.sendall(tag + b"\n")
        return s.recv(100).decode().strip()
    except OSError as e:
        return "error " + errno.errorcode[e.errno]
print("tcp at the limit:", echo(socks[0], "127.0.0.1", tport, b"t"))
print("rule at the limit:", echo(socks[1], "192.0.2.9", 9381, b"r"))
for fd in fill[:4]:
    os.close(fd)
print("rule after freeing fds:", echo(socks[2], "192.0.2.9", 9381, b"again"))
print("the limit is back:", resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft)' "$@"
}

@test "the first rule lookup at the fd limit: TCP's result while the hard limit allows one more fd" {
	run at_limit 64 4096 $TP
	echo "$output"
	[ "$status" -eq 0 ]
	oracle=$output
	run env VSOCKIFY_RULES="connect 192.0.2.9:9381 vsock:1:$VP" VSOCKIFY_LOG_FILE="$TEST_TMP/log" \
		LD_PRELOAD="$LIB" bash -c "$(declare -f at_limit); at_limit 64 4096 $TP"
	echo "$output"
	[ "$status" -eq 0 ]
	# The swap itself needs a spare fd (README, "Limits"): EMFILE there.
	[ "$output" = "tcp at the limit: t
rule at the limit: error EMFILE
rule after freeing fds: again
the limit is back: True" ]
	# The rules were read (the rule applied at once), and the read that
	# needed one more fd is not reported as a problem.
	! grep -q 'rules could not be read\|cannot open' "$TEST_TMP/log"
	# The oracle has no rule: 192.0.2.9 is unreachable there.
	[[ $oracle == *"tcp at the limit: t"* ]]
}

@test "the first rule lookup at the hard fd limit: EMFILE and a log line, then the rules are read once fds are free" {
	# The log goes to stderr: at the fd limit no log file can be opened.
	run env VSOCKIFY_RULES="connect 192.0.2.9:9381 vsock:1:$VP" \
		LD_PRELOAD="$LIB" bash -c "$(declare -f at_limit); at_limit 64 64 $TP 2>'$TEST_TMP/log'"
	echo "$output"
	cat "$TEST_TMP/log"
	[ "$status" -eq 0 ]
	[ "$output" = "tcp at the limit: error EMFILE
rule at the limit: error EMFILE
rule after freeing fds: again
the limit is back: True" ]
	grep -q 'the rules could not be read (Too many open files)' "$TEST_TMP/log"
}

@test "sockets at fd numbers above 2^20 are translated, as those below" {
	old=$(cat /proc/sys/fs/nr_open)
	echo 2200000 >/proc/sys/fs/nr_open
	run env LD_PRELOAD="$LIB" python3 -c '
import os, resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (2100000, 2100000))
for target in (1048575, 1048576, 2000001):
    s = socket.socket()
    fd = os.dup2(s.fileno(), target); s.close()
    s = socket.socket(fileno=fd)
    s.connect(("vsock-1.local", int(sys.argv[1])))
    s.sendall(b"high\n")
    print(target, s.recv(10).decode().strip(), s.getpeername()[0], s.family == socket.AF_INET)
    a = socket.socket(); b = os.dup2(a.fileno(), target + 7); a.close()
    l = socket.socket(fileno=b); l.bind(("vsock-any.local", 0)); l.listen()
    c = socket.create_connection(("vsock-1.local", l.getsockname()[1]))
    n, peer = l.accept()
    print(" listener", l.getsockname()[0], peer[0])
    for x in (s, l, c, n): x.close()' $VP
	echo "$old" >/proc/sys/fs/nr_open
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "1048575 high 127.128.0.1 True
 listener 127.255.255.255 127.128.0.1
1048576 high 127.128.0.1 True
 listener 127.255.255.255 127.128.0.1
2000001 high 127.128.0.1 True
 listener 127.255.255.255 127.128.0.1" ]
}
