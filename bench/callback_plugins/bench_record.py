# -*- coding: utf-8 -*-
# Benchmark helper, not part of the collection: it lives under bench/ and is enabled only by bench/_plays.py.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: bench_record
type: aggregate
short_description: Write when each task started and ended, and a few result keys, to a JSON file
description:
  - Enabled by the benchmarks (bench/_plays.py) through ANSIBLE_CALLBACKS_ENABLED, next to the default stdout
    callback, so a measured play has no extra task. The file named by BENCH_RECORD_FILE gets, at the end of the
    run, the wall clock (time.time) of the playbook's start and of each task's start and end, and per task (and
    loop item) changed, failed, msg and, for flink_job/flink_job_set, action and per-job actions.
requirements:
  - BENCH_RECORD_FILE in the environment
'''

import json
import os
import time

from ansible.plugins.callback import CallbackBase

KEEP = ('changed', 'failed', 'msg', 'action', 'job_id', 'rc', 'status', 'skipped', 'unreachable')


def _summary(result):
    out = dict((k, result[k]) for k in KEEP if k in result)
    if isinstance(result.get('msg'), str):
        out['msg'] = result['msg'][:2000]
    jobs = result.get('jobs')
    if isinstance(jobs, list):
        out['jobs'] = [dict((k, j.get(k)) for k in ('name', 'action', 'changed', 'failed', 'msg') if k in j)
                       for j in jobs if isinstance(j, dict)]
    if 'warnings' in result:
        out['warnings'] = [str(w)[:500] for w in result['warnings'] or []]
    return out


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_record'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('BENCH_RECORD_FILE')
        self._data = {'playbook_start': time.time(), 'tasks': []}
        self._task = None

    def v2_playbook_on_start(self, playbook):
        self._data['playbook_start'] = time.time()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task = {'name': task.get_name(), 'action': task.action, 'start': time.time(), 'end': None,
                      'results': [], 'items': []}
        self._data['tasks'].append(self._task)

    def _done(self, result, status):
        if self._task is None:
            return
        self._task['end'] = time.time()
        summary = _summary(result._result)
        summary['status'] = status
        self._task['results'].append(summary)

    def _item(self, result, status):
        if self._task is None:
            return
        summary = _summary(result._result)
        summary['status'] = status
        summary['at'] = time.time()
        self._task['items'].append(summary)

    def v2_runner_on_ok(self, result):
        self._done(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._done(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._done(result, 'unreachable')

    def v2_runner_item_on_ok(self, result):
        self._item(result, 'ok')

    def v2_runner_item_on_failed(self, result):
        self._item(result, 'failed')

    def v2_runner_item_on_skipped(self, result):
        self._item(result, 'skipped')

    def v2_playbook_on_stats(self, stats):
        self._data['end'] = time.time()
        if self._path:
            tmp = self._path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(self._data, f)
            os.rename(tmp, self._path)
