"""Loopback ports for benchmarks: 17000-17999, clear of the test suite's windows.

The integration suite takes 18000-21000 (shifted per stream by FLINKOPS_PORT_OFFSET), ``make matrix`` runs up to
32000, the molecule scenarios use 28xxx and ``make demo`` 8081; a benchmark can then run while any of those does.
"""

import socket

BENCH_PORTS = (17000, 18000)


def free_port_block(size=10, start=BENCH_PORTS[0], end=BENCH_PORTS[1]):
    """First port p in [start, end) such that p..p+size-1 are all free on 127.0.0.1."""
    if start < BENCH_PORTS[0] or end > BENCH_PORTS[1]:
        raise ValueError('benchmark ports must lie in %d-%d' % (BENCH_PORTS[0], BENCH_PORTS[1] - 1))
    for base in range(start, end - size + 1, size):
        ok = True
        for p in range(base, base + size):
            with socket.socket() as s:
                try:
                    s.bind(('127.0.0.1', p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError('no free block of %d ports in %d-%d' % (size, start, end - 1))
