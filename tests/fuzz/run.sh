#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in tests/fuzz/, one after another,
# and prints TAP.  Outputs (binaries, logs, work corpora, crash inputs) go
# to build/fuzz/; the seeds in tests/fuzz/corpus/ are only read.
#   tests/fuzz/run.sh [--quick] [--seconds N] [TARGET...]
# --quick is 10 s per target; the default is 60.  TARGET: fuzz_names, ...
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
usage() { echo "usage: tests/fuzz/run.sh [--quick] [--seconds N] [TARGET...]" >&2; exit 2; }

seconds=60
targets=()
while (($#)); do
	case $1 in
	--quick) seconds=10 ;;
	--seconds) [[ ${2:-} =~ ^[0-9]+$ ]] || usage; seconds=$2; shift ;;
	-h | --help | -*) usage ;;
	*) targets+=("$(basename "${1%.c}")") ;;
	esac
	shift
done
if ((${#targets[@]} == 0)); then
	for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "${f%.c}")"); done
fi

out=build/fuzz
mkdir -p "$out/artifacts"
# shellcheck disable=SC2054 # the commas are clang's
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-D_GNU_SOURCE -std=gnu11 -Ishim)
core=(shim/core/*.c)
# The whole library but the wrapper, so the target's hooks are the shim's.
library=("${core[@]}")
for f in shim/*.c; do [[ $f == shim/vsockify.c ]] || library+=("$f"); done

fail() { echo "not ok $n - $t: $*"; failed=1; } # uses the loop's n and t

echo "1..${#targets[@]}"
failed=0
n=0
for t in "${targets[@]}"; do
	n=$((n + 1))
	src=tests/fuzz/$t.c bin=$out/$t log=$out/$t.log
	if [[ ! -f $src ]]; then fail "no such target ($src)"; continue; fi
	if ! command -v clang >/dev/null; then
		fail "clang not found (make deps installs clang and libclang-rt-14-dev)"
		continue
	fi

	libs=("${core[@]}")
	[[ $t == fuzz_gai ]] && libs=("${library[@]}" -ldl -pthread)
	if ! clang "${cflags[@]}" -o "$bin" "$src" "${libs[@]}" >"$log" 2>&1; then
		# A missing libFuzzer runtime (libclang-rt-*-dev) shows up here too.
		fail "build failed: $(grep -m1 -E 'error|cannot find' "$log") (see $log)"
		continue
	fi

	# The work corpus grows across runs; the seeds are copied in each time.
	mkdir -p "$out/corpus/$t"
	cp -r tests/fuzz/corpus/"$t"/. "$out/corpus/$t/" 2>/dev/null
	start=$SECONDS
	"$bin" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" >>"$log" 2>&1
	rc=$?
	elapsed=$((SECONDS - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	if ((rc == 0)); then
		echo "ok $n - $t: ${runs:-?} runs in $elapsed s, no crash"
	else
		artefact=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n1)
		fail "exit $rc after $elapsed s (${artefact:-no artefact}; see $log)"
	fi
done
exit "$failed"
