#!/usr/bin/env python3
"""CPU time of the processes that are not the benchmark's, for run.sh's LOAD lines.

    load.py snap PID FILE     record every process's CPU ticks (its own and its
                              waited-for children's) into FILE
    load.py diff OLD NEW      seconds of CPU that other processes used between

A process is the benchmark's when it is in PID's process group or descends
from PID (the supervisor may outlive the wrapper and be re-parented, but it
keeps the process group).  Kernel threads are left out of both: their work is
partly the benchmark's own (softirqs, kworkers), and so is the time of
orphans that init has reaped.
"""
import json, os, sys


def procs():
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            st = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        f = st[st.rindex(")") + 2:].split()
        out[int(p)] = dict(ppid=int(f[1]), pgrp=int(f[2]), start=f[19],
                           # init's children's time is every orphan's, ours included
                           ticks=sum(int(x) for x in f[11:13 if p == "1" else 15]), kthread=int(f[1]) == 2 or int(p) == 2)
    return out


def snap(pid, path):
    ps = procs()
    pgrp = ps.get(pid, {}).get("pgrp", -1)

    def ours(p, seen=0):
        while p in ps and seen < 64:
            if p == pid or ps[p]["pgrp"] == pgrp:
                return True
            p, seen = ps[p]["ppid"], seen + 1
        return False
    other = {f"{p}:{x['start']}": x["ticks"] for p, x in ps.items() if not x["kthread"] and not ours(p)}
    json.dump(other, open(path, "w"))


def diff(old, new):
    a, b = json.load(open(old)), json.load(open(new))
    hz = os.sysconf("SC_CLK_TCK")
    print(f"{sum(max(0, t - a.get(k, 0)) for k, t in b.items()) / hz:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "snap":
        snap(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
