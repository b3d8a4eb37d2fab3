#!/usr/bin/env bash
# in-vm.sh [--quick] [--rounds N] [--fills K] [--part P/Q] [--no-scale] [--no-pin]
#          [--scale-counts L,...]: the in-VM part of `make bench`.
# Runs INSIDE the test VM only (tests/vm/run-in-vm.sh -- tests/bench/in-vm.sh):
# every byte here goes over the guest's vsock_loopback transport.
#
#   A  vsbench --raw-vsock client -> CID 1               (native AF_VSOCK)
#   A2 the same as A, run as a separate path: A2/A is the noise floor (A/A)
#   B  plain TCP vsbench client, LD_PRELOAD=libvsockify -> vsock-1.local
#   C  plain TCP vsbench client -> 127.0.0.1 -> socat relay -> VSOCK-CONNECT:1
#   E  B with VSOCKIFY_EARLY_SOCKETS=on (connrate only: what the opt-in saves)
#   S  a static vsbench client under the supervisor -> 127.128.0.1 (the
#      numeric fake: a static resolver never sees our names).  Its connrate
#      runs log at level info to a file, and the supervisor's exit line
#      ("supervisor: notifications: total=N ...") gives the notifications
#      per connection (notif_per_conn=, "n/a" when the line is missing)
# The server is the same raw-vsock vsbench server for all three paths, so only
# the client side differs.  Rounds rotate the order of the paths, so that
# every round holds one run of each; bench/report.py takes per-round ratios.
# One unmeasured warm-up round (--quick sizes) comes first.
#
# scale: K fills (4; 2 with --quick) of each path, alternating A B, B A, ...;
# every fill has its own --hold server and client, which holds 10 ... 10 000
# live connections and at each level runs 4 batches of 50 connect+close (2 with
# --quick), each paired with a batch to raw AF_VSOCK from the same process
# (--alt-raw): path A (raw holding raw) gives the A/A pairs, path B (the
# library holding shimmed connections) the B/A pairs at the same live count.
# Separate fills sample the kernel's state after filling (its slab, its
# tables), which the batches of one fill share and a later run does not.
#
# --part P/Q runs only the P-th of Q equal shares of the rounds and of the
# fills (the numbering stays global), so that run.sh can spread one run over
# Q boots of the VM, between its host phases: a VM boot has its own speed,
# which the rounds of one boot do not sample.
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
rounds=15 fills=4 batches=4 probe_n=50 quick=() scale=1 part=1/1
# The kernel's own connect cost grows with live vsock connections (about
# 1 ms at 10 000, 24 ms at 100 000 under TCG: docs/performance.md), so
# 100 000 takes a quarter of an hour to fill and is opt-in.
scale_counts=10,100,1000,3000,10000
while (($#)); do
	case $1 in
		--quick) quick=(--quick); rounds=3; fills=2; batches=2; scale_counts=10,100,1000 ;;
		--rounds) rounds=$2; shift ;;
		--fills) fills=$2; shift ;;
		--part) part=$2; shift ;;
		--scale-counts) scale_counts=$2; shift ;;
		--no-scale) scale=0 ;;
		--no-pin) ;;
		*) echo "in-vm.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

[[ $part =~ ^([0-9]+)/([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 1 && BASH_REMATCH[1] <= BASH_REMATCH[2])) ||
	{ echo "in-vm.sh: --part $part: want P/Q with 1 <= P <= Q" >&2; exit 2; }
share() { # N: "FROM TO", this part's share of 1..N (empty when FROM > TO)
	local p=${part%/*} q=${part#*/}
	echo $(((p - 1) * $1 / q + 1)) $((p * $1 / q))
}
read -r r_from r_to < <(share "$rounds")
read -r f_from f_to < <(share "$fills")

VPORT=5201 HOLDPORT=5202 TPORT=7201
echo "META pinned=${VSBENCH_PINNED:-0} nproc=$(nproc --all) kernel=$(uname -r) rounds=$rounds part=$part boot_id=$(cat /proc/sys/kernel/random/boot_id)"
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
# Sizes: bulk 256 MiB, pingpong 5 000 round trips, connrate 2 000.
# The socat relay (C) is 10x slower than the vsock paths and only a yardstick:
# its bulk moves 64 MiB (its CPU is reported per GiB) and its timed tests
# stop at a third of MAXSECS, which keeps `make bench` within its budget.
MAXSECS=${VSBENCH_MAX_SECS:-4}
client() { # PATH TEST: run one client on path A, A2, B, C, E or S
	local quick=("${quick[@]}") secs=$MAXSECS
	[[ $1 == C ]] && secs=$(awk -v s="$MAXSECS" 'BEGIN{print s / 3}')
	if ((${#quick[@]} == 0)); then
		case $2 in
		bulk) [[ $1 == C ]] && quick=(-n 64) ;;
		pingpong) quick=(-n 5000 --max-secs "$secs") ;;
		connrate) quick=(-n 2000 --max-secs "$secs") ;;
		esac
	fi
	[[ ${WARMUP:-} ]] && quick=(--quick)
	case $1 in
		A|A2) "$BIN" "$2" "${quick[@]}" --raw-vsock --host 1 --port $VPORT ;;
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
# warm-up: every path and test once, at --quick sizes, not reported
for t in bulk pingpong connrate; do
	for p in A B C S E; do
		[[ $p == E && $t != connrate ]] && continue
		WARMUP=1 client "$p" "$t" >/dev/null 2>&1 || true
	done
done
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

for ((r = r_from; r <= r_to; r++)); do
	for t in bulk pingpong connrate; do
		paths=(A A2 B C S)
		[[ $t == connrate ]] && paths+=(E)
		for ((k = 0; k < ${#paths[@]}; k++)); do
			run "${paths[(r + k - 1) % ${#paths[@]}]}" "$r" "$t"
		done
	done
done

# Wait (up to 60 s) until the kernel has freed the sockets of the path
# before (the socket count, and the unreclaimable slab, where a closed vsock
# socket lives on until its peer has closed too), so that the next path does
# not pay for their teardown.
settle_sockets() {
	local i n k
	for ((i = 0; i < 600; i++)); do
		n=$(awk '/^sockets:/{print $3}' /proc/net/sockstat)
		k=$(awk '/^SUnreclaim:/{print $2}' /proc/meminfo)
		((n <= sockets0 + 64 && k <= slab0 + 16384)) && return 0
		sleep 0.1
	done
	echo "in-vm.sh: $n sockets and $k KiB of slab still in use ($sockets0, $slab0 KiB before the scale runs)" >&2
}
if ((scale)); then
	sockets0=$(awk '/^sockets:/{print $3}' /proc/net/sockstat)
	slab0=$(awk '/^SUnreclaim:/{print $2}' /proc/meminfo)
	for ((f = f_from; f <= f_to; f++)); do
		order=(A B)
		((f % 2)) || order=(B A)
		for p in "${order[@]}"; do
			"$BIN" server --raw-vsock --hold --port $HOLDPORT >"$W/hold.log" 2>&1 &
			hold=$!
			pids+=($hold)
			wait_line "$W/hold.log" '^listening'
			if [[ $p == A ]]; then
				cmd=("$BIN" scale --raw-vsock --host 1)
			else
				cmd=(env LD_PRELOAD="$LIB" "$BIN" scale --host vsock-1.local)
			fi
			cmd+=(--counts "$scale_counts" --alt-raw 1 --port $HOLDPORT --probe-batches "$batches")
			((${#quick[@]})) || cmd+=(--probe-n "$probe_n")
			settle_sockets
			if "${cmd[@]}" >"$W/scale.out" 2>"$W/client.err"; then
				sed "s/^/RESULT path=$p round=$f /" "$W/scale.out"
			else
				echo "FAILED path=$p round=$f test=scale: $(tr '\n' ' ' <"$W/client.err")"
				fails=$((fails + 1))
			fi
			kill "$hold" 2>/dev/null || true
			wait "$hold" 2>/dev/null || true
			HOLDPORT=$((HOLDPORT + 1)) # a fresh port: the old one's sockets may linger
		done
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
