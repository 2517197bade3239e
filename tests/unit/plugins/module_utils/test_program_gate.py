"""The program gate: a PyFlink program call alone on this host, other program calls side by side.

Threads and processes both hold the gate through their own descriptors of one lock
file, so these tests use threads and a second process. That the gate keeps four
concurrent runs of different PyFlink programs apart on real Flink is shown by
tests/integration/test_python_job.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _program_gate as gate


def forever():
    return 60.0


@pytest.fixture
def lock(tmp_path):
    return str(tmp_path / 'programs.lock')


def overlapping(lock, kinds, hold=0.3):
    """Run one thread per kind (True: exclusive) holding the gate for ``hold`` s; the most inside at once."""
    inside, most, guard = [0], [0], threading.Lock()

    def one(exclusive):
        with gate.program_gate(exclusive, forever, lock):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(hold)
            with guard:
                inside[0] -= 1
    threads = [threading.Thread(target=one, args=(k,)) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return most[0]


def test_shared_holders_go_side_by_side(lock):
    assert overlapping(lock, [False, False, False]) == 3


def test_an_exclusive_holder_is_alone(lock):
    assert overlapping(lock, [True, True, True]) == 1
    assert overlapping(lock, [True, False, False]) in (1, 2)   # the two shared ones may overlap each other
    # never the exclusive one next to another
    events, guard = [], threading.Lock()

    def one(exclusive, name):
        with gate.program_gate(exclusive, forever, lock):
            with guard:
                events.append(('in', name))
            time.sleep(0.2)
            with guard:
                events.append(('out', name))
    threads = [threading.Thread(target=one, args=(i == 0, i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inside = set()
    for what, name in events:
        if what == 'in':
            assert 0 not in inside and (name != 0 or not inside), events
            inside.add(name)
        else:
            inside.discard(name)


def test_the_gate_holds_across_processes_and_times_out(lock):
    holder = subprocess.Popen([sys.executable, '-c', (
        'import fcntl, os, sys, time\n'
        'fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o644)\n'
        'fcntl.flock(fd, fcntl.LOCK_SH)\n'
        'print("held", flush=True)\n'
        'time.sleep(30)\n'), lock], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b'held'
        with gate.program_gate(False, forever, lock):   # shared next to shared
            pass
        end = time.monotonic() + 0.6
        with pytest.raises(gate.GateTimeout):
            with gate.program_gate(True, lambda: end - time.monotonic(), lock):
                pytest.fail('an exclusive holder got in next to another process\'s shared hold')
    finally:
        holder.kill()
        holder.wait()
    with gate.program_gate(True, forever, lock):   # released with the process
        pass


def test_a_lock_file_that_cannot_be_opened_still_serializes_this_runs_pyflink_programs(tmp_path):
    path = str(tmp_path / 'no-such-dir' / 'programs.lock')
    assert gate._open(path) is None
    assert overlapping(path, [True, True]) == 1
    assert overlapping(path, [False, False]) == 2


def test_the_lock_file_is_created_readable_for_every_user(lock):
    with gate.program_gate(False, forever, lock):
        pass
    assert oct(os.stat(lock).st_mode & 0o777) == oct(0o644)


def test_one_gate_per_cluster_whatever_the_order_of_its_urls():
    a = gate.lock_path(['http://jm1:8081', 'http://jm2:8081/'])
    assert a == gate.lock_path(['http://jm2:8081', 'http://jm1:8081'])
    assert a != gate.lock_path(['http://jm1:8081'])
    assert os.path.basename(a).startswith(gate.LOCK_PREFIX) and a.endswith('.lock')
