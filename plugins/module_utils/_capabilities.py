# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""What each Flink line's REST API can do: the one place where Flink versions differ.

Every module reads the cluster's version once per run (``GET /config``,
``flink-version``) before it does anything else, and gets a ``Capabilities``
from ``for_version``. A version older than ``MIN_SUPPORTED`` is refused there,
before any other request, with a message naming the supported lines. Code
elsewhere asks a capability (``caps.checkpoint_dir_keys``), never a version.

The rows (each checked against a real cluster of every line by the life-cycle
suite, tests/integration/test_lifecycle.py):

``checkpoint_dir_keys`` / ``savepoint_dir_keys``
    The configuration keys of the default checkpoint and savepoint directories,
    newest name first. Flink 1.20 added ``execution.checkpointing.dir`` and
    ``execution.checkpointing.savepoint-dir``; 2.0 removed the ``state.*`` names
    from its documentation but still reads them. Run requests set every key the
    line reads; messages name the line's own key.

``pyflink_jobs``
    Whether a PyFlink job can be submitted through ``/jars/<id>/run`` the way
    this collection does (``PythonDriver -pyfs <jar> -pym <module>``). Flink
    1.20 taught PythonDriver ``-pyfs``; before it, PythonDriver cannot parse
    those arguments and calls ``System.exit`` inside the JobManager, which ends
    the JobManager's process (seen on 1.19.3). So below 1.20 a PyFlink job is
    refused before anything is uploaded (``pyflink_refusal``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The oldest line this collection runs on, and the lines it is tested on (README, "Supported versions").
MIN_SUPPORTED = (1, 18)
TESTED_LINES = ('1.18', '1.19', '1.20', '2.0', '2.1', '2.2', '2.3')
SUPPORTED_TEXT = 'Flink 1.18 to 2.3 (tested on %s)' % ', '.join(TESTED_LINES)


class UnsupportedVersion(Exception):
    """The cluster runs a Flink version this collection does not support."""


def version_tuple(version):
    """``'1.20.3'`` -> ``(1, 20, 3)``; non-numeric pieces end the tuple (``'2.3-SNAPSHOT'`` -> ``(2, 3)``)."""
    out = []
    for piece in str(version or '').split('.'):
        digits = ''
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(out)


class Capabilities(object):
    """What one Flink version's REST API does differently; built by ``for_version``."""

    def __init__(self, version):
        self.version = str(version)
        self.line = version_tuple(version)[:2]
        line = self.line
        if line >= (1, 20):
            self.checkpoint_dir_keys = ('execution.checkpointing.dir', 'state.checkpoints.dir')
            self.savepoint_dir_keys = ('execution.checkpointing.savepoint-dir', 'state.savepoints.dir')
        else:
            self.checkpoint_dir_keys = ('state.checkpoints.dir',)
            self.savepoint_dir_keys = ('state.savepoints.dir',)
        self.pyflink_jobs = line >= (1, 20)

    def pyflink_refusal(self, name, where=None):
        """Why job ``name``, a PyFlink program, cannot run on this line (None when it can)."""
        if self.pyflink_jobs:
            return None
        at = ' at %s' % where if where else ''
        return ('Job %r is a PyFlink program, and the cluster%s runs Flink %s: flinkops.flink runs PyFlink jobs on '
                'Flink 1.20 and later. Before 1.20, Flink\'s PythonDriver does not take the program\'s files from '
                'a jar submission (-pyfs), and when it cannot parse its arguments it ends the JobManager\'s process. '
                'Upgrade the cluster to Flink 1.20 or later, or run the program as a jar or SQL job. '
                'Nothing was changed.' % (name, at, self.version))

    @property
    def savepoint_dir_key(self):
        return self.savepoint_dir_keys[0]

    @property
    def checkpoint_dir_key(self):
        return self.checkpoint_dir_keys[0]


def for_version(version, where=None):
    """The ``Capabilities`` of ``version`` (``flink-version`` from ``GET /config``).

    Raises ``UnsupportedVersion`` for a version older than ``MIN_SUPPORTED`` or one
    that cannot be read, with a message that names the supported lines.
    """
    at = ' at %s' % where if where else ''
    parsed = version_tuple(version)
    if len(parsed) < 2:
        raise UnsupportedVersion(
            'Could not tell which Flink version answers%s: GET /config gave flink-version %r. flinkops.flink '
            'supports %s; is url a Flink REST endpoint? Nothing was changed.' % (at, version, SUPPORTED_TEXT))
    if parsed[:2] < MIN_SUPPORTED:
        raise UnsupportedVersion(
            'The Flink cluster%s runs Flink %s, which flinkops.flink does not support: it supports %s. '
            'Upgrade the cluster, or use a tool that supports Flink %s. Nothing was changed.'
            % (at, version, SUPPORTED_TEXT, '.'.join(str(p) for p in parsed[:2])))
    return Capabilities(version)
