# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""One PyFlink program at a time on this host, and no other program next to it.

``/jars/<id>/run`` and ``/jars/<id>/plan`` run a program's ``main()`` inside the
JobManager, after Flink set the request's execution context both for the
request's thread and JVM-wide. A jar's ``main()`` runs on that thread and reads
its own context. A PyFlink program builds its job through the Python gateway's
threads, which read the JVM-wide one: the context of whichever program call came
last. Two program calls at the same moment can so give a PyFlink program another
call's settings, its job id and record included.

Every program call of this collection passes this gate: a PyFlink program alone
(an exclusive ``flock``), any other program next to others (a shared one). There
is one gate per cluster, a lock file in the host's temporary directory named
after the cluster's REST URLs, so the gate holds between the threads of one run
and between runs on one host, and clusters never wait for each other. Runs on
different hosts (or naming the cluster by other URLs) are not covered: the
reconciler checks after each PyFlink submission that the job carries its own
record, and fails loudly when it does not.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import tempfile
import threading
import time
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # pragma: no cover - modules run on POSIX hosts
    fcntl = None

LOCK_PREFIX = 'flinkops.flink-programs-'
POLL_S = 0.2

# When the lock file cannot be opened (another user's file in a sticky directory), the threads of this run still
# take turns.
_LOCAL = threading.Lock()


class GateTimeout(Exception):
    pass


def lock_path(urls):
    """The lock file of the cluster behind ``urls`` (their order does not matter)."""
    key = '\n'.join(sorted(u.rstrip('/') for u in urls))
    digest = hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), '%s%s.lock' % (LOCK_PREFIX, digest))


def _open(path):
    """A descriptor of the lock file (created readable for everyone when missing), or None when it cannot be had."""
    for _attempt in range(3):
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue
            return None
        try:
            os.fchmod(fd, 0o644)
        except OSError:
            pass
        return fd
    return None


@contextmanager
def program_gate(exclusive, remaining, path, sleep=time.sleep):
    """Hold the gate of lock file ``path`` (``lock_path(urls)``), ``exclusive`` for a PyFlink program, while the
    block runs. ``remaining()`` is the time left to wait, in seconds; GateTimeout when it runs out first.
    """
    fd = _open(path) if fcntl is not None else None
    if fd is None:
        if not exclusive:
            yield
            return
        while not _LOCAL.acquire(False):
            if remaining() <= 0:
                raise GateTimeout()
            sleep(POLL_S)
        try:
            yield
        finally:
            _LOCAL.release()
        return
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if remaining() <= 0:
                raise GateTimeout()
            sleep(POLL_S)
        yield
    finally:
        os.close(fd)   # releases the lock
