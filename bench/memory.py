"""bench/run's memory figures (h): each proxy's RSS idle, holding idle keep-alive connections,
and during a streamed upload; the upload's rate too."""

import selectors
import socket
import threading
import time

from procs import rss_kib

# nginx proxy_pass, bare pingora (with each allocator), and the gateway on a public route.
PROXIES = ("b", "d", "m", "e")
REQUEST = b"GET /pub/ HTTP/1.1\r\nHost: localhost\r\n\r\n"


def port_of(bench, system):
    return bench.ports["gw" if system == "e" else system]


def open_idle(port, count):
    """`count` connections that each got one answer and stay open, idle."""
    conns, sel = [], selectors.DefaultSelector()
    for start in range(0, count, 500):
        batch = []
        for _ in range(min(500, count - start)):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(REQUEST)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
            batch.append(s)
        waiting, deadline = set(batch), time.time() + 30
        while waiting and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                s, buf = key.fileobj, key.data
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("a connection was closed before its answer")
                buf += chunk
                if b"\r\n\r\n" in buf and buf.endswith(b"upstream\n"):
                    sel.unregister(s)
                    waiting.discard(s)
        if waiting:
            raise RuntimeError(f"{len(waiting)} connections got no answer within 30 s")
        conns.extend(batch)
    return conns


def idle_figures(bench, system, count):
    proc = bench.servers[system]
    idle = rss_kib(proc)
    conns = open_idle(port_of(bench, system), count)
    time.sleep(1)
    held = rss_kib(proc)
    for s in conns:
        s.close()
    time.sleep(1)
    return {"idle_kib": idle, "connections": count, "held_kib": held,
            "per_connection_kib": (held - idle) / count, "after_close_kib": rss_kib(proc)}


def upload_figures(bench, system, mib):
    proc, port = bench.servers[system], port_of(bench, system)
    before, peak, done = rss_kib(proc), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(proc))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    size, block = mib * 1024 * 1024, bytes(1024 * 1024)
    started = time.time()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /pub/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
                  + f"Content-Length: {size}\r\n\r\n".encode())
        for _ in range(mib):
            s.sendall(block)
        s.settimeout(120)
        answer = b""
        while b"uploaded" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    seconds = time.time() - started
    done.set()
    sampler.join()
    ok = answer.startswith(b"HTTP/1.1 200") and b"uploaded" in answer
    return {"valid": ok, "mib": mib, "seconds": seconds, "mib_per_s": mib / seconds,
            "before_kib": before, "peak_kib": peak[0], "growth_kib": peak[0] - before}


def measure(bench, args):
    figures = {}
    for system in PROXIES:
        upload = upload_figures(bench, system, args.upload_mib)
        idle = idle_figures(bench, system, args.idle_connections)
        figures[system] = {"idle": idle, "upload": upload}
        print(f"h {system}: RSS idle {idle['idle_kib'] / 1024:.1f} MiB, with {idle['connections']} idle "
              f"connections {idle['held_kib'] / 1024:.1f} MiB ({idle['per_connection_kib']:.1f} KiB each); "
              f"upload of {upload['mib']} MiB at {upload['mib_per_s']:.0f} MiB/s, RSS "
              f"{upload['before_kib'] / 1024:.1f} MiB before, {upload['peak_kib'] / 1024:.1f} MiB at the peak{'' if upload['valid'] else '  NOT COUNTED'}", flush=True)
    return figures
