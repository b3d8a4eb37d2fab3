#!/usr/bin/env bash
# connect-cost.sh [ROUNDS]: where a supervised connection's time goes, in
# the test VM.  Not part of `make bench`; run it as
#   tests/vm/run-in-vm.sh -- tests/bench/connect-cost.sh 7
# (docs/performance.md, "Supervised connections, call by call").
#
# One static client (build/helpers/static/vsbench connlat, CONNS=1000
# connections per run) on four paths, in rotating order each round:
#   A  raw AF_VSOCK to CID 1
#   S  under the supervisor, to the numeric fake 127.128.0.1 (swapped)
#   T  plain TCP to 127.0.0.1
#   U  under the supervisor, plain TCP to 127.0.0.1 (connect answered
#      CONTINUE: the notification round trip alone)
# and prints, per path, the median over the rounds of each run's p50 for
# the dial (socket + connect), a getsockname after it and the whole cycle,
# with S-A (what the swap adds to a dial) and U-T (what a round trip adds).
# With OTHER=PATH (another build's vsockify) a fifth path O is S through
# that build, in the same rounds: a before/after of a supervisor change.
# Everything is pinned to vCPU 0, as in tests/bench/in-vm.sh.
set -euo pipefail

[[ ${VSOCKIFY_IN_VM:-} == 1 ]] || { echo "connect-cost.sh: refusing to run outside the test VM" >&2; exit 2; }
if [[ -z ${VSBENCH_PINNED:-} ]] && command -v taskset >/dev/null; then
	export VSBENCH_PINNED=1
	exec taskset -c 0 "$0" "$@"
fi
cd "$(dirname "$0")/../.."
SBIN=$PWD/build/helpers/static/vsbench VSOCKIFY=$PWD/build/vsockify
rounds=${1:-7} VPORT=5391 TPORT=5392
W=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT

"$SBIN" server --raw-vsock --port $VPORT >"$W/vsrv.log" 2>&1 & pids+=($!)
"$SBIN" server --host 127.0.0.1 --port $TPORT >"$W/tsrv.log" 2>&1 & pids+=($!)
for ((i = 0; i < 100; i++)); do
	grep -q '^listening' "$W/vsrv.log" && grep -q '^listening' "$W/tsrv.log" && break
	sleep 0.1
done

client() { # PATH [-n N]
	local p=$1
	shift
	case $p in
	A) "$SBIN" connlat "$@" --raw-vsock --host 1 --port $VPORT ;;
	S) "$VSOCKIFY" --supervise "$SBIN" connlat "$@" --host 127.128.0.1 --port $VPORT ;;
	T) "$SBIN" connlat "$@" --host 127.0.0.1 --port $TPORT ;;
	U) "$VSOCKIFY" --supervise "$SBIN" connlat "$@" --host 127.0.0.1 --port $TPORT ;;
	O) "$OTHER" --supervise "$SBIN" connlat "$@" --host 127.128.0.1 --port $VPORT ;;
	esac
}

paths=(A S T U)
[[ ${OTHER:-} ]] && paths+=(O)
for p in "${paths[@]}"; do client "$p" -n 100 >/dev/null; done # warm-up
for ((r = 1; r <= rounds; r++)); do
	for ((k = 0; k < ${#paths[@]}; k++)); do
		p=${paths[(r + k - 1) % ${#paths[@]}]}
		echo "path=$p round=$r $(client "$p" -n "${CONNS:-1000}")"
	done
done | tee "$W/rounds"

python3 - "$W/rounds" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    if kv.get("verified") == "1":
        runs.setdefault(kv["path"], []).append(kv)
keys = ("dial_p50_us", "name_p50_us", "cycle_p50_us")
# The VM's speed drifts by up to 2x from one run to the next (every call
# of a run moves together), so the fastest round is given beside the median.
med = {p: {k: statistics.median(float(r[k]) for r in rs) for k in keys} for p, rs in runs.items()}
low = {p: {k: min(float(r[k]) for r in rs) for k in keys} for p, rs in runs.items()}
print("each run's p50, in us: the median over the rounds (the fastest round)")
print("path rounds          dial        getsockname              cycle")
for p in "ASTUO":
    if p in med:
        cells = "".join(f"{med[p][k]:9.1f} ({low[p][k]:6.1f})" for k in keys)
        print(f"{p:4} {len(runs[p]):6}{cells}")
for a, b, what in (("S", "A", "what the swap adds"), ("U", "T", "a CONTINUE round trip"),
                   ("O", "S", "OTHER's swap against this build's")):
    if a in med and b in med:
        print(f"{a}-{b} dial: {med[a]['dial_p50_us'] - med[b]['dial_p50_us']:.1f} us "
              f"({low[a]['dial_p50_us'] - low[b]['dial_p50_us']:.1f}): {what}")
EOF
