#!/usr/bin/env bash
# run.sh [--quick] [--rounds N] [--no-scale] [--scale-counts L] [--publish]
#        [--report-only] [--arch aarch64]: `make bench` (QUICK=1: --quick,
#        PUBLISH=1: --publish, ARCH=aarch64: --arch aarch64).
# --arch aarch64 (on x86-64) runs only group 4, in the arm64 test VM against
# the arm64 build (build/aarch64), into build/bench/aarch64/: the host
# groups measure this machine's own CPU, which is not an arm64 one.
# Host side:
#   1. host-side overhead of the preloaded library on calls it does not
#      translate (vsbench host), with and without LD_PRELOAD and with 1 000
#      rules configured, none of which matches;
#   2. /bin/true start-up time in the same variants (vsbench spawn);
#   3. the supervisor's cost on calls that are not ours: the static vsbench
#      host run directly and under `vsockify --supervise` (trapped calls
#      answered CONTINUE), and the start-up of static /bin/busybox directly
#      and under `vsockify` (which picks the supervisor for a static ELF);
#      both under build/helpers/novsock, which kills any process that makes
#      an AF_VSOCK socket;
#   4. the A/A2/B/C/E/S vsock paths and the scale curve inside the test VM
#      (tests/bench/in-vm.sh).
# Every group runs "without" twice per round (variants 0 and 0b): 0b/0 is the
# A/A row, the noise floor of that group in this run.  Rounds rotate the
# order of the variants; each row is the median of its per-round ratios with
# their range (tests/bench/report.py), and a verdict is ok only when every
# round met the target, MISS only when none did.  The VM runs in two boots,
# each with half of its rounds; the host groups run a third of their rounds
# before, between and after them.
# Host runs are pinned to one CPU (the last) when there is more than one.
# No vsock traffic on this machine: everything over vsock runs in the VM.
# Writes build/bench/{raw.txt,results.json,report.md,bench.png}; --publish
# also puts report.md into docs/performance.md (between its bench:current
# markers) and the picture into docs/bench.png.  The exit status is non-zero
# only if a run failed or moved wrong data.  --report-only re-reads the last
# build/bench/raw.txt and reports again, without measuring.
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=build/bench
BIN=build/helpers/vsbench
LIB=$PWD/build/libvsockify.so
SBIN=build/helpers/static/vsbench
NOVSOCK=build/helpers/novsock
VSOCKIFY=build/vsockify
STATIC_PROG=(/bin/busybox true)
quick=0 report_only=0 publish=0 rounds= vm_args=() arch=
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--rounds) rounds=$2; shift ;;
	--no-scale) vm_args+=(--no-scale) ;;
	--scale-counts) vm_args+=(--scale-counts "$2"); shift ;;
	--publish) publish=1 ;;
	--report-only) report_only=1 ;;
	--arch) arch=$2; shift ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if ((quick)); then
	ROUNDS=${rounds:-3} HOST_ARGS=(--quick) SPAWN_RUNS=300 SUPER_HOST_N=500 SUPER_SPAWN_RUNS=150
	vm_args+=(--quick)
else
	ROUNDS=${rounds:-15} HOST_ARGS=() SPAWN_RUNS=${VSBENCH_SPAWN_RUNS:-2200}
	SUPER_HOST_N=${VSBENCH_SUPER_HOST_N:-3000} SUPER_SPAWN_RUNS=${VSBENCH_SUPER_SPAWN_RUNS:-1100}
fi
[[ -n $rounds ]] && vm_args+=(--rounds "$rounds")
vm_opts=()
foreign=0
case $arch in
'' | "$(uname -m)") ;;
aarch64)
	[[ -f build/aarch64/libvsockify.so && -x build/aarch64/helpers/vsbench ]] ||
		{ echo "run.sh: build the arm64 tree first (make aarch64)" >&2; exit 2; }
	((publish)) && { echo "run.sh: --publish takes the native run only" >&2; exit 2; }
	OUT=build/bench/aarch64 vm_opts=(--arch aarch64) foreign=1 ;;
*) echo "run.sh: --arch $arch: only aarch64 is supported" >&2; exit 2 ;;
esac
[[ -x $BIN && -f $LIB && -x $SBIN && -x $NOVSOCK && -x $VSOCKIFY ]] ||
	{ echo "run.sh: build first (make bench)" >&2; exit 2; }
mkdir -p "$OUT"
raw=$OUT/raw.txt
rc=0
if ((report_only)); then
	[[ -s $raw ]] || { echo "run.sh: no $raw to report on" >&2; exit 2; }
else
	: >"$raw"
fi
PIN=()
if command -v taskset >/dev/null && (($(nproc) > 1)); then PIN=(taskset -c $(($(nproc) - 1))); fi

# LOAD PHASE: the load average, and the CPU time that processes outside this
# run used since the previous mark (tests/bench/load.py).  report.py calls a
# run loaded from these.
python3 tests/bench/load.py snap $$ "$OUT/load.prev"
mark_t0=$(date +%s.%N)
mark() { # PHASE
	local now other
	python3 tests/bench/load.py snap $$ "$OUT/load.now"
	now=$(date +%s.%N) other=$(python3 tests/bench/load.py diff "$OUT/load.prev" "$OUT/load.now")
	echo "LOAD phase=$1 loadavg=$(cut -d' ' -f1 /proc/loadavg) wall_s=$(awk -v a="$mark_t0" -v b="$now" 'BEGIN{printf "%.1f", b-a}') other_cpu_s=$other cpus=$(nproc)" >>"$raw"
	mv "$OUT/load.now" "$OUT/load.prev"
	mark_t0=$now
}
rotate() { # ROUND V...: the variants, rotated by ROUND
	local r=$1
	shift
	local v=("$@") i n=$#
	for ((i = 0; i < n; i++)); do printf '%s ' "${v[(r + i) % n]}"; done
}

if ((!report_only)); then
echo "LOAD phase=start loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) cpus=$(nproc)" >>"$raw"
echo "META date=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- shim tests 2>/dev/null || echo -dirty) rounds=$ROUNDS quick=$quick kernel=$(uname -r) pinned=${PIN[2]:-none}" >>"$raw"

# Variant 2: the library with 1 000 rules of every kind, none matching what
# vsbench does, so the lookups run and pass everything through.
rules=$OUT/rules-1000.conf
python3 - >"$rules" <<'PY2'
for i in range(1000):
    k = i % 5
    if k == 0: print(f"connect 10.{i >> 8}.{i & 255}.1:{1000 + i} vsock:{3 + i}:80")
    elif k == 1: print(f"connect 10.200.{i >> 8}.{i & 255} vsock:{3 + i}")
    elif k == 2: print(f"listen 10.100.{i >> 8}.{i & 255}:{2000 + i} vsock:any")
    elif k == 3: print(f"name host-{i}.example vsock:{3 + i}")
    else: print(f"name *.zone{i}.example vsock:{3 + i}")
PY2
variant() { # V CMD...: run CMD as variant V (0/0b without, 1 with, 2 with rules)
	local v=$1
	shift
	case $v in
	0|0b) "${PIN[@]}" "$@" ;;
	1) LD_PRELOAD=$LIB "${PIN[@]}" "$@" ;;
	2) VSOCKIFY_CONFIG=$rules LD_PRELOAD=$LIB "${PIN[@]}" "$@" ;;
	esac
}

echo "bench: warm-up, then host overhead, $ROUNDS rounds without (twice), with LD_PRELOAD and with 1000 rules, a third before, between and after the two VM boots (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
for v in 0 1 2; do variant "$v" "$BIN" host --quick >/dev/null || rc=1; done
# The supervisor on this machine: only calls that are not ours (127.0.0.1,
# a plain TCP socket), under novsock so that a mistake fails loudly.
# v=0/0b: the static vsbench alone; v=1: under vsockify --supervise.
super_variant() { # V CMD...
	if [[ $1 == 1 ]]; then shift; "${PIN[@]}" "$NOVSOCK" "$VSOCKIFY" --supervise "$@"
	else shift; "${PIN[@]}" "$NOVSOCK" "$@"; fi
}
# Start-up of a static program: vsockify must choose the supervisor by itself.
check=$("$VSOCKIFY" --check "${STATIC_PROG[0]}" 2>&1 || true)
echo "SCHECK $check" >>"$raw"

# The host rounds FROM..TO of every host group.
host_rounds() { # FROM TO
	local from=$1 to=$2 r v out per
	for ((r = from; r <= to; r++)); do
		for v in $(rotate "$r" 0 0b 1 2); do
			out=$(variant "$v" "$BIN" host "${HOST_ARGS[@]}") || rc=1
			echo "HOST v=$v round=$r $out" >>"$raw"
		done
	done
	mark host

	per=$(((SPAWN_RUNS + ROUNDS - 1) / ROUNDS))
	echo "bench: /bin/true start-up, rounds $from-$to, $per runs per variant and round" >&2
	for ((r = from; r <= to; r++)); do
		for v in $(rotate "$r" 0 0b 1 2); do
			case $v in
			0|0b) out=$("${PIN[@]}" "$BIN" spawn -n "$per" /bin/true) || rc=1 ;;
			1) out=$("${PIN[@]}" "$BIN" spawn -n "$per" --preload "$LIB" /bin/true) || rc=1 ;;
			2) out=$(VSOCKIFY_CONFIG=$rules "${PIN[@]}" "$BIN" spawn -n "$per" --preload "$LIB" /bin/true) || rc=1 ;;
			esac
			echo "SPAWN v=$v round=$r $out" >>"$raw"
		done
	done
	mark spawn

	echo "bench: supervisor overhead on calls not ours, rounds $from-$to of static vsbench host -n $SUPER_HOST_N without (twice) and with --supervise" >&2
	for ((r = from; r <= to; r++)); do
		for v in $(rotate "$r" 0 0b 1); do
			out=$(super_variant "$v" "$SBIN" host -n "$SUPER_HOST_N") || rc=1
			echo "SHOST v=$v round=$r $out" >>"$raw"
		done
	done
	mark super_host

	if [[ $check == *"the supervisor"* ]]; then
		per=$(((SUPER_SPAWN_RUNS + ROUNDS - 1) / ROUNDS))
		echo "bench: static ${STATIC_PROG[*]} start-up, rounds $from-$to, $per runs per variant and round, without (twice) and with vsockify ($check)" >&2
		for ((r = from; r <= to; r++)); do
			for v in $(rotate "$r" 0 0b 1); do
				if [[ $v == 1 ]]; then
					out=$("${PIN[@]}" "$NOVSOCK" "$BIN" spawn -n "$per" "$VSOCKIFY" "${STATIC_PROG[@]}") || rc=1
				else
					out=$("${PIN[@]}" "$NOVSOCK" "$BIN" spawn -n "$per" "${STATIC_PROG[@]}") || rc=1
				fi
				echo "SSPAWN v=$v round=$r $out" >>"$raw"
			done
		done
	else
		echo "bench: skipping the static start-up row: vsockify --check ${STATIC_PROG[0]} says: $check" >&2
	fi
	mark super_spawn
}
# The host rounds in three shares around two boots of the VM, each running
# half of the VM's rounds and fills: the spread of every row then covers the
# minutes a run takes and two VM boots, not one phase of each.
third() { echo $((($1 - 1) * ROUNDS / 3 + 1)) $(($1 * ROUNDS / 3)); }
vm_part() { # P: the P-th of the two VM boots
	local vm_rc=0
	echo "bench: the vsock paths inside the test VM, part $1 of 2 (minutes under TCG)" >&2
	tests/vm/run-in-vm.sh --timeout 1200 "${vm_opts[@]}" -- tests/bench/in-vm.sh "${vm_args[@]}" --part "$1/2" |
		tee -a "$raw" | grep --line-buffered -E '^(FAILED|DONE)' >&2 || vm_rc=${PIPESTATUS[0]}
	if ((vm_rc)); then
		echo "bench: the in-VM run (part $1) failed (exit $vm_rc)" >&2
		rc=1
	fi
	mark vm
}
((foreign)) || host_rounds $(third 1)
vm_part 1
((foreign)) || host_rounds $(third 2)
vm_part 2
((foreign)) || host_rounds $(third 3)
echo "LOAD phase=end loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" >>"$raw"
fi # report_only

python3 tests/bench/report.py "$raw" "$OUT" || rc=1
if ((publish)); then
	python3 tests/bench/report.py --publish "$OUT" docs/performance.md docs/bench.png || rc=1
fi
exit $rc
