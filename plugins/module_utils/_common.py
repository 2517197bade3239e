# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""What every module shares: the connection options (defined in _job_spec), the client, the error handling."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.flinkops.flink.plugins.module_utils._api import (
    Deadline,
    FlinkClient,
    FlinkError,
)
# Re-exported: every module takes its connection options from here, with the client built from them.
from ansible_collections.flinkops.flink.plugins.module_utils._job_spec import connection_argument_spec  # noqa: F401 pylint: disable=unused-import
from ansible_collections.flinkops.flink.plugins.module_utils._config import (
    ConfigError,
    flatten,
    is_sensitive,
    render_value,
)


def hide_sensitive_values(module, config):
    """Mask values under Flink's sensitive keys in everything the module prints (invocation, result, diff)."""
    try:
        flat = flatten(config or {})
    except ConfigError:
        return  # reported with a clear message when the declaration is validated
    for key, value in flat.items():
        if value not in (None, '') and is_sensitive(key):
            module.no_log_values.add(str(value))
            if not isinstance(value, (str, bytes)):
                module.no_log_values.add(render_value(key, value))


def client_from_module(module, timeout=None, session=None):
    """A FlinkClient configured from the module's connection options, with a budget of ``timeout`` seconds
    (default: wait_timeout). flink_job_set calls it once per job, so every job gets its own budget; they share
    one ``session`` (``_http.Session``, safe for threads), whose kept-alive connections serve them all."""
    p = module.params
    if not p.get('url'):
        module.fail_json(msg='No Flink URL given: set the url option or the FLINK_URL environment variable.')
    if p['wait_timeout'] < 0:
        module.fail_json(msg='wait_timeout must be 0 or more, got %d' % p['wait_timeout'])
    if p['request_timeout'] <= 0:
        module.fail_json(msg='request_timeout must be more than 0, got %s' % p['request_timeout'])
    try:
        return FlinkClient(
            urls=p['url'],
            deadline=Deadline(p['wait_timeout'] if timeout is None else timeout),
            validate_certs=p['validate_certs'],
            ca_path=p.get('ca_path'),
            client_cert=p.get('client_cert'),
            client_key=p.get('client_key'),
            username=p.get('url_username'),
            password=p.get('url_password'),
            headers=p.get('headers'),
            request_timeout=p['request_timeout'],
            session=session,
        )
    except FlinkError as exc:
        module.fail_json(msg=exc.msg)


def run_module(module, func):
    """Call ``func()`` and turn every failure into ``fail_json`` with a clear ``msg``.

    Known failures (FlinkError) carry a message written for the user. Anything else
    is a bug in the collection: report it with the exception text, never a bare
    traceback as the message.
    """
    try:
        return func()
    except FlinkError as exc:
        extra = dict(getattr(exc, 'result', None) or {})
        if exc.status is not None:
            extra['status'] = exc.status
        module.fail_json(msg=exc.msg, **extra)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='Unexpected error in flinkops.flink (please report it): %s: %s'
                         % (type(exc).__name__, exc), exception=traceback.format_exc())
