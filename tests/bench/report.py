#!/usr/bin/env python3
"""The report of `make bench` (tests/bench/run.sh).

    report.py RAW OUTDIR                  results.json, report.md, bench.png
    report.py --publish OUTDIR DOC PNG    put report.md into DOC between its
                                          bench:current markers, copy the PNG
    report.py --compare JSON JSON...      does every row's median lie within
                                          the range of every other run?

Every row is built from per-round values: the ratio (or difference) of two
variants measured in the same round.  The row shows their median and their
range, min-max.  A verdict is "ok" only when every round met the target,
"MISS" only when no round did, otherwise "unclear".  The range is wide on
purpose: narrower order-statistic intervals of this run's median (with 11
rounds, the 2nd to 10th value) held the median of another run of the same
commit only ~94 % of the time each, so with 60-odd rows some always "moved";
the range holds it with the probability prediction_coverage() gives (99.8 %
for 15 rounds), distribution-free.
"""
import json, math, os, shutil, statistics, subprocess, sys, time

def prediction_coverage(n, m=None):
    """The probability that the median of another m values (default n) from
    the same distribution lies within the min-max of n values: one minus the
    chance that the m // 2 + 1 smallest (or largest) of all n + m come from
    the other sample."""
    m = m or n
    j = m // 2 + 1
    p = math.prod((m - i) / (n + m - i) for i in range(j)) if j <= m else 0.0
    return 1 - 2 * p


def spread(xs):
    """(lo, hi, coverage): the min-max of xs, and prediction_coverage()."""
    if not xs:
        return None, None, 0.0
    return min(xs), max(xs), prediction_coverage(len(xs))


def verdict(lo, hi, op, target):
    if op is None:
        return ""
    if lo is None:
        return "n/a"
    if op == ">=":
        return "ok" if lo >= target else "MISS" if hi < target else "unclear"
    return "ok" if hi <= target else "MISS" if lo > target else "unclear"


def parse(raw):
    d = dict(host={}, spawn={}, shost={}, sspawn={}, vm={}, scale={}, load=[], meta={}, vm_meta={},
             failed=[], scheck=None)
    for line in open(raw):
        w = line.split()
        if not w:
            continue
        kv = {}
        for x in w[1:]:  # the first wins: run.sh's own v= comes before vsbench's
            if "=" in x:
                kv.setdefault(*x.split("=", 1))
        tag = w[0]
        if tag == "FAILED":
            d["failed"].append(line.strip())
        elif tag == "SCHECK":
            d["scheck"] = line.split(None, 1)[1].strip() if len(w) > 1 else ""
        elif tag == "LOAD":
            d["load"].append(kv)
        elif tag == "META":  # run.sh's line first, then one per VM boot
            if not d["meta"]:
                d["meta"].update(kv)
            else:
                d["vm_meta"].update(kv)
                d.setdefault("vm_boots", []).append(kv.get("boot_id", "?"))
        elif tag in ("HOST", "SHOST"):
            g = d["host" if tag == "HOST" else "shost"]
            for k, x in kv.items():
                if k.endswith("_ns"):
                    g.setdefault(k, {}).setdefault(kv["round"], {})[kv["v"]] = float(x)
        elif tag in ("SPAWN", "SSPAWN"):
            g = d["spawn" if tag == "SPAWN" else "sspawn"]
            g.setdefault(kv["round"], {})[kv["v"]] = float(kv["us_per_run"])
        elif tag == "RESULT" and kv.get("test") == "scale":
            lv = int(kv["live"])
            s = d["scale"].setdefault(kv["path"], {}).setdefault(lv, {})
            # one line per fill (round=): the batches of all fills pooled,
            # the memory and fill cost as the median over the fills
            for k in ("rss_delta_kib", "slab_delta_kib", "fill_us_per_connect"):
                if k in kv:
                    s.setdefault(k + "_fills", []).append(float(kv[k]))
                    s[k] = statistics.median(s[k + "_fills"])
            for k in ("probe_us", "alt_us"):
                if k in kv:
                    s.setdefault(k, []).extend(float(x) for x in kv[k].split(",") if x)
            s["fills"] = s.get("fills", 0) + 1
        elif tag == "RESULT":
            for k, x in kv.items():
                if k in ("path", "round", "test", "verified"):
                    continue
                try:
                    v = float(x)
                except ValueError:
                    continue
                d["vm"].setdefault(kv["test"], {}).setdefault(k, {}).setdefault(
                    kv["round"], {})[kv["path"]] = v
    return d


rows = []


def add(group, measure, values, kind="ratio", op=None, target=None, abs_cols=(None, None, None),
        info="", noise=False):
    """values: the per-round values of the row (ratios, or differences)."""
    values = [v for v in values if v is not None]
    med = statistics.median(values) if values else None
    lo, hi, cov = spread(values)
    rows.append(dict(group=group, measure=measure, kind=kind, values=values, median=med,
                     lo=lo, hi=hi, coverage=cov, op=op, target=target,
                     verdict=verdict(lo, hi, op, target), A=abs_cols[0], B=abs_cols[1],
                     C=abs_cols[2], info=info, noise=noise))


def per_round(table, num, den, f=lambda a, b: a / b if b else None):
    """table: round -> {variant: value}; f(num, den) for every round with both."""
    return [f(r[num], r[den]) for _, r in sorted(table.items(), key=lambda t: int(t[0]))
            if num in r and den in r]


def col_median(table, v):
    xs = [r[v] for r in table.values() if v in r]
    return statistics.median(xs) if xs else None


def build(d):
    vm = d["vm"]

    def vmrow(measure, test, metric, num, den, op=None, target=None, noise=False, third="C"):
        t = vm.get(test, {}).get(metric, {})
        add("VM", measure, per_round(t, num, den), op=op, target=target, noise=noise,
            abs_cols=(col_median(t, den), col_median(t, num), col_median(t, third) if third else None))

    vmrow("bulk throughput, MB/s (B/A)", "bulk", "MBps", "B", "A", ">=", 0.97)
    vmrow("A/A: bulk throughput (A2/A)", "bulk", "MBps", "A2", "A", noise=True)
    vmrow("VM CPU ms per GiB (B/A)", "bulk", "cpu_ms_per_GiB", "B", "A", "<=", 1.03)
    vmrow("VM CPU ms per GiB (C/B)", "bulk", "cpu_ms_per_GiB", "C", "B", ">=", 1.8)
    vmrow("A/A: VM CPU ms per GiB (A2/A)", "bulk", "cpu_ms_per_GiB", "A2", "A", noise=True)
    vmrow("ping-pong p50, µs (B/A)", "pingpong", "p50_us", "B", "A", "<=", 1.05)
    vmrow("ping-pong p50, µs (B/C)", "pingpong", "p50_us", "B", "C", "<=", 0.6)
    vmrow("A/A: ping-pong p50 (A2/A)", "pingpong", "p50_us", "A2", "A", noise=True)
    vmrow("ping-pong p99, µs (B/A)", "pingpong", "p99_us", "B", "A")
    vmrow("connections/s (B/A)", "connrate", "conn_per_s", "B", "A", ">=", 0.9)
    vmrow("connections/s, VSOCKIFY_EARLY_SOCKETS=on (E/A)", "connrate", "conn_per_s", "E", "A")
    vmrow("A/A: connections/s (A2/A)", "connrate", "conn_per_s", "A2", "A", noise=True)
    vmrow("supervised static client: bulk MB/s (S/A)", "bulk", "MBps", "S", "A", ">=", 0.98, third=None)
    vmrow("supervised static client: ping-pong p50 (S/A)", "pingpong", "p50_us", "S", "A", "<=", 1.05,
          third=None)
    vmrow("supervised static client: connections/s (S/A)", "connrate", "conn_per_s", "S", "A", ">=", 0.6,
          third=None)
    npc = [r.get("S") for r in vm.get("connrate", {}).get("notif_per_conn", {}).values()]
    add("VM", "supervised static client: notifications per connection", npc, kind="count",
        info="the client supervisor's own count / connections")

    names = {"gai_localhost_ns": "getaddrinfo(localhost)", "gai_hosts_ns": "getaddrinfo(/etc/hosts name)",
             "connect_close_ns": "socket+connect+close 127.0.0.1", "getsockname_ns": "getsockname",
             "getpeername_ns": "getpeername", "setsockopt_nodelay_ns": "setsockopt(TCP_NODELAY)"}
    host = d["host"]
    for k, label in names.items():
        t = host.get(k, {})
        add("host", f"{label}, ns (with/without)", per_round(t, "1", "0"), op="<=", target=1.02,
            abs_cols=(col_median(t, "0"), col_median(t, "1"), None))
        add("host", f"1000 rules: {label}, ns (rules/without)", per_round(t, "2", "0"), op="<=",
            target=1.02, abs_cols=(col_median(t, "0"), col_median(t, "2"), None))
        add("host", f"A/A: {label} (without/without)", per_round(t, "0b", "0"), noise=True,
            abs_cols=(col_median(t, "0"), col_median(t, "0b"), None))
    sp, diff = d["spawn"], (lambda a, b: a - b)
    add("host", "/bin/true start-up, µs (with − without)", per_round(sp, "1", "0", diff), kind="delta",
        op="<=", target=100, abs_cols=(col_median(sp, "0"), col_median(sp, "1"), None))
    add("host", "/bin/true start-up, 1000 rules, µs (rules − without)", per_round(sp, "2", "0", diff),
        kind="delta", op="<=", target=100, abs_cols=(col_median(sp, "0"), col_median(sp, "2"), None))
    add("host", "A/A: /bin/true start-up, µs (without − without)", per_round(sp, "0b", "0", diff),
        kind="delta", noise=True, abs_cols=(col_median(sp, "0"), col_median(sp, "0b"), None))
    f = host.get("first_gai_ns", {})
    add("host", "first getaddrinfo of a process, 1000 rules/with", per_round(f, "2", "1"),
        abs_cols=(col_median(f, "0"), col_median(f, "1"), col_median(f, "2")),
        info="A without, B with, C 1000 rules (ns)")

    traps = {"gai_localhost_ns": "0 traps", "gai_hosts_ns": "0 traps",
             "connect_close_ns": "2 traps", "getsockname_ns": "1 trap", "getpeername_ns": "1 trap",
             "setsockopt_nodelay_ns": "1 trap"}
    sh = d["shost"]
    one_trap, one_trap_us = {}, {}
    for k, label in names.items():
        t = sh.get(k, {})
        add("supervisor (host)", f"static vsbench: {label}, ns (supervised/direct)",
            per_round(t, "1", "0"), abs_cols=(col_median(t, "0"), col_median(t, "1"), None),
            info=traps[k])
        add("supervisor (host)", f"A/A: static vsbench {label} (direct/direct)", per_round(t, "0b", "0"),
            noise=True)
        if traps[k] == "1 trap":
            for rnd, r in t.items():
                if "0" in r and "1" in r:
                    one_trap.setdefault(rnd, []).append((r["1"] - r["0"]) / r["0"])
                    one_trap_us.setdefault(rnd, []).append((r["1"] - r["0"]) / 1000)
    # In units of the direct call, measured in the same round: this machine's
    # speed steps by 5-10 % between phases of a run (docs/performance.md, "Run
    # to run"), which moves a cost in µs from run to run but cancels here.
    def us_text(per_rnd):
        xs = [statistics.median(v) for v in per_rnd.values()]
        return f"{fmt(statistics.median(xs))} µs ({fmt(min(xs))}–{fmt(max(xs))})" if xs else "– µs"
    add("supervisor (host)", "one trapped call not ours (CONTINUE), in direct calls ((supervised − direct)/direct)",
        [statistics.median(v) for v in one_trap.values()],
        info=f"{us_text(one_trap_us)}; per round: median of the three 1-trap rows")
    ss = d["sspawn"]
    rel = lambda a, b: (a - b) / b if b else None
    us = per_round(ss, "1", "0", diff)
    add("supervisor (host)", "static busybox true start-up ((vsockify − direct)/direct)",
        per_round(ss, "1", "0", rel),
        abs_cols=(col_median(ss, "0"), col_median(ss, "1"), None),
        info=(f"{fmt(statistics.median(us))} µs ({fmt(min(us))}–{fmt(max(us))}) added; " if us else "")
        + ("the supervisor" if d["scheck"] and "the supervisor" in d["scheck"]
           else f"n/a: {d['scheck'] or 'not run'}"))
    add("supervisor (host)", "A/A: static busybox true start-up ((direct − direct)/direct)",
        per_round(ss, "0b", "0", rel), noise=True)

    # scale: pairs in one process.  A: raw holding raw, probes raw/raw (A/A);
    # B: the library holding shimmed connections, probes shimmed/raw (B/A).
    sc = d["scale"]
    curve = []
    for lv in sorted(set(sc.get("A", {})) | set(sc.get("B", {}))):
        a, b = sc.get("A", {}).get(lv, {}), sc.get("B", {}).get(lv, {})
        pairs = lambda s: [m / x for m, x in zip(s.get("probe_us", []), s.get("alt_us", [])) if x]
        med = lambda xs: statistics.median(xs) if xs else None
        add("scale", f"connect+close at {lv} live, shimmed/raw in one process (B/A)", pairs(b),
            abs_cols=(med(b.get("alt_us", [])), med(b.get("probe_us", [])), None),
            info="µs per connect: A raw, B shimmed")
        add("scale", f"A/A: connect+close at {lv} live, raw/raw", pairs(a), noise=True,
            abs_cols=(med(a.get("alt_us", [])), med(a.get("probe_us", [])), None))
        added = [m - x for m, x in zip(b.get("probe_us", []), b.get("alt_us", []))]
        add("scale", f"added cost at {lv} live, µs per connect (shimmed − raw)", added, kind="delta",
            abs_cols=(med(b.get("alt_us", [])), med(b.get("probe_us", [])), None),
            info="the library's own cost: flat if it does not grow with N")
        # per connection from the first level up, so that one-time costs
        # (the first connect's allocations) are left out
        def per_conn(path, key, lv=lv):
            lvls = sorted(sc.get(path, {}))
            if not lvls or lv == lvls[0]:
                return None
            s0, s1 = sc[path][lvls[0]], sc[path][lv]
            if key not in s0 or key not in s1:
                return None
            return (s1[key] - s0[key]) * 1024 / (lv - lvls[0])
        rss = lambda s: per_conn("A" if s is a else "B", "rss_delta_kib")
        slab = lambda s: per_conn("A" if s is a else "B", "slab_delta_kib")
        curve.append(dict(live=lv, raw_us=med(a.get("probe_us", [])),
                          raw_lohi=spread(a.get("probe_us", []))[:2],
                          shim_us=med(b.get("probe_us", [])),
                          shim_lohi=spread(b.get("probe_us", []))[:2],
                          rawB_us=med(b.get("alt_us", [])),
                          ratio=rows[-3]["median"], ratio_lohi=(rows[-3]["lo"], rows[-3]["hi"]),
                          aa=rows[-2]["median"], aa_lohi=(rows[-2]["lo"], rows[-2]["hi"]),
                          added_us=rows[-1]["median"], added_lohi=(rows[-1]["lo"], rows[-1]["hi"]),
                          rss_A_B=rss(a), rss_B_B=rss(b), slab_A_B=slab(a), slab_B_B=slab(b),
                          fill_A_us=a.get("fill_us_per_connect"), fill_B_us=b.get("fill_us_per_connect")))
    for c in curve:
        if c["rss_A_B"] is not None and c["rss_B_B"] is not None and c["live"] >= 1000:
            rows.append(dict(group="scale", measure=f"memory per live connection, {curve[0]['live']}..{c['live']}, bytes",
                             kind="info", values=[], median=c["rss_B_B"] - c["rss_A_B"], lo=None, hi=None,
                             coverage=0, op=None, target=None, verdict="", A=c["rss_A_B"], B=c["rss_B_B"],
                             C=c["slab_B_B"], info="A, B: RSS of the raw and the shimmed process; median: B − A; C: kernel slab (both ends)",
                             noise=False))
    return curve


def fit(curve):
    """Least squares of the B/A ratio, and of the raw and shimmed µs, on
    log10(live): the change per decade of live connections."""
    def ols(pts):
        pts = [(math.log10(x), y) for x, y in pts if y is not None]
        if len(pts) < 2:
            return None
        mx, my = (statistics.fmean(p[i] for p in pts) for i in (0, 1))
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None
    if len(curve) < 2:
        return None
    lo, top = curve[0], curve[-1]
    # flat: the library's added µs per connect at the top level within the
    # range of the bottom level's, or the two ranges overlapping.  The ratio
    # is no test of that: it falls as the kernel's own cost grows.
    a, b = lo["added_lohi"], top["added_lohi"]
    overlap = (a[0] is not None and b[0] is not None and b[0] <= a[1] and a[0] <= b[1])
    # the raw cost's own growth: power law exponent between the top two levels
    k = None
    if len(curve) >= 2 and curve[-1]["raw_us"] and curve[-2]["raw_us"]:
        k = math.log(curve[-1]["raw_us"] / curve[-2]["raw_us"]) / math.log(curve[-1]["live"] / curve[-2]["live"])
    return dict(ratio_per_decade=ols([(c["live"], c["ratio"]) for c in curve]),
                added_us_per_decade=ols([(c["live"], c["added_us"]) for c in curve]),
                shim_us_per_decade=ols([(c["live"], c["shim_us"]) for c in curve]),
                raw_us_per_decade=ols([(c["live"], c["raw_us"]) for c in curve]),
                raw_exponent_top=k, flat=overlap, levels=[c["live"] for c in curve])


def load_verdict(d):
    lv = d["load"]
    start = next((x for x in lv if x.get("phase") == "start"), {})
    other = sum(float(x.get("other_cpu_s", 0)) for x in lv)
    wall = sum(float(x.get("wall_s", 0)) for x in lv)
    share = other / wall if wall else 0
    # The load average counts the bench itself (and the run before it), so it is
    # reported, not judged: only CPU time used by other processes marks a run loaded.
    loaded = share > 0.10
    return dict(start=start.get("loadavg"), end=next((x.get("loadavg") for x in lv if x.get("phase") == "end"), None),
                other_cpu_s=round(other, 1), wall_s=round(wall, 1), other_share=round(share, 3),
                loaded=loaded, phases=lv)


def fmt(x):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.2f}"


def fmt_val(r, x):
    if x is None:
        return "–"
    return f"{x:.3f}" if r["kind"] == "ratio" else fmt(x)


def aa_for(r):
    """The A/A row of r's test: the one of its group whose name, after
    "A/A: ", shares the longest start with r's."""
    def common(x, y):
        n = 0
        while n < min(len(x), len(y)) and x[n] == y[n]:
            n += 1
        return n
    cands = [x for x in rows if x["noise"] and x["group"] == r["group"] and x["values"]]
    name = r["measure"].removeprefix("1000 rules: ").removeprefix("supervised static client: ")
    return max(cands, key=lambda x: common(x["measure"].removeprefix("A/A: "), name), default=None)


def unclear_why(r):
    aa = aa_for(r)
    margin = abs(r["median"] - r["target"])
    text = (f"{r['measure']}: median {fmt_val(r, r['median'])}, {fmt_val(r, margin)} from the target "
            f"{fmt_val(r, r['target'])}; its rounds span {fmt_val(r, r['lo'])}–{fmt_val(r, r['hi'])}")
    if aa:
        centre = 1.0 if aa["kind"] == "ratio" else 0.0
        drift = max(aa["hi"] - centre, centre - aa["lo"])
        text += (f"; {aa['measure'].removeprefix('A/A: ')} against itself spans "
                 f"{fmt_val(aa, aa['lo'])}–{fmt_val(aa, aa['hi'])} (±{fmt_val(aa, drift)})")
        text += (": one round's noise is larger than the margin" if drift >= margin else
                 ": the margin is larger than the A/A drift, so the row's own spread (the shimmed "
                 "path's) is what straddles the target")
    return text + "."


def markdown(d, curve, ft, load, png_name):
    m = d["meta"]
    cov = {round(r["coverage"], 3) for r in rows if r["values"]}
    out = [f"Run {d['date'].replace('T', ' ')[:16]} UTC, commit {m.get('commit', '?')}, "
           f"kernel {m.get('kernel', '?')} (host), {d['vm_meta'].get('kernel', '?')} (VM), {os.cpu_count()} CPUs, {m.get('rounds', '?')} rounds"
           f"{' (QUICK)' if m.get('quick') == '1' else ''}; host runs pinned to CPU {m.get('pinned', 'none')}.",
           "",
           f"Load: 1-min load average {load['start'] or '?'} at the start, {load['end'] or '?'} at the end; "
           f"other processes used {load['other_cpu_s']} CPU-s in {load['wall_s']} s "
           f"({100 * load['other_share']:.1f} % of one CPU): "
           f"**{'LOADED, read the verdicts with care' if load['loaded'] else 'quiet'}**.",
           "",
           "Each row: the median of the per-round values (a ratio of two variants measured in the same "
           "round, or their difference), and the range of those values, min–max: another run's "
           "median lands inside it with probability "
           f"{', '.join(f'{100 * c:.1f} %' for c in sorted(cov))} (distribution-free, for this "
           "number of rounds). A/A rows compare a path with itself: the noise floor of the run. "
           "**ok**: every round met the target; **MISS**: no round did; *unclear*: rounds on both sides.",
           ""]
    for group in ("VM", "scale", "host", "supervisor (host)"):
        g = [r for r in rows if r["group"] == group]
        if not g:
            continue
        head = {"VM": "In the test VM: A raw vsock, B vsockify (library), C socat relay, S supervised static client",
                "scale": "Scale (in the VM), per connect+close with N live connections",
                "host": "On the host, calls the library passes through: A without, B with LD_PRELOAD",
                "supervisor (host)": "On the host, the supervisor on calls that are not ours"}[group]
        out += [f"**{head}**", "", "| measure | A | B | C | median | range of the rounds | target | verdict |",
                "|---|---:|---:|---:|---:|---|---|---|"]
        for r in g:
            iv = f"{fmt_val(r, r['lo'])} – {fmt_val(r, r['hi'])}" if r["lo"] is not None else ""
            tgt = (f"{'≥' if r['op'] == '>=' else '≤'} {r['target']:g}" if r["op"] else r["info"])
            v = {"MISS": "**MISS**", "ok": "ok", "unclear": "*unclear*"}.get(r["verdict"], r["verdict"])
            name = f"*{r['measure']}*" if r["noise"] else r["measure"]
            out.append(f"| {name} | {fmt(r['A'])} | {fmt(r['B'])} | {fmt(r['C'])} | {fmt_val(r, r['median'])} "
                       f"| {iv} | {tgt} | {v} |")
        out.append("")
    if ft:
        per = ft["ratio_per_decade"]
        out += [f"Scale fit over {', '.join(str(x) for x in ft['levels'])} live connections (least squares on "
                f"log10 N): the shimmed/raw ratio changes by {per:+.3f} per decade; the raw kernel cost by "
                f"{ft['raw_us_per_decade']:+.0f} µs per decade (growth exponent {ft['raw_exponent_top']:.2f} "
                f"between the top two levels), the shimmed cost by {ft['shim_us_per_decade']:+.0f} µs per decade; "
                f"the library's added cost (shimmed − raw) is {fmt(curve[0]['added_us'])} µs at {curve[0]['live']} live "
                f"and {fmt(curve[-1]['added_us'])} µs at {curve[-1]['live']}, {ft['added_us_per_decade']:+.1f} µs per decade. "
                + ("Its range at the top level overlaps the one at the bottom: the library's "
                   "per-connect cost is **flat** in the number of live connections; what grows is the kernel's "
                   "(so the ratio falls)."
                   if ft["flat"] else
                   "Its ranges at the bottom and top levels do **not** overlap: the library's "
                   "per-connect cost is not flat in this run."), ""]
    out += [f"![bench: scale curves and per-round spread]({png_name})", ""]
    summary = {}
    for r in rows:
        if r["verdict"] in ("ok", "MISS", "unclear"):
            summary.setdefault(r["verdict"], []).append(r["measure"])
    out.append("Targets: " + "; ".join(f"{k} {len(v)}" for k, v in sorted(summary.items())) + ".")
    why = [unclear_why(r) for r in rows if r["verdict"] == "unclear"]
    if why:
        out += ["", "Why each unclear row is unclear: how far its median is from the target, "
                "against how far its own test drifts from itself (its A/A row's range in this run).", ""]
        out += [f"- {w}" for w in why]
    for f in d["failed"]:
        out.append(f"\nFAILED: {f}")
    return "\n".join(out) + "\n"


def picture(outdir, curve, png):
    """gnuplot, from Debian's gnuplot-nox: scale curves and per-round spread."""
    if not shutil.which("gnuplot"):
        print("report.py: gnuplot not found (Debian package gnuplot-nox): no picture", file=sys.stderr)
        return False
    sc = os.path.join(outdir, "scale.dat")
    with open(sc, "w") as f:
        for c in curve:
            vals = [c["live"], c["raw_us"], *c["raw_lohi"], c["shim_us"], *c["shim_lohi"],
                    c["rss_A_B"], c["rss_B_B"], c["slab_B_B"], c["ratio"], *c["ratio_lohi"],
                    c["aa"], *c["aa_lohi"]]
            f.write(" ".join("nan" if v is None else f"{v}" for v in vals) + "\n")
    spread = [r for r in rows if r["kind"] == "ratio" and r["values"] and r["group"] != "scale"
              and 0.2 < r["median"] < 5]
    sp = os.path.join(outdir, "spread.dat")
    with open(sp, "w") as f:
        for i, r in enumerate(spread):
            for v in r["values"]:
                f.write(f"{i} {v} {r['median']} {r['target'] if r['target'] is not None else 'nan'}\n")
    scale_plot = (f'plot "{sc}" u 1:2:3:4 w yerrorlines t "raw (A process)", '
                  f'"{sc}" u 1:5:6:7 w yerrorlines t "shimmed (B process)"' if curve else
                  'unset logscale; set xrange [0:1]; set yrange [0:1]; set label 1 "no scale run" at 0.45,0.5; '
                  'plot 2 notitle; unset label 1; unset xrange; unset yrange')
    ratio_plot = (f'plot "{sc}" u 1:11:12:13 w yerrorlines t "B/A", "{sc}" u 1:14:15:16 w yerrorlines t "A/A", '
                  '1 notitle lc rgb "gray"' if curve else 'plot 2 notitle')
    if not spread:
        open(sp, "a").write("0 nan nan nan\n")
    labels = ", ".join(f'"{r["measure"][:58].replace(chr(34), "")}" {i}' for i, r in enumerate(spread))
    h = 520 + 22 * len(spread)
    top = 460 / h  # the scale panels' share of the height
    script = f"""
set terminal pngcairo noenhanced size 1500,{h} font ",9"
set output "{png}"
set multiplot
set size 0.5,{top:.3f}
set origin 0,{1 - top:.3f}
set lmargin 10
set logscale x
set xlabel "live connections"
set ylabel "µs per connect+close (median, range)"
set logscale y
set key top left
set title "scale: per-connect cost against live vsock connections"
{scale_plot}
set origin 0.5,{1 - top:.3f}
unset logscale y
set ylabel "ratio of paired batches (median, range)"
set title "scale: shimmed/raw (B/A) and raw/raw (A/A), paired in one process"
{ratio_plot}
set size 1,{1 - top:.3f}
set origin 0,0
set lmargin 62
unset logscale
set logscale x 10
set xrange [0.25:4]
set xtics (0.25, 0.5, 0.8, 0.9, 1, 1.1, 1.25, 2, 4)
set xlabel "per-round value (ratio of two variants in the same round; log scale)"
unset ylabel
set ytics ({labels}) font ",8"
set yrange [-1:{len(spread)}]
set grid x
set key bottom right
set title "per-round spread of each ratio row (A/A rows: the noise floor); diamonds: median, crosses: target"
plot "{sp}" u 2:1 w p pt 7 ps 0.6 t "rounds", "{sp}" u 3:1 w p pt 13 ps 1.4 t "median", \\
     "{sp}" u 4:1 w p pt 2 ps 1.2 lc rgb "red" t "target"
unset multiplot
"""
    gp = os.path.join(outdir, "bench.gp")
    open(gp, "w").write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode:
        print("report.py: gnuplot failed:", r.stderr, file=sys.stderr)
        return False
    return True


def report(raw, outdir):
    d = parse(raw)
    # the run's own date: run.sh writes it; older raw files fall back to their mtime
    d["date"] = d["meta"].get("date") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(raw)))
    curve = build(d)
    ft = fit(curve)
    load = load_verdict(d)
    png = os.path.join(outdir, "bench.png")
    ok_png = picture(outdir, curve, png)
    md = markdown(d, curve, ft, load, "bench.png")
    open(os.path.join(outdir, "report.md"), "w").write(md)
    json.dump(dict(date=d["date"], meta=d["meta"], vm_meta=d["vm_meta"], load=load,
                   rows=rows, scale_curve=curve, scale_fit=ft, picture=ok_png, failed=d["failed"],
                   raw=dict(host=d["host"], spawn=d["spawn"], shost=d["shost"], sspawn=d["sspawn"],
                            vm=d["vm"], scale={p: {str(k): v for k, v in x.items()} for p, x in d["scale"].items()})),
              open(os.path.join(outdir, "results.json"), "w"), indent=1, ensure_ascii=False)
    print(md)
    print(f"results: {outdir}/results.json, {outdir}/report.md" + (f", {png}" if ok_png else ""))
    return 1 if d["failed"] else 0


def publish(outdir, doc, png):
    md = open(os.path.join(outdir, "report.md")).read().replace("](bench.png)", f"]({os.path.basename(png)})")
    text = open(doc).read()
    b, e = "<!-- bench:current:begin (generated by make bench PUBLISH=1) -->", "<!-- bench:current:end -->"
    if b not in text or e not in text:
        print(f"report.py: {doc} has no bench:current markers", file=sys.stderr)
        return 2
    text = text[:text.index(b) + len(b)] + "\n" + md + text[text.index(e):]
    open(doc, "w").write(text)
    src = os.path.join(outdir, "bench.png")
    if os.path.exists(src):
        shutil.copyfile(src, png)
    print(f"published into {doc} and {png}")
    return 0


def compare(paths):
    runs = [json.load(open(p)) for p in paths]
    measures = [r["measure"] for r in runs[0]["rows"] if r["lo"] is not None]
    bad, lines = 0, []
    for m in measures:
        rs = [next((r for r in run["rows"] if r["measure"] == m), None) for run in runs]
        if any(r is None or r["lo"] is None for r in rs):
            continue
        ok = all(rs[j]["lo"] <= rs[i]["median"] <= rs[j]["hi"]
                 for i in range(len(rs)) for j in range(len(rs)) if i != j)
        bad += not ok
        lines.append(f"| {m} | " + " | ".join(f"{fmt(r['median'])} [{fmt(r['lo'])}, {fmt(r['hi'])}]" for r in rs)
                     + f" | {'yes' if ok else '**no**'} |")
    print("| row | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " | each median in the others' ranges |")
    print("|---|" + "---|" * len(runs) + "---|")
    print("\n".join(lines))
    print(f"\n{len(lines) - bad} of {len(lines)} rows consistent across {len(runs)} runs")
    return 1 if bad else 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "--publish" and len(a) == 4:
        sys.exit(publish(*a[1:]))
    if a and a[0] == "--compare" and len(a) >= 3:
        sys.exit(compare(a[1:]))
    if len(a) == 2:
        sys.exit(report(*a))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
