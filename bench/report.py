"""bench/run's report: the tables (table.md) and the plot (plot.svg) from results.json.

`python3 bench/report.py [bench/results]` redraws them from a saved results.json.
"""

import json
import os
import platform
import statistics
import subprocess
import sys

COLOURS = {"a": "#9e9e9e", "b": "#2e7d32", "c": "#8bc34a", "d": "#1565c0", "m": "#64b5f6", "e": "#ef6c00", "f": "#c62828", "n": "#6a1b9a"}


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "nginx": version(["nginx", "-v"]), "wrk": version(["wrk", "-v"]),
            "rustc": version(["rustc", "--version"])}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cell(values, fmt="{:.0f}"):
    """The median, with the lowest and highest value in brackets when there are several."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    m = fmt.format(statistics.median(values))
    return m if len(values) < 2 else f"{m} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def summary(results):
    """Per (system, connections): medians over the counted runs."""
    out = {}
    for run in results["runs"]:
        if run["valid"]:
            out.setdefault((run["system"], run["connections"]), []).append(run)
    return out


def ratio(s, num, den, c):
    a, b = med(r["cpu_us"] for r in s.get((num, c), [])), med(r["cpu_us"] for r in s.get((den, c), []))
    return f"{a / b:.2f}" if a and b else "–"


def tables(results):
    s, systems = summary(results), results["systems"]
    conns = results["args"]["connections"]
    lines = ["| system | conns | req/s | p50 ms | p99 ms | p99.9 ms | proxy CPU µs/req | runs counted |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for system in systems:
        for c in conns:
            runs = s.get((system, c), [])
            total = sum(1 for r in results["runs"] if r["system"] == system and r["connections"] == c)
            lines.append(f"| ({system}) {systems[system]} | {c} | {cell([r['rps'] for r in runs])} | "
                         f"{cell([r['p50_ms'] for r in runs], '{:.2f}')} | {cell([r['p99_ms'] for r in runs], '{:.2f}')} | "
                         f"{cell([r['p999_ms'] for r in runs], '{:.2f}')} | "
                         f"{cell([r['cpu_us'] for r in runs], '{:.1f}')} | {len(runs)}/{total} |")
    lines += ["", "CPU per request, as ratios of medians:", "",
              "| conns | (f)/(d) | (e)/(d) | (f)/(b) | (f)/(c) | (f)/(m) | (e)/(m) | (n)/(f) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in conns:
        lines.append(f"| {c} | {ratio(s, 'f', 'd', c)} | {ratio(s, 'e', 'd', c)} | {ratio(s, 'f', 'b', c)} | "
                     f"{ratio(s, 'f', 'c', c)} | {ratio(s, 'f', 'm', c)} | {ratio(s, 'e', 'm', c)} | "
                     f"{ratio(s, 'n', 'f', c)} |")
    logins = [r for r in results["logins"] if r["valid"]]
    lines += ["", f"Complete silent logins, {results['args']['login_concurrency']} at a time "
              f"({len(logins)}/{len(results['logins'])} runs counted):", "",
              "| logins/s | gateway CPU µs/login | logins/s one core could do | login p50 ms | login p99 ms |",
              "|---:|---:|---:|---:|---:|",
              f"| {cell([r['logins_per_s'] for r in logins])} | {cell([r['cpu_us'] for r in logins])} | "
              f"{cell([1e6 / r['cpu_us'] for r in logins if r['cpu_us']])} | "
              f"{cell([r['p50_ms'] for r in logins], '{:.2f}')} | {cell([r['p99_ms'] for r in logins], '{:.2f}')} |"]
    lines += ["", "Memory (resident set): at start; before and at the peak of a streamed upload; before and "
              "with idle keep-alive connections (each after one request):", "",
              "| system | at start | upload MiB/s | before upload | upload peak | before conns | with idle conns "
              "| per conn |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for system, m in results["memory"].items():
        i, u = m["idle"], m["upload"]
        lines.append(f"| ({system}) {systems[system]} | {m['fresh_kib'] / 1024:.1f} MiB | "
                     f"{u['mib_per_s']:.0f}{'' if u['valid'] else ' (not counted)'} | "
                     f"{u['before_kib'] / 1024:.1f} MiB | {u['peak_kib'] / 1024:.1f} MiB | "
                     f"{i['idle_kib'] / 1024:.1f} MiB | {i['held_kib'] / 1024:.1f} MiB ({i['connections']}) | "
                     f"{i['per_connection_kib']:.1f} KiB |")
    return "\n".join(lines) + "\n"


def svg(results):
    """Three panels: requests/s, p99 and the proxy's CPU per request, per system and connection
    count, medians of counted runs."""
    s, systems, conns = summary(results), list(results["systems"]), results["args"]["connections"]
    width, height, pad, panel_w = 1380, 420, 60, 400
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>']
    panels = [("requests/s", "rps", 0), ("p99 latency, ms", "p99_ms", 1), ("proxy CPU µs per request", "cpu_us", 2)]
    group_w = (panel_w - 20) / len(conns)
    bar_w = group_w / (len(systems) + 1)
    for title, key, index in panels:
        x0, y0, h = pad + index * (panel_w + pad), 40, height - 130
        top = max([med(r[key] for r in runs) or 0 for runs in s.values()] + [1]) * 1.1
        out.append(f'<text x="{x0}" y="25" font-size="14" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + panel_w}" y2="{y0 + h}" stroke="#333"/>')
        for t in range(5):
            v, y = top * t / 4, y0 + h - h * t / 4
            out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" fill="#555">{v:.0f}</text>')
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + panel_w}" y2="{y}" stroke="#eee"/>')
        for ci, c in enumerate(conns):
            gx = x0 + 10 + ci * group_w
            out.append(f'<text x="{gx + group_w / 2 - bar_w / 2}" y="{y0 + h + 16}" text-anchor="middle">'
                       f'{c} conns</text>')
            for si, system in enumerate(systems):
                v = med(r[key] for r in s.get((system, c), []))
                if v is None:
                    continue
                bh = h * v / top
                out.append(f'<rect x="{gx + si * bar_w:.1f}" y="{y0 + h - bh:.1f}" width="{bar_w * 0.9:.1f}" '
                           f'height="{bh:.1f}" fill="{COLOURS[system]}"><title>({system}) {results["systems"][system]}, '
                           f'{c} conns: {v:.2f}</title></rect>')
    for si, system in enumerate(systems):
        x, y = pad + (si % 4) * 300, height - 60 + (si // 4) * 20
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{COLOURS[system]}"/>')
        out.append(f'<text x="{x + 18}" y="{y}">({system}) {results["systems"][system]}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(results, out):
    with open(os.path.join(out, "table.md"), "w") as f:
        m = results["machine"]
        f.write(f"Measured {results['started']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB, "
                f"Linux {m['kernel']}); {m['nginx']}; {m['wrk']}; {m['rustc']}. "
                f"{results['args']['rounds']} interleaved rounds of {results['args']['seconds']} s; "
                f"medians, with the lowest and highest counted run in brackets.\n\n")
        f.write(tables(results))
    with open(os.path.join(out, "plot.svg"), "w") as f:
        f.write(svg(results))
    print(open(os.path.join(out, "table.md")).read())
    print(f"written: {out}/results.json, table.md, plot.svg")


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    write(json.load(open(os.path.join(folder, "results.json"))), folder)
