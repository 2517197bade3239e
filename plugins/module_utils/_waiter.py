# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""One way to wait: poll a read until a predicate holds, within a budget that the caller passes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.flinkops.flink.plugins.module_utils._api import FlinkError

POLL_INTERVAL = 0.5


class WaitTimeout(FlinkError):
    """The predicate did not hold within the budget; ``last`` is the last value read."""

    def __init__(self, msg, last=None):
        super(WaitTimeout, self).__init__(msg)
        self.last = last


def wait_for(read, until, deadline, what, sleep=time.sleep, interval=POLL_INTERVAL):
    """Call ``read()`` until ``until(value)`` is true and return that value.

    ``deadline`` (an ``_api.Deadline``) bounds the wait; when it runs out,
    WaitTimeout says ``what`` was awaited and carries the last value read.
    ``until`` may raise to stop waiting early (a job that failed will not
    become RUNNING).
    """
    while True:
        value = read()
        if until(value):
            return value
        if deadline.expired():
            raise WaitTimeout('%s: not reached within %s' % (what, deadline.describe()), last=value)
        sleep(min(interval, max(deadline.remaining(), 0.01)))
