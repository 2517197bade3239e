"""The harness owns what it starts: a command that outlives its timeout goes with everything it forked.

ansible-playbook forks workers and module processes; tests/harness/owned.py runs it in a
process group of its own and stops that group by its id. Here a shell stands in for it:
it forks a long sleep, and the test reads the sleep's pid to see that it is gone too.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

from tests.harness import owned


def running(pid):
    """True while ``pid`` is a live process (a zombie waiting for a reaper counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ('Z', 'X')


def gone_within(pid, seconds=10):
    end = time.monotonic() + seconds
    while running(pid) and time.monotonic() < end:
        time.sleep(0.1)
    return not running(pid)


FORKS_A_SLEEP = ['sh', '-c', 'sleep 300 & echo $!; wait']


def test_a_timeout_stops_the_command_and_what_it_forked():
    with pytest.raises(subprocess.TimeoutExpired) as exc:
        owned.run(FORKS_A_SLEEP, stdout=subprocess.PIPE, timeout=2)
    child = int(exc.value.stdout.split()[0])
    assert gone_within(child), 'the forked sleep %d outlived the command' % child


def test_sigint_still_reaches_the_tests():
    """Ctrl-C, or the SIGINT suites.py sends on a CI timeout, must still interrupt this pytest.

    It runs after test_ansible_runner.py in the whole suite: ansible_runner.run() replaces the
    handler with one that only cancels its own playbook, and the harness must have put Python's
    back. (SIG_IGN is what a shell without job control gives a background command.)
    """
    assert signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_IGN), \
        'SIGINT is handled by %r: an interrupt would not stop the tests' % signal.getsignal(signal.SIGINT)


def test_an_interrupt_stops_the_command_and_what_it_forked():
    """SIGINT while a test waits for its command: the group goes, then the interrupt goes on."""
    proc = owned.start(FORKS_A_SLEEP, stdout=subprocess.PIPE)
    child = int(proc.stdout.readline())
    assert running(child)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # as under make test
    try:
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            owned.communicate(proc, timeout=30)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert proc.returncode is not None
    assert gone_within(child), 'the forked sleep %d outlived the interrupted command' % child
