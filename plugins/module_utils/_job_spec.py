# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""flink_job's own options, and the connection options every module shares.

One definition for the modules and the ``flink_job_params`` filter that the
``flink_jobs`` role checks and builds its module calls with. This file imports
nothing from the collection (so the filter can load it by file path as well, and
the controller does not import the REST client to template a task's arguments).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

DEFAULT_WAIT_TIMEOUT = 120


def connection_argument_spec():
    """The connection options of every module (mirrors doc_fragments/connection.py; a new dict on every call)."""
    return dict(
        url=dict(type='list', elements='str', fallback=(env_fallback, ['FLINK_URL'])),
        validate_certs=dict(type='bool', default=True, fallback=(env_fallback, ['FLINK_VALIDATE_CERTS'])),
        ca_path=dict(type='path', fallback=(env_fallback, ['FLINK_CA_PATH'])),
        client_cert=dict(type='path', fallback=(env_fallback, ['FLINK_CLIENT_CERT'])),
        client_key=dict(type='path', no_log=False, fallback=(env_fallback, ['FLINK_CLIENT_KEY'])),
        url_username=dict(type='str', aliases=['username'], fallback=(env_fallback, ['FLINK_USERNAME'])),
        url_password=dict(type='str', aliases=['password'], no_log=True, fallback=(env_fallback, ['FLINK_PASSWORD'])),
        headers=dict(type='dict', no_log=True),
        request_timeout=dict(type='float', default=10.0),
        wait_timeout=dict(type='int', default=DEFAULT_WAIT_TIMEOUT),
    )


def job_argument_spec():
    """flink_job's options, without the connection options (a new dict on every call)."""
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent', 'upgraded']),
        jar=dict(type='path'),
        sql=dict(type='str'),
        sql_file=dict(type='path'),
        python=dict(type='path'),
        python_module=dict(type='str'),
        entry_class=dict(type='str'),
        args=dict(type='list', elements='str', default=[]),
        secret_args=dict(type='list', elements='str', default=[], no_log=True),
        parallelism=dict(type='int'),
        config=dict(type='dict', default={}),
        restore_from=dict(type='str'),
        upgrade_mode=dict(type='str', default='savepoint', choices=['savepoint', 'last-state', 'stateless']),
        allow_non_restored_state=dict(type='bool', default=False),
        allow_no_rollback=dict(type='bool', default=False),
        savepoint=dict(type='bool', default=False),
        savepoint_dir=dict(type='str'),
        wait=dict(type='bool', default=True),
        healthy_for=dict(type='int', default=10),
        wait_for_checkpoint=dict(type='bool', default=False),
        rollback_timeout=dict(type='int', default=60),
    )


def job_required_if():
    """flink_job's ``required_if`` (a new list on every call): a program to run, a jar or SQL."""
    return [('state', 'present', ['jar', 'sql', 'sql_file', 'python'], True),
            ('state', 'upgraded', ['jar', 'sql', 'sql_file', 'python'], True)]


def job_mutually_exclusive():
    """flink_job's ``mutually_exclusive`` (a new list on every call)."""
    return [['jar', 'sql', 'sql_file', 'python'], ['sql', 'entry_class'], ['sql_file', 'entry_class'],
            ['python', 'entry_class']]


def option_names(spec):
    """Every name an argument spec accepts: its options and their aliases."""
    names = set(spec)
    for option in spec.values():
        names.update(option.get('aliases') or ())
    return names
