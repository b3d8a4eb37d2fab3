# Shared helpers for the bats suites.  Each test gets its own temp dir;
# every background server records a pidfile there and is killed in teardown.

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
# VSOCKIFY_TEST_LIB=/path/to/libvsockify.so runs a suite against another
# build (an older one, say, to watch the regression tests fail).
LIB=${VSOCKIFY_TEST_LIB:-$ROOT/build/libvsockify.so}
VSOCKIFY=$ROOT/build/vsockify
HELPERS=$ROOT/tests/helpers

common_setup() {
	TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vsockify-test.XXXXXX")
	export TEST_TMP
	[[ -f $LIB && -x $VSOCKIFY ]] || {
		echo "build/ is missing: run make first" >&2
		return 1
	}
}

common_teardown() {
	local pf pid
	for pf in "$TEST_TMP"/*.pid; do
		[[ -f $pf ]] || continue
		pid=$(<"$pf")
		kill "$pid" 2>/dev/null || true
	done
	for pf in "$TEST_TMP"/*.pid; do
		[[ -f $pf ]] || continue
		pid=$(<"$pf")
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$TEST_TMP"
}

# start_bg NAME CMD...: run CMD in the background, output in NAME.log.
start_bg() {
	local name=$1
	shift
	"$@" >"$TEST_TMP/$name.log" 2>&1 &
	echo $! >"$TEST_TMP/$name.pid"
}

# wait_for_log NAME REGEX [SECONDS]: until the server's log matches.
wait_for_log() {
	local name=$1 re=$2 secs=${3:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		grep -Eq -- "$re" "$TEST_TMP/$name.log" 2>/dev/null && return 0
		if ! kill -0 "$(<"$TEST_TMP/$name.pid")" 2>/dev/null; then
			echo "server $name exited early; its log:" >&2
			cat "$TEST_TMP/$name.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "timed out waiting for /$re/ in $name.log:" >&2
	cat "$TEST_TMP/$name.log" >&2
	return 1
}

# wait_for_tcp_port PORT [SECONDS]: until something listens on TCP PORT.
wait_for_tcp_port() {
	local port=$1 secs=${2:-30} hex i
	hex=$(printf ':%04X ' "$port")
	for ((i = 0; i < secs * 10; i++)); do
		grep -q " 0A " <(grep -h "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null) && return 0
		sleep 0.1
	done
	echo "nothing listens on TCP port $port" >&2
	return 1
}

# A TCP port that is free right now on the host.
free_tcp_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Run a command with the library preloaded (without the wrapper).
preload() {
	LD_PRELOAD=$LIB "$@"
}

# Is this the vsock test VM?  Tests that dial vsock refuse to run anywhere
# else: this machine's own vsock device leads outside the project.
require_vm() {
	if [[ ${VSOCKIFY_IN_VM:-} != 1 ]]; then
		echo "refusing: this test dials vsock and must run inside the test VM" >&2
		return 1
	fi
}

# start_vsock_http NAME PORT RESPONSE_FILE: a native AF_VSOCK HTTP responder
# that reads the request headers before answering (a responder that answers
# and closes at once races slow clients into EPIPE).
start_vsock_http() {
	start_bg "$1" socat -d -d VSOCK-LISTEN:"$2",fork,reuseaddr \
		SYSTEM:"sed -n '/^\r*$/q' >/dev/null; cat '$3'"
	wait_for_log "$1" "listening on"
}

# need_helper NAME: fail clearly when build/helpers/NAME was not built.
need_helper() {
	[[ -x $ROOT/build/helpers/$1 ]] || { echo "build/helpers/$1 is missing: run make" >&2; return 1; }
}

# start_echo NAME vsock|tcp PORT: a native echo server (tests/helpers/echo_server.py).
start_echo() {
	start_bg "$1" python3 "$HELPERS/echo_server.py" "$2" "$3"
	wait_for_log "$1" "listening"
}

# sshd_config LISTEN: keys and an sshd_config in $TEST_TMP for Debian's
# unmodified sshd listening on LISTEN (ADDR:PORT); SSH_OPTS for the client.
sshd_config() {
	local d=$TEST_TMP
	mkdir -p /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$d/id"
	cp "$d/id.pub" "$d/authorized_keys"
	cat >"$d/sshd_config" <<-CFG
		ListenAddress $1
		HostKey $d/host_key
		PidFile none
		AuthorizedKeysFile $d/authorized_keys
		PermitRootLogin yes
		StrictModes no
		UsePAM no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UseDNS no
		LogLevel VERBOSE
		Subsystem sftp /usr/lib/openssh/sftp-server
	CFG
	SSH_OPTS=(-i "$d/id" -o BatchMode=yes -o StrictHostKeyChecking=no
		-o UserKnownHostsFile="$d/known_hosts" -o ConnectTimeout=30)
}

# start_sshd LISTEN [WRAPPER_ARGS...]: that sshd under the wrapper, in its
# default re-exec mode (the accepted socket crosses an exec).
start_sshd() {
	sshd_config "$1"
	shift
	start_bg sshd "$VSOCKIFY" "$@" /usr/sbin/sshd -D -e -f "$TEST_TMP/sshd_config"
	wait_for_log sshd "Server listening on"
}

# no_rules_from_environment: the suites that test rules start from none;
# a machine-wide /etc/vsockify.conf would change every result.
no_rules_from_environment() {
	unset VSOCKIFY_CONFIG VSOCKIFY_RULES VSOCKIFY_LOG VSOCKIFY_LOG_FILE
	if [[ -e /etc/vsockify.conf ]]; then
		echo "/etc/vsockify.conf exists on this machine: its rules would change every result here" >&2
		return 1
	fi
}
