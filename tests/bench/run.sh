#!/usr/bin/env bash
# run.sh [--report-only | in-vm.sh options]: `make bench`.  Host side:
#   1. host-side overhead of the preloaded library on calls it does not
#      translate (vsbench host), with and without LD_PRELOAD, alternating
#      rounds; the fastest round counts (a shared host only adds noise time);
#   2. /bin/true start-up time with and without the library (vsbench spawn);
#   (1 and 2 also with 1 000 rules configured, none of which matches);
#   3. the supervisor's cost on calls that are not ours: the static vsbench
#      host run directly and under `vsockify --supervise` (trapped calls
#      answered CONTINUE), and the start-up of static /bin/busybox directly
#      and under `vsockify` (which picks the supervisor for a static ELF);
#      both under build/helpers/novsock, which kills any process that makes
#      an AF_VSOCK socket;
#   4. the A/B/C/E/S vsock paths inside the test VM (tests/bench/in-vm.sh).
# No vsock traffic on this machine: everything over vsock runs in the VM.
# Writes build/bench/results.json and prints one table.  Targets are reported,
# never asserted: a missed target shows "MISS".  The exit status is non-zero
# only if a run failed or moved wrong data.  --report-only re-reads the last
# build/bench/raw.txt and prints the table again, without measuring.
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=build/bench
BIN=build/helpers/vsbench
LIB=$PWD/build/libvsockify.so
SBIN=build/helpers/static/vsbench
NOVSOCK=build/helpers/novsock
VSOCKIFY=build/vsockify
ROUNDS=${VSBENCH_HOST_ROUNDS:-7}
SPAWN_RUNS=${VSBENCH_SPAWN_RUNS:-2000}
SUPER_HOST_N=${VSBENCH_SUPER_HOST_N:-5000}   # iterations per supervised host run
SUPER_SPAWN_RUNS=${VSBENCH_SUPER_SPAWN_RUNS:-1000}
STATIC_PROG=(/bin/busybox true)
[[ -x $BIN && -f $LIB && -x $SBIN && -x $NOVSOCK && -x $VSOCKIFY ]] ||
	{ echo "run.sh: build first (make bench)" >&2; exit 2; }
mkdir -p "$OUT"
raw=$OUT/raw.txt
rc=0
report_only=0
if [[ ${1:-} == --report-only ]]; then
	report_only=1
	[[ -s $raw ]] || { echo "run.sh: no $raw to report on" >&2; exit 2; }
else
	: >"$raw"
fi
if ((!report_only)); then

# Variant 2: the library with 1 000 rules of every kind, none matching what
# vsbench does, so the lookups run and pass everything through.
rules=$OUT/rules-1000.conf
python3 - >"$rules" <<'PY'
for i in range(1000):
    k = i % 5
    if k == 0: print(f"connect 10.{i >> 8}.{i & 255}.1:{1000 + i} vsock:{3 + i}:80")
    elif k == 1: print(f"connect 10.200.{i >> 8}.{i & 255} vsock:{3 + i}")
    elif k == 2: print(f"listen 10.100.{i >> 8}.{i & 255}:{2000 + i} vsock:any")
    elif k == 3: print(f"name host-{i}.example vsock:{3 + i}")
    else: print(f"name *.zone{i}.example vsock:{3 + i}")
PY
variant() { # V CMD...: run CMD as variant V (0 without, 1 with, 2 with rules)
	local v=$1
	shift
	case $v in
	0) "$@" ;;
	1) LD_PRELOAD=$LIB "$@" ;;
	2) VSOCKIFY_CONFIG=$rules LD_PRELOAD=$LIB "$@" ;;
	esac
}
order() { # ROUND: rotate which variant goes first
	case $(($1 % 3)) in 0) echo 0 1 2 ;; 1) echo 1 2 0 ;; 2) echo 2 0 1 ;; esac
}

echo "bench: host overhead, $ROUNDS rounds without, with LD_PRELOAD and with 1000 rules (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
for ((r = 1; r <= ROUNDS; r++)); do
	for v in $(order "$r"); do
		out=$(variant "$v" "$BIN" host) || rc=1
		echo "HOST preload=$v round=$r $out" >>"$raw"
	done
done

per=$(((SPAWN_RUNS + ROUNDS - 1) / ROUNDS))
echo "bench: /bin/true start-up, $((per * ROUNDS)) runs each" >&2
for ((r = 1; r <= ROUNDS; r++)); do
	for v in $(order "$r"); do
		case $v in
		0) out=$("$BIN" spawn -n "$per" /bin/true) || rc=1 ;;
		1) out=$("$BIN" spawn -n "$per" --preload "$LIB" /bin/true) || rc=1 ;;
		2) out=$(VSOCKIFY_CONFIG=$rules "$BIN" spawn -n "$per" --preload "$LIB" /bin/true) || rc=1 ;;
		esac
		echo "SPAWN preload=$v round=$r $out" >>"$raw"
	done
done

# The supervisor on this machine: only calls that are not ours (127.0.0.1,
# a plain TCP socket), under novsock so that a mistake fails loudly.
# super=0: the static vsbench alone; super=1: under vsockify --supervise.
super_variant() { # V CMD...
	if (($1)); then shift; "$NOVSOCK" "$VSOCKIFY" --supervise "$@"
	else shift; "$NOVSOCK" "$@"; fi
}
echo "bench: supervisor overhead on calls not ours, $ROUNDS rounds of static vsbench host -n $SUPER_HOST_N without and with --supervise" >&2
for ((r = 1; r <= ROUNDS; r++)); do
	for v in $((r % 2)) $(((r + 1) % 2)); do
		out=$(super_variant "$v" "$SBIN" host -n "$SUPER_HOST_N") || rc=1
		echo "SHOST super=$v round=$r $out" >>"$raw"
	done
done

# Start-up of a static program: vsockify must choose the supervisor by itself.
check=$("$VSOCKIFY" --check "${STATIC_PROG[0]}" 2>&1 || true)
echo "SCHECK $check" >>"$raw"
if [[ $check == *"the supervisor"* ]]; then
	per=$(((SUPER_SPAWN_RUNS + ROUNDS - 1) / ROUNDS))
	echo "bench: static ${STATIC_PROG[*]} start-up, $((per * ROUNDS)) runs each, without and with vsockify ($check)" >&2
	for ((r = 1; r <= ROUNDS; r++)); do
		for v in $((r % 2)) $(((r + 1) % 2)); do
			if ((v)); then
				out=$("$NOVSOCK" "$BIN" spawn -n "$per" "$VSOCKIFY" "${STATIC_PROG[@]}") || rc=1
			else
				out=$("$NOVSOCK" "$BIN" spawn -n "$per" "${STATIC_PROG[@]}") || rc=1
			fi
			echo "SSPAWN super=$v round=$r $out" >>"$raw"
		done
	done
else
	echo "bench: skipping the static start-up row: vsockify --check ${STATIC_PROG[0]} says: $check" >&2
fi

echo "bench: A/B/C paths inside the test VM (a few minutes under TCG)" >&2
vm_rc=0
tests/vm/run-in-vm.sh --timeout 1200 -- tests/bench/in-vm.sh "$@" | tee -a "$raw" |
	grep --line-buffered -E '^(FAILED|DONE)' >&2 || vm_rc=${PIPESTATUS[0]}
if ((vm_rc)); then
	echo "bench: the in-VM run failed (exit $vm_rc)" >&2
	rc=1
fi
fi # report_only

python3 - "$raw" "$OUT/results.json" <<'PY'
import json, os, statistics, sys, time

raw, out = sys.argv[1], sys.argv[2]
host, spawn, vm, failed = {}, {}, {}, []
shost, sspawn, scheck = {}, {}, None  # the supervisor on the host: super=0/1
for line in open(raw):
    w = line.split()
    if not w:
        continue
    if w[0] == "FAILED":
        failed.append(line.strip()); continue
    if w[0] == "SCHECK":
        scheck = line.split(None, 1)[1].strip() if len(w) > 1 else ""; continue
    if w[0] not in ("HOST", "SPAWN", "SHOST", "SSPAWN", "RESULT"):
        continue
    kv = {}
    for x in w[1:]:  # the first wins: run.sh's own preload=V comes before vsbench's
        if "=" in x:
            kv.setdefault(*x.split("=", 1))
    if w[0] in ("HOST", "SHOST"):
        d, v = (host, kv.get("preload")) if w[0] == "HOST" else (shost, kv.get("super"))
        for k, x in kv.items():
            if k.endswith("_ns"):
                d.setdefault(k, {}).setdefault(v, []).append(float(x))
    elif w[0] == "SPAWN":
        spawn.setdefault(kv["preload"], []).append(float(kv["us_per_run"]))
    elif w[0] == "SSPAWN":
        sspawn.setdefault(kv["super"], []).append(float(kv["us_per_run"]))
    else:
        key = kv["test"] + ("@" + kv["live"] if kv["test"] == "scale" else "")
        for k, v in kv.items():
            if k in ("path", "round", "test", "verified", "live"):
                continue
            try:
                vm.setdefault(key, {}).setdefault(k, {}).setdefault(kv["path"], []).append(float(v))
            except ValueError:
                pass

med = lambda xs: statistics.median(xs) if xs else None
def m(test, metric, path):
    return med(vm.get(test, {}).get(metric, {}).get(path, []))

rows = []
def row(measure, a, b, c, ratio, op=None, target=None, note="", info=""):
    """info: shown in the target column of a row without a target."""
    verdict = ""
    if op and ratio is not None:
        ok = ratio >= target if op == ">=" else ratio <= target
        verdict = "ok" if ok else "MISS"
    elif op:
        verdict = "n/a"
    rows.append(dict(measure=measure, A=a, B=b, C=c, ratio=ratio,
                     target=(f"{'≥' if op == '>=' else '≤'} {target:g}{note}" if op else info),
                     verdict=verdict))
def div(x, y):
    return x / y if x is not None and y not in (None, 0) else None

tA, tB, tC = (m("bulk", "MBps", p) for p in "ABC")
row("bulk throughput, MB/s (B/A)", tA, tB, tC, div(tB, tA), ">=", 0.97)
cA, cB, cC = (m("bulk", "cpu_ms_per_GiB", p) for p in "ABC")
row("VM CPU ms per GiB (B/A)", cA, cB, cC, div(cB, cA), "<=", 1.03)
row("VM CPU ms per GiB (C/B)", cA, cB, cC, div(cC, cB), ">=", 1.8)
lA, lB, lC = (m("pingpong", "p50_us", p) for p in "ABC")
row("ping-pong p50, µs (B/A)", lA, lB, lC, div(lB, lA), "<=", 1.05)
row("ping-pong p50, µs (B/C)", lA, lB, lC, div(lB, lC), "<=", 0.6)
qA, qB, qC = (m("pingpong", "p99_us", p) for p in "ABC")
row("ping-pong p99, µs (B/A)", qA, qB, qC, div(qB, qA))
rA, rB, rC = (m("connrate", "conn_per_s", p) for p in "ABC")
row("connections/s (B/A)", rA, rB, rC, div(rB, rA), ">=", 0.9)
rE = m("connrate", "conn_per_s", "E")
row("connections/s, VSOCKIFY_EARLY_SOCKETS=on in B (B/A)", rA, rE, rC, div(rE, rA))
# S: a static client under the supervisor (docs/supervisor.md), in column B.
tS, lS, rS = m("bulk", "MBps", "S"), m("pingpong", "p50_us", "S"), m("connrate", "conn_per_s", "S")
row("supervised static client: bulk MB/s (S/A)", tA, tS, None, div(tS, tA), ">=", 0.98)
row("supervised static client: ping-pong p50, µs (S/A)", lA, lS, None, div(lS, lA), "<=", 1.05)
row("supervised static client: connections/s (S/A)", rA, rS, None, div(rS, rA), ">=", 0.6)
# Notifications the client's supervisor received per connection in the S
# connrate runs (its exit line, total= / conns=); the server is not supervised.
nT, nP = m("connrate", "notif_total", "S"), m("connrate", "notif_per_conn", "S")
row("supervised static client: notifications per connection (B: total of the run)",
    None, nT, None, nP, info="client supervisor: total / connections" if nP is not None
    else "n/a: no count in the supervisor's log")
names = {"gai_localhost_ns": "getaddrinfo(localhost)", "gai_hosts_ns": "getaddrinfo(/etc/hosts name)",
         "connect_close_ns": "socket+connect+close 127.0.0.1", "getsockname_ns": "getsockname",
         "getpeername_ns": "getpeername", "setsockopt_nodelay_ns": "setsockopt(TCP_NODELAY)"}
# host rows: the fastest round (each round already reports its fastest batch);
# other load on a shared host only adds time, never removes it
low = lambda xs: min(xs) if xs else None
for k, label in names.items():
    wo, wi = low(host.get(k, {}).get("0", [])), low(host.get(k, {}).get("1", []))
    row(f"host: {label}, ns (with/without)", wo, wi, None, div(wi, wo), "<=", 1.02)
for k, label in names.items():
    wo, wr = low(host.get(k, {}).get("0", [])), low(host.get(k, {}).get("2", []))
    row(f"host, 1000 rules: {label}, ns (with/without)", wo, wr, None, div(wr, wo), "<=", 1.02)
def startup(label, v):
    s0, s1 = low(spawn.get("0", [])), low(spawn.get(v, []))
    ok = s0 is not None and s1 is not None and s1 - s0 <= 100
    rows.append(dict(measure=label, A=s0, B=s1, C=None,
                     ratio=(s1 - s0) if s0 is not None and s1 is not None else None,
                     target="≤ 100 µs", verdict="ok" if ok else "MISS"))
startup("/bin/true start-up, µs (delta with-without)", "1")
startup("/bin/true start-up, 1000 rules, µs (delta with-without)", "2")
# The supervisor on calls that are not ours (static vsbench host, super=1
# against super=0, fastest round).  No target: the ratio and the absolute
# delta per call, and how many of the calls in one operation trap.
straps = {"gai_localhost_ns": "0 traps", "gai_hosts_ns": "0 traps",
          "connect_close_ns": "2 traps (connect; the listener thread's accept)",
          "getsockname_ns": "1 trap", "getpeername_ns": "1 trap",
          "setsockopt_nodelay_ns": "1 trap"}
deltas = []
for k, label in names.items():
    wo, wi = low(shost.get(k, {}).get("0", [])), low(shost.get(k, {}).get("1", []))
    d = round((wi - wo) / 1000, 1) + 0.0 if wo is not None and wi is not None else None
    if d is not None and straps[k] == "1 trap":
        deltas.append(d)
    row(f"host, supervised static vsbench: {label}, ns (with/without)", wo, wi, None,
        div(wi, wo), info=(f"{d:+.1f} µs per call, {straps[k]}" if d is not None else "n/a"))
d1 = med(deltas)
row("host, supervisor: one trapped call not ours (CONTINUE), µs (delta with-without)",
    None, None, None, d1, info="median of the 1-trap rows" if d1 is not None else "n/a")
s0, s1 = low(sspawn.get("0", [])), low(sspawn.get("1", []))
row("static busybox true start-up, µs (delta vsockify-without)", s0, s1, None,
    (s1 - s0) if s0 is not None and s1 is not None else None,
    info="the supervisor" if scheck and "the supervisor" in scheck
    else f"n/a: {scheck or 'not run'}")
# The first lookup of a process: with rules configured it reads them, once.
f0, f1, f2 = (med(host.get("first_gai_ns", {}).get(v, [])) for v in "012")
row("first getaddrinfo of a process, µs: without / with / 1000 rules",
    f0 and f0 / 1000, f1 and f1 / 1000, f2 and f2 / 1000, div(f2, f1))
for live in sorted({int(k.split("@")[1]) for k in vm if k.startswith("scale@")}):
    key = f"scale@{live}"
    a, b = m(key, "rss_delta_kib", "A"), m(key, "rss_delta_kib", "B")
    row(f"scale: RSS growth at {live} live conns, KiB (B-A)", a, b, None,
        (b - a) if a is not None and b is not None else None)
    a, b = m(key, "probe_us_per_connect", "A"), m(key, "probe_us_per_connect", "B")
    row(f"scale: connect+close at {live} live conns, µs (B/A)", a, b, None, div(b, a))

def fmt(x):
    if x is None: return "–"
    if abs(x) >= 100: return f"{x:.0f}"
    if abs(x) >= 10: return f"{x:.1f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.2f}"

hdr = "| measure | A raw | B vsockify | C socat relay | ratio | target |"
lines = [hdr, "|---|---:|---:|---:|---:|---|"]
for r in rows:
    tgt = (r["target"] + " " + r["verdict"]).strip()
    if r["verdict"] == "MISS":
        tgt = r["target"] + " **MISS**"
    ratio = r["ratio"]
    rtxt = f"{ratio:.3f}" if ratio is not None and abs(ratio) < 10 and "(delta" not in r["measure"] and "KiB" not in r["measure"] else fmt(ratio)
    lines.append(f"| {r['measure']} | {fmt(r['A'])} | {fmt(r['B'])} | {fmt(r['C'])} | {rtxt} | {tgt} |")
table = "\n".join(lines)
json.dump(dict(date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               host_cpus=os.cpu_count(), loadavg=open("/proc/loadavg").read().split()[:3],
               rows=rows, host_ns=host, spawn_us=spawn, super_host_ns=shost,
               super_spawn_us=sspawn, super_check=scheck, vm=vm, failed=failed, table=table),
          open(out, "w"), indent=1, ensure_ascii=False)
print()
print("Host rows (incl. start-up): A = without, B = with LD_PRELOAD (supervised rows: with the supervisor), fastest round.  In-VM rows: median of rounds.")
print(table)
for f in failed:
    print("FAILED:", f)
print(f"\nresults: {out}")
PY
exit $rc
