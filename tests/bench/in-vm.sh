#!/usr/bin/env bash
# in-vm.sh [--quick] [--rounds N] [--no-scale] [--no-pin]: the in-VM half of `make bench`.
# Runs INSIDE the test VM only (tests/vm/run-in-vm.sh -- tests/bench/in-vm.sh):
# every byte here goes over the guest's vsock_loopback transport.
#
#   A  vsbench --raw-vsock client -> CID 1               (native AF_VSOCK)
#   B  plain TCP vsbench client, LD_PRELOAD=libvsockify -> vsock-1.local
#   C  plain TCP vsbench client -> 127.0.0.1 -> socat relay -> VSOCK-CONNECT:1
#   E  B with VSOCKIFY_EARLY_SOCKETS=on (connrate only: what the opt-in saves)
#   S  a static vsbench client under the supervisor -> 127.128.0.1 (the
#      numeric fake: a static resolver never sees our names).  Its connrate
#      runs log at level info to a file, and the supervisor's exit line
#      ("supervisor: notifications: total=N ...") gives the notifications
#      per connection (notif_per_conn=, "n/a" when the line is missing)
# The server is the same raw-vsock vsbench server for all three paths, so only
# the client side differs.  Rounds alternate the order of A, B and C.
#
# Everything (server, socat, clients, and so the kernel work they queue) is
# pinned to vCPU 0 unless --no-pin: under TCG a wake-up that crosses vCPUs
# costs milliseconds at random (p99 10-14 ms unpinned, 0.5-0.8 ms pinned), which
# would drown the differences we are measuring.  CPU use is still VM-wide.
#
# Output (stdout), one line per measurement, for tests/bench/run.sh:
#   RESULT path=A round=1 test=bulk bytes=... MBps=... cpu_ms_per_GiB=... verified=1
#   RESULT path=B test=scale live=1000 rss_delta_kib=... ...
# Exit status is non-zero if any run failed or moved wrong data.
set -euo pipefail

[[ ${VSOCKIFY_IN_VM:-} == 1 ]] || { echo "in-vm.sh: refusing to run outside the test VM" >&2; exit 2; }

if [[ -z ${VSBENCH_PINNED:-} && " $* " != *" --no-pin "* ]] && command -v taskset >/dev/null; then
	export VSBENCH_PINNED=1
	exec taskset -c 0 "$0" "$@"
fi

cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/build/helpers/vsbench
SBIN=$ROOT/build/helpers/static/vsbench
VSOCKIFY=$ROOT/build/vsockify
LIB=$ROOT/build/libvsockify.so
rounds=5 quick=() scale=1
while (($#)); do
	case $1 in
		--quick) quick=(--quick); rounds=1 ;;
		--rounds) rounds=$2; shift ;;
		--no-scale) scale=0 ;;
		--no-pin) ;;
		*) echo "in-vm.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

VPORT=5201 HOLDPORT=5202 TPORT=7201
echo "META pinned=${VSBENCH_PINNED:-0} nproc=$(nproc --all) kernel=$(uname -r) rounds=$rounds"
W=$(mktemp -d /tmp/vsbench.XXXXXX)
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_line() { # FILE REGEX
	local i
	for ((i = 0; i < 300; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "in-vm.sh: timed out waiting for /$2/ in $1:" >&2
	cat "$1" >&2
	return 1
}

"$BIN" server --raw-vsock --port $VPORT >"$W/server.log" 2>&1 &
pids+=($!)
wait_line "$W/server.log" '^listening'
socat TCP-LISTEN:$TPORT,bind=127.0.0.1,fork,reuseaddr VSOCK-CONNECT:1:$VPORT 2>"$W/socat.log" &
pids+=($!)
for ((i = 0; i < 300; i++)); do
	grep -q "$(printf ':%04X 00000000:0000 0A' $TPORT)" /proc/net/tcp && break
	sleep 0.1
done

# pingpong and connrate stop after MAXSECS (TCG is slow, and a socat fork per
# connection slower still); the counts done are reported.
MAXSECS=${VSBENCH_MAX_SECS:-8}
client() { # PATH TEST: run one client on path A, B or C
	local quick=("${quick[@]}")
	[[ $2 == bulk || ${#quick[@]} -gt 0 ]] || quick=(--max-secs "$MAXSECS")
	case $1 in
		A) "$BIN" "$2" "${quick[@]}" --raw-vsock --host 1 --port $VPORT ;;
		B) LD_PRELOAD=$LIB "$BIN" "$2" "${quick[@]}" --host vsock-1.local --port $VPORT ;;
		C) "$BIN" "$2" "${quick[@]}" --host 127.0.0.1 --port $TPORT ;;
		E) VSOCKIFY_EARLY_SOCKETS=on LD_PRELOAD=$LIB "$BIN" "$2" "${quick[@]}" \
			--host vsock-1.local --port $VPORT ;;
		S) if [[ $2 == connrate ]]; then
			VSOCKIFY_LOG=info VSOCKIFY_LOG_FILE=$NOTIFLOG "$VSOCKIFY" --supervise \
				"$SBIN" "$2" "${quick[@]}" --host 127.128.0.1 --port $VPORT
		else
			"$VSOCKIFY" --supervise "$SBIN" "$2" "${quick[@]}" --host 127.128.0.1 --port $VPORT
		fi ;;
	esac
}

# The supervisor's count of notifications, from the line it logs when it
# exits (after the wrapper may have returned: wait up to 1 s for it).  Prints
# " notif_total=N notif_per_conn=X notif_connect=N ..." for the client run
# whose output is $1 (conns=N), or " notif_per_conn=n/a" without the line.
NOTIFLOG=$W/super-notif.log
notif_counts() { # CLIENT_OUTPUT
	local i conns
	for ((i = 0; i < 20; i++)); do
		grep -q 'supervisor: notifications: total=' "$NOTIFLOG" 2>/dev/null && break
		sleep 0.05
	done
	conns=$(sed -n 's/.*conns=\([0-9]*\).*/\1/p' <<<"$1")
	awk -v conns="${conns:-0}" '
		/supervisor: notifications: total=/ {
			n++
			for (i = 1; i <= NF; i++)
				if (split($i, kv, "=") == 2 && kv[2] ~ /^[0-9]+$/) sum[kv[1]] += kv[2]
		}
		END {
			if (!n || conns <= 0) { printf " notif_per_conn=n/a"; exit }
			printf " notif_supervisors=%d notif_per_conn=%.3f", n, sum["total"] / conns
			for (k in sum) printf " notif_%s=%d", k, sum[k]
		}' "$NOTIFLOG" 2>/dev/null || printf ' notif_per_conn=n/a'
}

fails=0
run() { # PATH ROUND TEST
	local out
	rm -f "$NOTIFLOG"
	if out=$(client "$1" "$3" 2>"$W/client.err") && [[ $out == *verified=1* ]]; then
		[[ $1 == S && $3 == connrate ]] && out+=$(notif_counts "$out")
		echo "RESULT path=$1 round=$2 $out"
	else
		echo "FAILED path=$1 round=$2 test=$3: $(tr '\n' ' ' <"$W/client.err")"
		fails=$((fails + 1))
	fi
}

for ((r = 1; r <= rounds; r++)); do
	for t in bulk pingpong connrate; do
		paths=(A B C S)
		[[ $t == connrate ]] && paths+=(E)
		for ((k = 0; k < ${#paths[@]}; k++)); do
			run "${paths[(r + k - 1) % ${#paths[@]}]}" "$r" "$t"
		done
	done
done

if ((scale)); then
	counts=10,1000,10000
	for p in A B; do
		"$BIN" server --raw-vsock --hold --port $HOLDPORT >"$W/hold.log" 2>&1 &
		hold=$!
		pids+=($hold)
		wait_line "$W/hold.log" '^listening'
		if [[ $p == A ]]; then
			cmd=("$BIN" scale "${quick[@]}" --counts $counts --raw-vsock --host 1 --port $HOLDPORT)
		else
			cmd=(env LD_PRELOAD="$LIB" "$BIN" scale "${quick[@]}" --counts $counts --host vsock-1.local --port $HOLDPORT)
		fi
		if "${cmd[@]}" >"$W/scale.out" 2>"$W/client.err"; then
			sed "s/^/RESULT path=$p /" "$W/scale.out"
		else
			echo "FAILED path=$p test=scale: $(tr '\n' ' ' <"$W/client.err")"
			fails=$((fails + 1))
		fi
		kill "$hold" 2>/dev/null || true
		wait "$hold" 2>/dev/null || true
	done
fi

# Every bulk transfer must also have been verified by the server.
bad=$(grep -c 'verified=0' "$W/server.log" || true)
ok=$(grep -c 'verified=1' "$W/server.log" || true)
echo "SERVER bulk_verified=$ok bulk_failed=$bad"
if ((bad)); then fails=$((fails + bad)); fi
grep -i mismatch "$W/server.log" >&2 || true
echo "DONE failures=$fails"
((fails == 0))
