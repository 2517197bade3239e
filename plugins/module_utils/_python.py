# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""PyFlink jobs: the program, packed into the jar that is uploaded, and how Flink's PythonDriver runs it.

A PyFlink job is submitted like any jar job, through ``POST /jars/<id>/run``
with the job id flinkops.flink chose. The uploaded jar holds the Python program
(the entry script, or a directory of modules), packed here from the files on
the host where the module runs; the entry class is Flink's
``org.apache.flink.client.python.PythonDriver``, which Flink puts on the class
path from the JobManager's ``opt/`` for that entry class. PythonDriver gets

    -pyfs <the uploaded jar, as a path on the JobManager> -pym <module> <args>

and starts ``python.client.executable`` with the jar on ``PYTHONPATH``: Python
imports the program from the jar as from any zip. So the program needs no
copy on the JobManager host, its content is the jar's SHA-256 (an edit of any
file is a new version, upgraded through a savepoint like a new jar), and a
rollback uploads nothing the cluster does not already hold.

The path of the uploaded jar is where Flink keeps uploads,
``<web.upload.dir, else web.tmpdir>/flink-web-upload/<jar id>``, read from
``GET /jobmanager/config`` when the job is submitted; it is not part of the
spec (it changes with every JobManager start).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import hashlib
import os
import re
import shutil
import tempfile
import threading

from ansible_collections.flinkops.flink.plugins.module_utils._sql_runner import build_jar

DRIVER_CLASS = 'org.apache.flink.client.python.PythonDriver'
# Stands for the uploaded jar's path on the JobManager in a spec's program arguments; replaced when submitted.
JAR_PATH = '{flinkops.uploaded-jar-path}'
_MODULE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$')
_SKIP_DIRS = frozenset(['__pycache__', '.git', '.hg', '.svn', '.tox', '.venv', '.mypy_cache', '.pytest_cache'])


class PythonProgramError(ValueError):
    pass


def _files_of(path):
    """(path in the jar, absolute path) of every file of the program, sorted."""
    if os.path.isfile(path):
        return [(os.path.basename(path), path)]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in files:
            if name.endswith(('.pyc', '.pyo')):
                continue
            full = os.path.join(root, name)
            found.append((os.path.relpath(full, path).replace(os.sep, '/'), full))
    return sorted(found)


def entry_module(path, module=None):
    """The module PythonDriver runs (``-pym``): ``module``, or the entry script's name."""
    if os.path.isfile(path):
        if not path.endswith('.py'):
            raise PythonProgramError('python %s is not a .py file (give the entry script, or a directory with '
                                     'python_module)' % path)
        stem = os.path.basename(path)[:-3]
        if module not in (None, stem):
            raise PythonProgramError('python_module %r does not name the script %s (its module is %r); leave '
                                     'python_module out for a single script' % (module, path, stem))
        if not _MODULE.match(stem):
            raise PythonProgramError('python %s: %r is not a Python module name, so Python cannot run it as one; '
                                     'rename the script' % (path, stem))
        return stem
    if not module:
        raise PythonProgramError('python %s is a directory: python_module must name the module to run (for example '
                                 'etl.main)' % path)
    if not _MODULE.match(module):
        raise PythonProgramError('python_module %r is not a dotted Python module name' % module)
    base = os.path.join(path, *module.split('.'))
    if not (os.path.isfile(base + '.py') or os.path.isfile(os.path.join(base, '__main__.py'))):
        raise PythonProgramError('python_module %s is not in %s: neither %s.py nor %s/__main__.py exists'
                                 % (module, path, os.path.relpath(base, path), os.path.relpath(base, path)))
    return module


class Program(object):
    """A PyFlink program read from the module's host: its jar (bytes, SHA-256) and its entry module."""

    def __init__(self, path, module=None):
        if not path or not os.path.exists(path):
            raise PythonProgramError('python %s does not exist on the host where the module runs' % path)
        self.path = path
        self.module = entry_module(path, module)
        files = []
        for arcname, full in _files_of(path):
            try:
                with open(full, 'rb') as f:
                    files.append((arcname, f.read()))
            except (IOError, OSError) as exc:
                raise PythonProgramError('python: %s cannot be read: %s' % (full, exc.strerror or exc))
        if not any(name.endswith('.py') for name, _data in files):
            raise PythonProgramError('python %s holds no .py file' % path)
        self.files = [name for name, _data in files]
        self.jar = build_jar(files)
        self.sha256 = hashlib.sha256(self.jar).hexdigest()
        self.jar_name = 'pyflink-%s.jar' % (os.path.basename(os.path.normpath(path)).rsplit('.py', 1)[0] or 'program')
        self._path = None
        self._lock = threading.Lock()

    def jar_path(self):
        """The program jar as a file to upload, written once into a temporary directory removed at exit."""
        with self._lock:
            if self._path is None:
                work = tempfile.mkdtemp(prefix='flinkops-pyflink-')
                atexit.register(shutil.rmtree, work, True)
                self._path = os.path.join(work, self.jar_name)
                with open(self._path, 'wb') as f:
                    f.write(self.jar)
            return self._path


def driver_args(module, args):
    """PythonDriver's arguments in a spec: the jar's path stays a placeholder until the job is submitted."""
    return ['-pyfs', JAR_PATH, '-pym', module] + list(args)


def upload_dir(cluster_config):
    """Where the JobManager keeps uploaded jars, from its configuration (``GET /jobmanager/config``), or None."""
    base = cluster_config.get('web.upload.dir') or cluster_config.get('web.tmpdir')
    if not base:
        return None
    return str(base).rstrip('/') + '/flink-web-upload'


def resolve(program_args, jar_id, cluster_config):
    """``program_args`` with the placeholder replaced by the path of jar ``jar_id`` on the JobManager.

    Raises PythonProgramError when the JobManager's configuration does not tell where uploads are kept."""
    if JAR_PATH not in program_args:
        return program_args
    where = upload_dir(cluster_config)
    if where is None:
        raise PythonProgramError('the JobManager\'s configuration (GET /jobmanager/config) names neither '
                                 'web.upload.dir nor web.tmpdir, so the path of the uploaded program is not known')
    return [where + '/' + jar_id if a == JAR_PATH else a for a in program_args]


_LOGGED = re.compile(r'PythonDriver\s+\[[^\]]*\]\s+-\s?(.*)$')


def last_traceback(log_text, jar_id=None):
    """The last Python traceback PythonDriver logged (it logs the program's output line by line), preferring one
    that runs from the jar ``jar_id``: its last frame and the exception, as one line; None when there is none."""
    blocks = []
    current = None
    for line in log_text.splitlines():
        m = _LOGGED.search(line)
        if not m:
            continue
        text = m.group(1)
        if text.startswith('Traceback (most recent call last)'):
            current = []
            blocks.append(current)
        elif current is not None:
            current.append(text)
    if not blocks:
        return None
    # PythonDriver links the jar under its id without ".jar"; the traceback's paths run through that link.
    key = jar_id[:-4] if jar_id and jar_id.endswith('.jar') else jar_id
    mine = [b for b in blocks if key and any(key in x for x in b)]
    block = (mine or blocks)[-1]
    frames = []
    exception = None
    for text in block:          # frames (indented), then the exception; what PythonDriver logs after it is not
        if text.startswith(' '):
            if text.strip().startswith('File '):
                frames.append(text.strip())
        elif text.strip():
            exception = text.strip()
            break
    if exception is None:
        return None
    if key:
        frames = [f.replace(key, '<program>') for f in frames]
    return '%s (%s)' % (exception, frames[-1]) if frames else exception
