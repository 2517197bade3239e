# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: flink_job_params
short_description: The parameters of a P(flinkops.flink.flink_job#module) call for a job of the flink_jobs role
version_added: 0.1.0
description:
  - Merges O(defaults) into a job recursively (dictionaries merge at every level and the job's values win; lists and
    all other values are replaced, never appended), adds the connection options and the URL, and returns the
    parameters for P(flinkops.flink.flink_job#module).
  - A job takes exactly P(flinkops.flink.flink_job#module)'s own options (C(name) is required), and C(wait_timeout).
    O(connection) takes the connection options except C(url). Any other key fails with an error that names the job,
    the unknown keys and the accepted options. Values are never part of an error message.
  - A job of C(state=present) or C(state=upgraded) without C(jar) fails here as well, as the module would.
  - Given a list of jobs, it checks every job and that no name is used twice, and returns a list of parameters.
  - The accepted options come from the module's own argument spec, so they cannot drift apart.
  - Without O(connection) and O(url), the parameters of a list of jobs are the items of
    P(flinkops.flink.flink_job_set#module)'s C(jobs) option (the flink_jobs role declares its list that way).
author:
  - flinkops maintainers (@flinkops)
options:
  _input:
    description: A job (a dictionary of P(flinkops.flink.flink_job#module) options), or a list of jobs.
    type: raw
    required: true
  defaults:
    description: Options merged into the job; the job's own values win.
    type: dict
    default: {}
  connection:
    description: Connection options of P(flinkops.flink.flink_job#module) except C(url), for example C(ca_path).
    type: dict
    default: {}
  url:
    description: The module's C(url), one URL or a list; left out when empty (the module then reads E(FLINK_URL)).
    type: raw
'''

EXAMPLES = r'''
- name: One job's parameters
  ansible.builtin.debug:
    msg: "{{ {'name': 'etl', 'config': {'a': 1}} | flinkops.flink.flink_job_params(defaults={'config': {'b': 2}}) }}"
  # {"name": "etl", "config": {"b": 2, "a": 1}}
'''

RETURN = r'''
_value:
  description: The parameters of P(flinkops.flink.flink_job#module), or a list of them for a list of jobs.
  type: raw
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

try:
    from ansible_collections.flinkops.flink.plugins.module_utils import _job_spec
except ImportError:
    # Loaded by file path (the way the test harness loads flink_config.py): take the module_utils file next to
    # this one, so there is still one implementation (_job_spec imports nothing of the collection).
    import importlib.util
    import os

    def _load(name):
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'module_utils', name + '.py')
        spec = importlib.util.spec_from_file_location('flinkops_flink_module_utils' + name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    _job_spec = _load('_job_spec')

# A job's own time budget. It is a connection option of every module, and each job may set its own.
JOB_CONNECTION_OPTIONS = ('wait_timeout',)


def job_options():
    """The keys a job (and the defaults) may carry: flink_job's own options and their aliases, and wait_timeout."""
    names = _job_spec.option_names(_job_spec.job_argument_spec())
    connection = _job_spec.connection_argument_spec()
    names.update(o for o in JOB_CONNECTION_OPTIONS if o in connection)
    return names


def connection_options():
    """The keys the connection options may carry: flink_job's connection options and their aliases, except url."""
    spec = _job_spec.connection_argument_spec()
    spec.pop('url', None)
    return _job_spec.option_names(spec)


def _plain(value):
    """A copy with plain dicts and lists, so that nothing of the caller's data is shared or changed."""
    if isinstance(value, Mapping):
        return dict((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def merge(base, override):
    """``base`` with ``override`` merged in: dicts merge at every level, override wins, lists are replaced."""
    result = _plain(base)
    for key, value in override.items():
        if isinstance(result.get(key), dict) and isinstance(value, Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = _plain(value)
    return result


def _listed(names):
    return ', '.join(sorted(str(n) for n in names))


def _dict(value, what):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AnsibleFilterError('flink_job_params: %s must be a dictionary, got %s' % (what, type(value).__name__))
    return value


def _label(job, index):
    name = job.get('name') if isinstance(job, Mapping) else None
    where = '' if index is None else ' (list item %d)' % index
    if name in (None, ''):
        return 'the job%s' % where
    return "job '%s'%s" % (name, where)


def _job_problems(job, defaults, index=None):
    """What is wrong with one job, as messages that name the job and keys, never values."""
    label = _label(job, index)
    if not isinstance(job, Mapping):
        return ['%s is a %s, not a dictionary of flink_job options' % (label, type(job).__name__)], None
    problems = []
    accepted = job_options()
    unknown = set(job) - accepted
    if unknown:
        problems.append('%s has unknown option(s) %s; a job takes flink_job\'s options %s'
                        % (label, _listed(unknown), _listed(accepted)))
    if job.get('name') in (None, ''):
        problems.append('%s has no name; every job needs one' % label)
    if problems:
        return problems, None
    params = merge(defaults, job)
    spec = _job_spec.job_argument_spec()
    for rule in _job_spec.job_required_if():
        key, value, required = rule[:3]
        any_of = len(rule) > 3 and rule[3]
        if params.get(key, spec[key].get('default')) == value:
            missing = [r for r in required if params.get(r) is None]
            if missing and (not any_of or len(missing) == len(required)):
                needs = ('one of ' if any_of else '') + _listed(missing)
                problems.append('%s with %s=%s needs %s' % (label, key, value, needs))
    for group in _job_spec.job_mutually_exclusive():
        given = [k for k in group if params.get(k) not in (None, '', [])]
        if len(given) > 1:
            problems.append('%s sets %s, which exclude each other' % (label, _listed(given)))
    return problems, params


def _check_common(defaults, connection):
    problems = []
    if 'name' in defaults:
        problems.append('the defaults cannot set name; every job sets its own')
    unknown = set(defaults) - job_options()
    if unknown:
        problems.append("the defaults have unknown option(s) %s; they take flink_job's options %s"
                        % (_listed(unknown), _listed(job_options() - set(['name']))))
    if 'url' in connection:
        problems.append('the connection options cannot set url; pass it as url (the role\'s flink_jobs_url)')
    unknown = set(connection) - connection_options() - set(['url'])
    if unknown:
        problems.append("the connection options have unknown key(s) %s; flink_job's connection options are %s"
                        % (_listed(unknown), _listed(connection_options())))
    return problems


def _fail(problems):
    raise AnsibleFilterError('flink_job_params: ' + '; '.join(problems) + '.')


def flink_job_params(data, defaults=None, connection=None, url=None):
    """flink_job's parameters for a job (or a list of parameters for a list of jobs); see DOCUMENTATION."""
    defaults = _dict(defaults, 'defaults')
    connection = _dict(connection, 'connection')
    problems = _check_common(defaults, connection)

    base = {}
    if url not in (None, '', []):
        base['url'] = _plain(url)
    base.update(_plain(connection))

    if isinstance(data, Mapping):
        job_problems, params = _job_problems(data, defaults)
        problems.extend(job_problems)
        if problems:
            _fail(problems)
        return merge(base, params)

    if not isinstance(data, (list, tuple)):
        raise AnsibleFilterError('flink_job_params: expects a job (a dictionary) or a list of jobs, got %s'
                                 % type(data).__name__)
    result = []
    seen = {}
    for index, job in enumerate(data):
        job_problems, params = _job_problems(job, defaults, index)
        problems.extend(job_problems)
        if params is not None:
            result.append(merge(base, params))
        if isinstance(job, Mapping) and job.get('name') not in (None, ''):
            seen.setdefault(str(job['name']), []).append(index)
    twice = sorted((indexes, name) for name, indexes in seen.items() if len(indexes) > 1)
    for indexes, name in twice:
        problems.append("job name '%s' is used %d times (list items %s); names must be unique"
                        % (name, len(indexes), ', '.join(str(i) for i in indexes)))
    if problems:
        _fail(problems)
    return result


class FilterModule(object):
    def filters(self):
        return {'flink_job_params': flink_job_params}
