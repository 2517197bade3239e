# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The health gate: evidence that a started job really works, before anything is reported done.

Flink calls a job RUNNING as soon as scheduling starts, before its tasks are
deployed and have read their state. The gate reads Flink's own signals:

* the job status and its task counts from ``GET /jobs/overview`` (not cached),
  polled every ``POLL_INTERVAL``: every task RUNNING starts the window; a task
  that leaves RUNNING, or the job going RESTARTING/FAILING or ending, fails the
  gate at once;
* the exception history, ``GET /jobs/<id>/exceptions``: every failure of the
  instance (each restart) adds an entry; any entry fails the gate. Flink caches
  this answer for about 3 s (``web.refresh-interval``);
* with ``wait_for_checkpoint``, the checkpoint statistics,
  ``GET /jobs/<id>/checkpoints``: the gate also waits for the first checkpoint
  the instance completes (proof that the state was read and sinks commit).

The job passes when it stayed healthy for ``healthy_for`` seconds with no
failure recorded (and, if asked, completed a checkpoint), within the deadline
it is given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.flinkops.flink.plugins.module_utils._api import FlinkError, root_cause
from ansible_collections.flinkops.flink.plugins.module_utils import _model
from ansible_collections.flinkops.flink.plugins.module_utils._model import TERMINAL_STATES, health
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL

SIGNALS = ('job status and task counts (GET /jobs/overview)', 'exception history (GET /jobs/<id>/exceptions)')
CHECKPOINT_SIGNAL = 'checkpoint statistics (GET /jobs/<id>/checkpoints)'
# How often the (cached) exception history is read while the window runs.
EXCEPTIONS_EVERY_S = 2.0
# Flink reports a disabled periodic checkpoint interval as Long.MAX_VALUE.
CHECKPOINTING_DISABLED = 0x7fffffffffffffff


class NotHealthy(FlinkError):
    """A started job failed the gate; ``result`` is the module result (the job id, its health evidence)."""

    def __init__(self, msg, result):
        super(NotHealthy, self).__init__(msg)
        self.result = result


HealthPolicy = _model.HealthPolicy   # declared with the rest of what the user asks for (``_model``)


class Verdict(object):
    """The gate's answer: ``ok``, a one-line ``reason`` when not, and the ``evidence`` the module returns."""

    def __init__(self, ok, reason, evidence, view=None):
        self.ok = ok
        self.reason = reason
        self.evidence = evidence
        self.view = view


def _describe_failure(entry):
    text = entry.get('stacktrace') or entry.get('exceptionName') or ''
    return root_cause({'errors': [text]}) or entry.get('exceptionName') or 'unknown failure'


def _tasks(view):
    return dict((view or {}).get('tasks') or {})


class HealthGate(object):
    """Verifies one job instance against a HealthPolicy through the service layer (``_service.FlinkJobs``)."""

    def __init__(self, api, policy, sleep=time.sleep):
        self.api = api
        self.policy = policy
        self._sleep = sleep

    def _view(self, jid):
        for view in self.api.overview():
            if view['id'] == jid:
                return view
        return self.api.job(jid)

    def verify(self, jid, deadline, policy=None):
        """Poll ``jid`` until it passes or fails the gate, or ``deadline`` runs out. Returns a Verdict."""
        policy = policy or self.policy
        signals = list(SIGNALS) + ([CHECKPOINT_SIGNAL] if policy.wait_for_checkpoint else [])
        evidence = {'job_id': jid, 'healthy': False, 'healthy_for': policy.healthy_for,
                    'wait_for_checkpoint': policy.wait_for_checkpoint, 'healthy_s': 0.0, 'failures': 0,
                    'checkpoint_id': None, 'state': None, 'tasks': {}, 'signals': signals}
        since = None
        exceptions_read_at = None
        checkpointing_checked = False
        window_checked = False
        view = None

        def fail(reason):
            evidence['reason'] = reason
            return Verdict(False, reason, evidence, view)

        while True:
            now = deadline.now()
            view = self._view(jid)
            if view is not None:
                evidence['state'] = view['state']
                evidence['tasks'] = _tasks(view)
            state = view['state'] if view else None
            if state in TERMINAL_STATES:
                cause = self.api.failure_cause(jid)
                return fail('it ended as %s%s' % (state, ': %s' % cause if cause else ''))
            verdict = health(view) if view else None
            if verdict in ('restarting', 'failing', 'cancelling'):
                entries = self.api.exceptions(jid)
                evidence['failures'] = len(entries)
                cause = _describe_failure(entries[0]) if entries else None
                return fail('it is %s (Flink state %s)%s' % (verdict, state, ': %s' % cause if cause else ''))
            if verdict == 'healthy':
                if since is None:
                    since = now
            elif since is not None:
                # Tasks left RUNNING after all of them ran: a restart (or a lost TaskManager).
                return fail('its tasks left RUNNING after %.1f s (tasks: %s)' % (now - since, _tasks(view)))
            window_done = since is not None and now - since >= policy.healthy_for
            if since is not None and (exceptions_read_at is None or now - exceptions_read_at >= EXCEPTIONS_EVERY_S
                                      or (window_done and not window_checked)):
                window_checked = window_done
                entries = self.api.exceptions(jid)
                exceptions_read_at = now
                if entries:
                    evidence['failures'] = len(entries)
                    return fail('it failed %d time(s) since it started; latest: %s'
                                % (len(entries), _describe_failure(entries[0])))
            if since is not None:
                evidence['healthy_s'] = round(now - since, 1)
            if since is not None and now - since >= policy.healthy_for:
                if not policy.wait_for_checkpoint:
                    evidence['healthy'] = True
                    return Verdict(True, None, evidence, view)
                if not checkpointing_checked:
                    checkpointing_checked = True
                    conf = self.api.checkpoint_config(jid) or {}
                    if conf.get('interval') in (CHECKPOINTING_DISABLED, None, 0) and 'interval' in conf:
                        return fail('wait_for_checkpoint is set, but checkpointing is disabled for the job')
                stats = self.api.checkpoints(jid) or {}
                completed = (stats.get('counts') or {}).get('completed') or 0
                latest = (stats.get('latest') or {}).get('completed') or {}
                if completed > 0 and latest:
                    evidence['checkpoint_id'] = latest.get('id')
                    evidence['healthy'] = True
                    return Verdict(True, None, evidence, view)
            if deadline.expired():
                if since is None:
                    return fail('its tasks were not all RUNNING within %s (state %s, tasks: %s)'
                                % (deadline.describe(), state or 'unknown', _tasks(view)))
                if policy.wait_for_checkpoint and now - since >= policy.healthy_for:
                    return fail('it completed no checkpoint within %s' % deadline.describe())
                return fail('it was healthy for %.1f s only, not the %.0f s of healthy_for, within %s'
                            % (now - since, policy.healthy_for, deadline.describe()))
            self._sleep(min(POLL_INTERVAL, max(deadline.remaining(), 0.01)))
