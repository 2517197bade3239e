# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The data model of flink_job: jobs as Flink reports them, and what the user declared."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import threading
import zipfile
from datetime import datetime

from ansible_collections.flinkops.flink.plugins.module_utils._api import FlinkError
from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _python
from ansible_collections.flinkops.flink.plugins.module_utils import _sql
from ansible_collections.flinkops.flink.plugins.module_utils import _sql_runner

TERMINAL_STATES = frozenset(['FINISHED', 'CANCELED', 'FAILED'])
ENDING_STATES = frozenset(['CANCELLING'])
UPGRADE_MODES = ('savepoint', 'last-state', 'stateless')
TASK_STATES = ('created', 'scheduled', 'deploying', 'initializing', 'running', 'finished', 'canceling', 'canceled',
               'failed', 'reconciling')


class InputError(FlinkError):
    """The module's own input is wrong; nothing was sent."""


class PlanError(FlinkError):
    """The observed cluster does not allow a safe decision; nothing was changed."""


# ---------------------------------------------------------------------------
# Jobs as Flink reports them


def _iso(ms):
    if not isinstance(ms, int) or ms <= 0:
        return None
    return datetime.utcfromtimestamp(ms / 1000.0).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def job_view(raw):
    """A stable, documented shape for a job from ``/jobs/overview`` or ``/jobs/<id>``."""
    jid = raw.get('jid') or raw.get('id')
    start = raw.get('start-time')
    end = raw.get('end-time')
    view = {
        'id': jid,
        'name': raw.get('name'),
        'state': raw.get('state'),
        'start_time_ms': start if isinstance(start, int) and start > 0 else None,
        'end_time_ms': end if isinstance(end, int) and end > 0 else None,
        'duration_ms': raw.get('duration'),
        'start_time': _iso(start),
        'end_time': _iso(end),
        'generation': ident.generation_of(jid),
    }
    tasks = raw.get('tasks')
    if isinstance(tasks, dict):
        view['tasks'] = dict((k, v) for k, v in tasks.items() if isinstance(v, int))
    elif isinstance(raw.get('status-counts'), dict):   # GET /jobs/<id>
        counts = dict((k.lower(), v) for k, v in raw['status-counts'].items() if isinstance(v, int))
        counts['total'] = sum(counts.values())
        view['tasks'] = counts
    return view


def is_live(job):
    return job['state'] not in TERMINAL_STATES


def is_ending(job):
    return job['state'] in ENDING_STATES


def health(job):
    """How a live job is doing, from Flink's job status and task counts.

    ``healthy``: RUNNING with every task RUNNING. ``starting``: scheduled or
    deploying (also a RUNNING job whose tasks wait for slots). ``restarting``
    and ``failing``: Flink's own job states. None for ended jobs.
    """
    if job is None or not is_live(job):
        return None
    state = job['state']
    if state == 'RESTARTING':
        return 'restarting'
    if state in ('FAILING', 'CANCELLING'):
        return state.lower()
    if state != 'RUNNING':
        return 'starting'
    tasks = job.get('tasks')
    if not tasks:
        return 'healthy'
    total = tasks.get('total')
    running = tasks.get('running', 0)
    if total is None:
        total = sum(v for k, v in tasks.items() if k != 'total')
    if tasks.get('failed') or tasks.get('canceling'):
        return 'restarting'
    if running + tasks.get('finished', 0) >= total > 0:
        return 'healthy'
    return 'starting'


def describe(jobs):
    return ', '.join('%s (%s, %s)' % (j['id'], j['name'], j['state']) for j in jobs)


# ---------------------------------------------------------------------------
# What the user declared


# SHA-256 of the jars this process has read, by file identity (path, device, inode, size, modification time):
# a set of jobs that share one (often large) jar reads it once.
_JAR_SHAS = {}
_JAR_SHAS_LOCK = threading.Lock()


def check_jar(path):
    """SHA-256 of a readable jar file; InputError names what is wrong with it."""
    if not os.path.exists(path):
        raise InputError('jar %s does not exist on the host the module runs on' % path)
    if not os.path.isfile(path):
        raise InputError('jar %s is not a regular file' % path)
    if not os.access(path, os.R_OK):
        raise InputError('jar %s is not readable' % path)
    try:
        st = os.stat(path)
    except (IOError, OSError) as exc:
        raise InputError('jar %s cannot be read: %s' % (path, exc))
    key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _JAR_SHAS_LOCK:
        known = _JAR_SHAS.get(key)
    if known is not None:
        return known
    try:
        ok = zipfile.is_zipfile(path)
    except (IOError, OSError) as exc:
        raise InputError('jar %s cannot be read: %s' % (path, exc))
    if not ok:
        raise InputError('%s is not a jar file (not a zip archive)' % path)
    sha = ident.sha256_file(path)
    with _JAR_SHAS_LOCK:
        _JAR_SHAS[key] = sha
    return sha


class Version(object):
    """One version of a job that can be submitted: the declared one, or a previous one to roll back to."""

    def __init__(self, name, spec, jar_path=None, jar_name=None, allow_non_restored_state=False, scope=None,
                 program=None):
        self.name = name
        self.spec = spec
        self._jar_path = jar_path
        self._program = program     # a PyFlink program (_python.Program), whose jar is written when it is uploaded
        self.jar_name = jar_name or (os.path.basename(jar_path) if jar_path else None)
        self.allow_non_restored_state = allow_non_restored_state
        self.scope = scope

    @property
    def jar_path(self):
        """The file to upload the jar from, or None. A SQL job's jar is the SQL runner, which every run has (it is
        generated, the same bytes everywhere), so any version of a SQL job can be started again."""
        if self._program is not None:
            return self._program.jar_path()
        if self._jar_path is None and self.spec is not None and self.spec.sql is not None \
                and _sql_runner.is_runner(self.spec.jar_sha256):
            return _sql_runner.jar_path()
        return self._jar_path

    @property
    def jar_sha256(self):
        return self.spec.jar_sha256

    def record(self, restored_from, salt=None):
        return ident.new_record(self.name, self.spec, jar_name=self.jar_name, restored_from=restored_from,
                                salt=salt, scope=self.scope)


class HealthPolicy(object):
    """What "healthy" means for one run: ``healthy_for`` seconds, and optionally a completed checkpoint."""

    def __init__(self, healthy_for=10, wait_for_checkpoint=False):
        self.healthy_for = max(0.0, float(healthy_for or 0))
        self.wait_for_checkpoint = bool(wait_for_checkpoint)


def _restore_choice(restore_from):
    if restore_from is None:
        return None, False
    if str(restore_from).strip().lower() == 'none':
        return None, True
    return str(restore_from).strip(), True


class Desired(object):
    """What the user declared, validated. Raises InputError on bad input; nothing is sent before."""

    def __init__(self, name, state, jar=None, entry_class=None, args=None, secret_args=None, parallelism=None,
                 config=None, restore_from=None, allow_non_restored_state=False, savepoint=False,
                 savepoint_dir=None, wait=True, upgrade_mode='savepoint', allow_no_rollback=False, healthy_for=10,
                 wait_for_checkpoint=False, rollback_timeout=60, wait_timeout=None, scope=None, sql=None,
                 sql_file=None, python=None, python_module=None):
        if name is None or not str(name).strip():
            raise InputError('name must not be empty: it is the job\'s identity')
        if name != name.strip():
            raise InputError('name %r has leading or trailing white space' % name)
        self.name = name
        self.state = state
        if parallelism is not None and int(parallelism) < 1:
            raise InputError('parallelism must be 1 or more, got %s' % parallelism)
        if entry_class is not None and not entry_class.strip():
            raise InputError('entry_class must not be an empty string')
        if restore_from is not None and not str(restore_from).strip():
            raise InputError('restore_from must not be empty (use none to force an empty start)')
        if upgrade_mode not in UPGRADE_MODES:
            raise InputError('upgrade_mode must be one of %s, got %r' % (', '.join(UPGRADE_MODES), upgrade_mode))
        try:
            flat = cfg.normalize_config(config)
        except cfg.ConfigError as exc:
            raise InputError('config: %s' % exc)
        if (ident.SPEC_PARAM in flat.get(ident.GLOBAL_PARAMS_KEY, '')
                or ident.GLOBAL_PARAMS_KEY + '.' + ident.SPEC_PARAM in flat):
            raise InputError('config %s must not set %s: flink_job writes that key itself'
                             % (ident.GLOBAL_PARAMS_KEY, ident.SPEC_PARAM))
        if healthy_for is None or healthy_for < 0:
            raise InputError('healthy_for must be 0 or more seconds, got %s' % healthy_for)
        if rollback_timeout is None or rollback_timeout < 0:
            raise InputError('rollback_timeout must be 0 or more seconds, got %s' % rollback_timeout)
        if state == 'upgraded':
            if not wait:
                raise InputError('state=upgraded needs wait=true: an upgrade is verified (the health gate) and rolled '
                                 'back if the new version is not healthy, which cannot happen after the module '
                                 'returned. Use state=present with wait=false to submit without waiting.')
            if rollback_timeout <= healthy_for:
                raise InputError('rollback_timeout (%s s) must be more than healthy_for (%s s): a rollback is verified '
                                 'by the same health gate within it' % (rollback_timeout, healthy_for))
            if wait_timeout is not None and wait_timeout - rollback_timeout <= healthy_for:
                raise InputError(
                    'wait_timeout (%s s) leaves no time for an upgrade: rollback_timeout (%s s) of it is reserved for '
                    'putting the previous version back, and the new version must then stay healthy for healthy_for '
                    '(%s s). Raise wait_timeout above rollback_timeout + healthy_for plus the time a savepoint and a '
                    'start take.' % (wait_timeout, rollback_timeout, healthy_for))
        if state == 'present' and wait and wait_timeout is not None and wait_timeout <= healthy_for:
            raise InputError('wait_timeout (%s s) must be more than healthy_for (%s s): a submission is reported done '
                             'only after the job stayed healthy that long' % (wait_timeout, healthy_for))
        if scope is not None and (not str(scope).strip() or scope != scope.strip()):
            raise InputError('scope %r must be a non-empty name without leading or trailing white space' % scope)
        self.scope = scope
        self.health = HealthPolicy(healthy_for, wait_for_checkpoint)
        self.rollback_timeout = float(rollback_timeout)
        public, secret = cfg.split_sensitive(flat)
        self.jar = jar
        self.restore_path, self.restore_decided = _restore_choice(restore_from)
        self.restore_from = restore_from
        self.upgrade_mode = upgrade_mode
        self.allow_non_restored_state = bool(allow_non_restored_state)
        self.allow_no_rollback = bool(allow_no_rollback)
        self.savepoint = bool(savepoint)
        self.savepoint_dir = savepoint_dir
        self.wait = bool(wait)
        self.spec = None
        self.sql = None
        if sql is not None and sql_file:
            raise InputError('set sql or sql_file, not both')
        if sql_file:
            try:
                with open(sql_file, 'rb') as f:
                    sql = f.read().decode('utf-8')
            except (IOError, OSError) as exc:
                raise InputError('sql_file %s cannot be read: %s' % (sql_file, exc.strerror or exc))
            except UnicodeDecodeError as exc:
                raise InputError('sql_file %s is not UTF-8 text: %s' % (sql_file, exc))
        programs = [what for what, given in (('jar', jar), ('sql', sql is not None), ('python', python)) if given]
        if len(programs) > 1:
            raise InputError('a job runs one program: a jar, SQL (sql, sql_file) or Python (python); got %s'
                             % ' and '.join(programs))
        if sql is not None and (entry_class or args or secret_args):
            raise InputError('a SQL job takes no entry_class, args or secret_args: its program is the SQL runner, '
                             'and its statements are the sql')
        if python and entry_class:
            raise InputError('a PyFlink job takes no entry_class: Flink\'s PythonDriver runs python_module')
        if python_module and not python:
            raise InputError('python_module needs python, the program it is part of')
        self.program = None
        if python and state in ('present', 'upgraded'):
            try:
                self.program = _python.Program(python, python_module)
            except _python.PythonProgramError as exc:
                raise InputError(str(exc))
        if sql is not None:
            try:
                self.sql = _sql.check_statements(list(sql)) if isinstance(sql, list) else _sql.parse(sql)
            except _sql.SqlError as exc:
                raise InputError('%s: %s' % ('sql_file %s' % sql_file if sql_file else 'sql', exc))
        if state in ('present', 'upgraded'):
            if self.sql is not None:
                self.spec = ident.Spec(_sql_runner.jar_sha256(), _sql_runner.RUNNER_CLASS, None, parallelism, public,
                                       secret_config=secret, sql=self.sql)
            elif self.program is not None:
                self.spec = ident.Spec(self.program.sha256, _python.DRIVER_CLASS,
                                       _python.driver_args(self.program.module, args or []), parallelism, public,
                                       secret_config=secret, secret_args=secret_args)
            else:
                if not jar:
                    raise InputError('a program is required when state=%s: jar, sql (sql_file) or python' % state)
                sha = check_jar(jar)
                self.spec = ident.Spec(sha, entry_class, args, parallelism, public, secret_config=secret,
                                       secret_args=secret_args)

    @property
    def spec_hash(self):
        return self.spec.digest() if self.spec is not None else None

    def job_id(self, generation):
        return ident.job_id(self.name, generation)

    def version(self):
        if self.program is not None:
            return Version(self.name, self.spec, jar_name=self.program.jar_name, program=self.program,
                           allow_non_restored_state=self.allow_non_restored_state, scope=self.scope)
        if self.sql is not None:
            return Version(self.name, self.spec, jar_name=_sql_runner.JAR_NAME,
                           allow_non_restored_state=self.allow_non_restored_state, scope=self.scope)
        return Version(self.name, self.spec, jar_path=self.jar,
                       allow_non_restored_state=self.allow_non_restored_state, scope=self.scope)
