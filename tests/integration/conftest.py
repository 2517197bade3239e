"""Fixtures for integration tests on a real Flink cluster on loopback.

The Flink version comes from FLINKOPS_FLINK_VERSION (``make integration`` runs
the suite once per version). The cluster is started once per session by the
harness, which owns its processes by pid and stops exactly those.
"""

import contextlib
import os
import shutil
import socket
import sys
import threading
import time
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.harness.cluster import FlinkCluster, load_state  # noqa: E402
from tests.harness.cluster import _alive as alive  # noqa: E402
from tests.harness import report  # noqa: E402
from tests.harness.jobs import build_jar  # noqa: E402
from tests.integration.ansible_play import Ansible  # noqa: E402

TERMINAL = ('FINISHED', 'CANCELED', 'FAILED')
EXAMPLE_CLASS = 'org.flinkops.examples.StatefulCounter'


# Every range a test asks for lies in PORT_WINDOW. Sessions that run at the same time (``make integration``
# runs one per Flink version) would race for the same free block (probing here and Flink's bind later are not
# atomic), so each one shifts the window by its own FLINKOPS_PORT_OFFSET (offsets at least the window's width
# apart). Shifted, it must stay clear of the molecule scenarios' fixed ports (extensions/molecule/*/molecule.yml)
# and below the kernel's ephemeral ports (Flink's port-0 sockets, nginx, the fault proxy).
PORT_WINDOW = (18000, 21000)
PORT_OFFSET = int(os.environ.get('FLINKOPS_PORT_OFFSET') or 0)
MOLECULE_PORTS = (28000, 29000)


def _ephemeral_low():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(start, end, size):
    """First port p in [start, end) + FLINKOPS_PORT_OFFSET such that p..p+size-1 are all free on 127.0.0.1."""
    top = start + (end - 1 - start) // size * size + size - 1   # the last port a block can use
    if start < PORT_WINDOW[0] or top >= PORT_WINDOW[1]:
        raise ValueError('ports %d-%d: a test\'s ports must lie in %d-%d (see PORT_WINDOW)'
                         % (start, top, PORT_WINDOW[0], PORT_WINDOW[1] - 1))
    start, end, top = start + PORT_OFFSET, end + PORT_OFFSET, top + PORT_OFFSET
    if start < 1024 or top >= _ephemeral_low() or (start < MOLECULE_PORTS[1] and top >= MOLECULE_PORTS[0]):
        raise ValueError('ports %d-%d (FLINKOPS_PORT_OFFSET=%d) are not all in 1024-%d outside the molecule '
                         'ports %d-%d' % (start, top, PORT_OFFSET, _ephemeral_low() - 1, MOLECULE_PORTS[0],
                                          MOLECULE_PORTS[1] - 1))
    for base in range(start, end, size):
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
    raise RuntimeError('no free port block in %d-%d' % (start, end))


@pytest.fixture(scope='session')
def flink_version():
    return os.environ.get('FLINKOPS_FLINK_VERSION', '2.3.0')


@pytest.fixture(scope='session')
def fault_report(flink_version):
    """Records fault cases for the README table (tests/harness/report.py); started afresh per session."""
    report.reset(flink_version)

    def record(fault, operation, runs, duplicates, lost, converge_s, module_runs=None, measured=False):
        report.record(flink_version, fault, operation, runs, duplicates, lost, converge_s, module_runs, measured)
    return record


def local(path):
    """A savepoint location Flink reports (``file:/a``, ``file:///a``) as the path on this host."""
    return path.replace('file://', '').replace('file:', '')


def soak_runs(default=1):
    """Repetitions of each failover case; FLINKOPS_SOAK_RUNS makes the soak longer."""
    return max(1, int(os.environ.get('FLINKOPS_SOAK_RUNS') or default))


@pytest.fixture(scope='session')
def workroot(flink_version):
    path = os.path.join(ROOT, 'build', 'it', flink_version)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope='session')
def cluster(flink_version, workroot):
    port = free_port_block(18100, 18900, 10)
    c = FlinkCluster(flink_version, os.path.join(workroot, 'single-%d' % port), rest_port=port, slots=8)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@contextlib.contextmanager
def fresh_ha_cluster(flink_version, workroot, prefix='ha'):
    """Two JobManagers (ZooKeeper) in ``<workroot>/<prefix>-<port>``, emptied first, stopped on leaving.

    A JobManager recovers whatever ZooKeeper and the HA storage hold, also from an
    earlier session in the same directory (a job result left there by a failed case made
    Flink 2.3's JobManagers die at start: "Application ID is missing in the recovered job result").
    """
    port = free_port_block(18500, 18990, 10)
    workdir = os.path.join(workroot, '%s-%d' % (prefix, port))
    previous = load_state(workdir)
    assert not (previous and any(alive(p) for p in previous['procs'])), 'a cluster in %s still runs' % workdir
    shutil.rmtree(workdir, ignore_errors=True)
    c = FlinkCluster(flink_version, workdir, rest_port=port, ha=True, slots=4)
    c.start(timeout=180)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope='session')
def ha_cluster(flink_version, workroot):
    """One HA cluster for the session (test_ha_failover, test_upgrade_transaction, test_lifecycle): each case
    leaves both JobManagers running and no live job, so the next one starts from the same cluster."""
    with fresh_ha_cluster(flink_version, workroot) as c:
        yield c


@pytest.fixture(scope='session')
def jar(flink_version):
    return str(build_jar(flink_version, 'v1'))


@pytest.fixture(scope='session')
def jar_v2(flink_version):
    return str(build_jar(flink_version, 'v2'))


@pytest.fixture(scope='session')
def ansible(workroot):
    return Ansible(os.path.join(workroot, 'ansible'))


@pytest.fixture
def job_name(request):
    """A fresh job name per test (unicode included, to keep that path honest)."""
    return 'it-%s-%s-zähler' % (request.node.name[:30].replace('[', '-').replace(']', ''), uuid.uuid4().hex[:6])


@pytest.fixture(autouse=True)
def clean_jobs(request):
    """After each test, cancel every live job so slots are free for the next one."""
    yield
    if 'cluster' in request.fixturenames:
        c = request.getfixturevalue('cluster')
        cancel_all_and_wait(c.url)


def live_jobs(url, name=None):
    jobs = requests.get(url + '/jobs/overview', timeout=10).json()['jobs']
    return [j for j in jobs if j['state'] not in TERMINAL and (name is None or j['name'] == name)]


def cancel_all_and_wait(url, timeout=60):
    for j in live_jobs(url):
        requests.patch(url + '/jobs/%s?mode=cancel' % j['jid'], timeout=10)
    end = time.monotonic() + timeout
    while live_jobs(url) and time.monotonic() < end:
        time.sleep(0.3)


def assert_one_instance_one_change(results, watcher, url, name):
    """Concurrent runs of one job: none failed, exactly one acted, all report the same job, one ever ran."""
    for r in results:
        assert not r.failed, r.output
    assert sum(1 for r in results if r['changed']) == 1, [r['action'] for r in results]
    assert len(set(r['job_id'] for r in results)) == 1
    assert watcher.max_live == 1 and watcher.samples > 0
    assert len(live_jobs(url, name)) == 1


class Watcher(object):
    """Polls the cluster in the background and remembers the most live instances of a name it ever saw."""

    def __init__(self, url, name, interval=0.1):
        self.url, self.name, self.interval = url, name, interval
        self.max_live = 0
        self.samples = 0
        self.errors = 0
        self.overlap_s = 0.0   # how long (summed) samples saw two or more live instances
        self._dup_since = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                n = len(live_jobs(self.url, self.name))
                self.max_live = max(self.max_live, n)
                self.samples += 1
                now = time.monotonic()
                if n >= 2 and self._dup_since is None:
                    self._dup_since = now
                elif n < 2 and self._dup_since is not None:
                    self.overlap_s += now - self._dup_since
                    self._dup_since = None
            except (requests.RequestException, ValueError, KeyError):
                self.errors += 1
            self._stop.wait(self.interval)

    def wait_samples(self, count=3, timeout=60):
        """Keep watching until ``count`` more answers came in (a failover may have hidden the cluster so far)."""
        target = self.samples + count
        end = time.monotonic() + timeout
        while self.samples < target and time.monotonic() < end:
            time.sleep(self.interval)
        return self.samples >= target

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self._dup_since is not None:
            self.overlap_s += time.monotonic() - self._dup_since
            self._dup_since = None


@pytest.fixture
def watcher(cluster):
    def make(name):
        return Watcher(cluster.url, name)
    return make
