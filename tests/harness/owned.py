"""Commands the tests run (ansible-playbook above all), each in a process group of its own.

ansible-playbook forks workers, and each task runs a module in a process of its own.
When a test is interrupted (Ctrl-C, or a CI timeout's SIGTERM that suites.py turns into
SIGINT) or a command outlives its timeout, stopping only the ansible-playbook pid would
leave those processes behind, still talking to clusters that are being stopped. So each
command leads a new process group, and the group is stopped whole: its id is the pid of
the process the test started, never a name.
"""

import os
import signal
import subprocess
import time


def start(cmd, **kwargs):
    """subprocess.Popen(cmd) as the leader of a new process group (and session)."""
    return subprocess.Popen(cmd, start_new_session=True, **kwargs)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(proc, grace=10):
    """Stop every process of the group ``proc`` leads: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + wait
        while time.monotonic() < end:
            # poll() reaps the leader; a zombie leader would keep the group "alive" for killpg.
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            time.sleep(0.1)
    proc.wait(timeout=10)


def communicate(proc, timeout=None):
    """proc.communicate(), but a timeout or an interrupt stops the whole group before it propagates."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stop(proc)
        exc.stdout, exc.stderr = proc.communicate()
        raise
    except BaseException:
        stop(proc)
        raise


def run(cmd, timeout=None, capture_output=False, **kwargs):
    """subprocess.run(cmd) (never raising for the exit code) with the command in a group of its own."""
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc = start(cmd, **kwargs)
    out, err = communicate(proc, timeout)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
