"""The flink_jobs role takes flink_job's options from the module's argument spec, never from a hand-kept list.

The role declares its whole list with one flink_job_set task. The last tests run the role through
ansible-playbook on two local hosts against a port nobody listens on: no Flink is needed to see the up-front
checks fail before flink_job_set runs, the set declared once, and no secret in the output.
"""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import yaml

from ansible_collections.flinkops.flink.plugins.module_utils._common import connection_argument_spec
from ansible_collections.flinkops.flink.plugins.module_utils._job_spec import job_argument_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, 'roles', 'flink_jobs')
FLINK_JOB = 'flinkops.flink.flink_job'
FLINK_JOB_SET = 'flinkops.flink.flink_job_set'
# Words of option names that only a hand-kept list of flink_job's job options would contain.
JOB_ONLY = sorted(set(job_argument_spec()) - {'name', 'state', 'args', 'config', 'wait', 'jar', 'savepoint'})


def load(*path):
    with open(os.path.join(ROLE, *path)) as f:
        return yaml.safe_load(f)


def read(*path):
    with open(os.path.join(ROLE, *path)) as f:
        return f.read()


def connection_names():
    return set(connection_argument_spec()) - {'url'}


@pytest.fixture(scope='module')
def tasks():
    return load('tasks', 'main.yml')


@pytest.fixture(scope='module')
def declare(tasks):
    found = [t for t in tasks if FLINK_JOB_SET in t]
    assert len(found) == 1
    assert not [t for t in tasks if FLINK_JOB in t], 'one flink_job_set task, no loop of flink_job'
    return found[0]


def test_no_task_lists_flink_job_options_by_hand():
    text = yaml.safe_dump(load('tasks', 'main.yml'))  # the tasks, without the comments
    for option in JOB_ONLY + sorted(connection_names()):
        assert not re.search(r'\b%s\b' % re.escape(option), text), option


def test_the_role_is_one_task(tasks):
    assert [t['name'] for t in tasks] == ['Declare the jobs']


def test_declare_task(declare):
    assert declare['run_once'] is True
    assert declare['register'] == 'flink_jobs_results'
    assert 'loop' not in declare and 'loop_control' not in declare
    args = declare[FLINK_JOB_SET]
    assert set(args) == {'jobs', 'scope', 'prune', 'prune_savepoint', 'prune_savepoint_dir', 'max_parallel'}
    # The items, merged with the defaults, go into jobs; the connection and the URL go to the top level.
    assert 'flink_jobs_list | flinkops.flink.flink_job_params(defaults=flink_jobs_defaults)' in args['jobs']
    assert 'connection' not in args['jobs'] and 'url' not in args['jobs']
    for option, var in (('scope', 'flink_jobs_scope'), ('prune', 'flink_jobs_prune'),
                        ('prune_savepoint', 'flink_jobs_prune_savepoint'),
                        ('prune_savepoint_dir', 'flink_jobs_prune_savepoint_dir'),
                        ('max_parallel', 'flink_jobs_max_parallel')):
        assert var in args[option], option
    top = declare['module_defaults'][FLINK_JOB_SET]
    assert 'flink_jobs_connection' in top and 'flink_jobs_url' in top
    assert 'no_log' not in declare, 'the module hides its own secrets; the role must not hide the results'


def test_list_and_prune_checks_are_part_of_the_arguments(declare):
    # Templating the arguments fails the task before the module runs: prune without a scope fails with a
    # message naming the role's variable (the role's argument spec checks that the list is a list).
    args = declare[FLINK_JOB_SET]
    assert 'flink_jobs_prune' in args['scope'] and 'set flink_jobs_scope' in args['scope']


def test_argument_specs_point_to_flink_job_and_mention_merge_and_run_once():
    spec = load('meta', 'argument_specs.yml')['argument_specs']['main']
    text = yaml.safe_dump(spec)
    for option in JOB_ONLY:
        assert 'C(%s)' % option not in text, option
    items = ' '.join(spec['options']['flink_jobs_list']['description'])
    assert 'M(flinkops.flink.flink_job)' in items and 'documentation' in items
    assert 'recursive' in ' '.join(spec['options']['flink_jobs_defaults']['description'])
    assert 'run_once' in ' '.join(spec['description'])
    connection = ' '.join(spec['options']['flink_jobs_connection']['description'])
    named = set(re.findall(r'C\(([a-z_]+)\)', connection)) - {'url'}
    assert named == connection_names()


def test_defaults_comments_point_to_flink_job_and_name_the_connection_options():
    text = read('defaults', 'main.yml')
    for option in JOB_ONLY:
        assert not re.search(r'\b%s\b' % re.escape(option), text), option
    assert 'ansible-doc flinkops.flink.flink_job' in text
    assert 'recursively' in text and 'run_once' in text
    block = text.split('flink_jobs_defaults: {}')[1]
    named = set(re.findall(r'\b([a-z]+_[a-z_]+|[a-z]+)\b', block.split('flink_jobs_connection:')[0]))
    assert connection_names() <= named


# --- through ansible-playbook, without Flink -----------------------------------------

def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_role(tmp_path, role_vars, verbosity=0):
    # The collections root tests/unit/conftest.py put on sys.path.
    collections = next(p for p in sys.path if os.path.isdir(os.path.join(p, 'ansible_collections', 'flinkops', 'flink')))
    host = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
    inventory = {'all': {'hosts': {'h1': host, 'h2': host}}}
    play = [{'hosts': 'all', 'gather_facts': False,
             'roles': [{'role': 'flinkops.flink.flink_jobs', 'vars': role_vars}],
             'post_tasks': [{'ansible.builtin.debug': {'msg': 'AFTER-THE-ROLE'}}]}]
    for name, data in (('inventory.json', inventory), ('play.json', play)):
        (tmp_path / name).write_text(json.dumps(data))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR='1',
               ANSIBLE_RETRY_FILES_ENABLED='0', PYTHONDONTWRITEBYTECODE='1')
    env.pop('FLINK_URL', None)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(tmp_path / 'inventory.json'),
           str(tmp_path / 'play.json')]
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def assert_failed_before_the_module_ran(out):
    # Templating the task's arguments failed, so the module never ran (it would have said that it cannot reach
    # the closed port); as for every failure of a run_once task, the play goes on with no host of the batch.
    declare = out.split('Declare the jobs]')[1]
    assert re.search(r'^fatal: \[h1\]', declare, re.M), out
    assert 'refused' not in declare and 'Unsupported parameters' not in declare, out
    assert 'AFTER-THE-ROLE' not in out, out


def test_unknown_option_fails_before_flink_job_set_runs(tmp_path):
    rc, out = run_role(tmp_path, {
        'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port(),
        'flink_jobs_list': [{'name': 'good', 'jar': '/x.jar'}, {'name': 'bad', 'jar': '/x.jar', 'jarfile': '/y'}],
    })
    assert rc != 0, out
    assert "job 'bad' (list item 1) has unknown option(s) jarfile" in out, out
    assert_failed_before_the_module_ran(out)


def test_declared_once_and_secrets_never_shown(tmp_path):
    rc, out = run_role(tmp_path, {
        'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port(),
        'flink_jobs_connection': {'url_password': 'TOPSECRET-password', 'headers': {'X-Token': 'TOPSECRET-header'},
                                  'request_timeout': 0.5, 'wait_timeout': 1},
        'flink_jobs_defaults': {'secret_args': ['--token', 'TOPSECRET-arg'], 'healthy_for': 0},
        'flink_jobs_list': [{'name': 'j1', 'jar': '/nonexistent/j1.jar',
                             'config': {'s3.secret-key': 'TOPSECRET-config'}}],
    }, verbosity=3)
    assert rc != 0, out  # no cluster and no jar
    assert 'TASK [flinkops.flink.flink_jobs : Declare the jobs]' in out, out
    declare = out.split('TASK [flinkops.flink.flink_jobs : Declare the jobs]')[1]
    assert len(re.findall(r'^(?:fatal|failed|ok|changed): \[h\d\]', declare, re.M)) == 1, out
    # The connection options reached the module's top level (it accepted them and tried to connect).
    assert 'Unsupported parameters' not in out, out
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in out, out  # the invocation is shown, censored
    assert 'TOPSECRET' not in out, out
    assert '[WARNING]' not in out, out


def test_prune_without_scope_fails_naming_the_variable(tmp_path):
    rc, out = run_role(tmp_path, {
        'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port(),
        'flink_jobs_prune': True,
        'flink_jobs_list': [{'name': 'j1', 'jar': '/x.jar'}],
    })
    assert rc != 0, out
    assert 'flink_jobs_prune=true needs flink_jobs_scope' in out, out
    assert_failed_before_the_module_ran(out)


def test_a_list_that_is_not_a_list_fails_naming_the_variable(tmp_path):
    rc, out = run_role(tmp_path, {'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port(),
                                  'flink_jobs_list': {'name': 'j1', 'jar': '/x.jar'}})
    assert rc != 0, out
    # The role's argument spec refuses it, on every host, before the role's task.
    assert "argument 'flink_jobs_list' is of type dict" in out, out
    assert 'Declare the jobs' not in out and 'AFTER-THE-ROLE' not in out, out


def test_unknown_connection_option_is_refused_by_the_module_before_any_request(tmp_path):
    rc, out = run_role(tmp_path, {'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port(),
                                  'flink_jobs_connection': {'ca_file': '/ca.pem'},
                                  'flink_jobs_list': [{'name': 'j1', 'jar': '/x.jar'}]})
    assert rc != 0, out
    declare = out.split('Declare the jobs]')[1]
    assert re.search(r'Unsupported parameters for \(flinkops\.flink\.flink_job_set\) module: ca_file', declare), out
    assert 'refused' not in declare and 'AFTER-THE-ROLE' not in out, out


def test_empty_list_without_prune_contacts_no_cluster(tmp_path):
    rc, out = run_role(tmp_path, {'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port()})
    assert rc == 0, out
    assert re.search(r'^skipping: \[h1\]', out.split('Declare the jobs]')[1], re.M), out


def test_empty_list_with_prune_runs_the_set(tmp_path):
    # Pruning an empty list stops every job of the scope, so the set runs (and here finds no cluster).
    rc, out = run_role(tmp_path, {'flink_jobs_url': 'http://127.0.0.1:%d' % closed_port(),
                                  'flink_jobs_connection': {'request_timeout': 0.5, 'wait_timeout': 1},
                                  'flink_jobs_scope': 'team', 'flink_jobs_prune': True})
    assert rc != 0, out
    declare = out.split('Declare the jobs]')[1]
    assert re.search(r'^fatal: \[h1\]', declare, re.M), out
    assert 'Unsupported parameters' not in out, out
