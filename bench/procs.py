"""What a process under test spends: CPU seconds and resident memory, its workers included."""

import os
import subprocess

TICKS = os.sysconf("SC_CLK_TCK")


def family(pid):
    """`pid` and its children (nginx forks its workers below the master; taskset execs in place)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(int(p) for p in out.split())]


def cpu_seconds(proc):
    """utime + stime of `proc` and its running children; 0 for none (the upstream alone)."""
    if proc is None:
        return 0.0
    total = 0.0
    for pid in family(proc.pid):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def rss_kib(proc):
    """Resident memory of `proc` and its children, in KiB."""
    total = 0
    for pid in family(proc.pid):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total
