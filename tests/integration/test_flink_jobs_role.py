"""The flink_jobs role on real Flink, through ansible-playbook with two inventory hosts.

Flink's REST API is the referee, never the module's result: the job list shows exactly one
instance although two hosts ran the role (run_once), and the record the job carries
(``flinkops.spec`` in its global job parameters) holds the config keys of both
``flink_jobs_defaults`` and the item (recursive merge). A second run changes nothing,
and no secret shows in the verbose output.
"""

import base64
import json
import os
import re
import subprocess
import sys

import requests

from tests.integration.ansible_play import Ansible, ansible_env, ensure_collection_link
from tests.integration.conftest import EXAMPLE_CLASS, live_jobs

HOSTS = ('jobs-a', 'jobs-b')


def user_config(url, jid):
    return requests.get(url + '/jobs/%s/config' % jid, timeout=10).json()['execution-config']['user-config']


def record(url, jid):
    """The flinkops record of a job (base64url JSON, as _identity.decode_record reads it)."""
    text = user_config(url, jid)['flinkops.spec']
    return json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)).decode('utf-8'))


def run_role(workdir, tag, role_vars, verbosity=1):
    """Run the role on two local hosts; return (rc, output, {host: flink_jobs_results})."""
    ensure_collection_link()
    host = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
    inventory = {'all': {'hosts': dict((h, dict(host)) for h in HOSTS)}}
    results = os.path.join(workdir, 'results-%s-{{ inventory_hostname }}.json' % tag)
    play = [{
        'name': 'flink_jobs on two hosts',
        'hosts': 'all',
        'gather_facts': False,
        'roles': [{'role': 'flinkops.flink.flink_jobs', 'vars': role_vars}],
        'post_tasks': [{'name': 'Save the registered results',
                        'ansible.builtin.copy': {'content': '{{ flink_jobs_results | to_json }}', 'dest': results},
                        'diff': False}],
    }]
    paths = {}
    for name, data in (('inventory', inventory), ('play', play)):
        paths[name] = os.path.join(workdir, '%s-%s.json' % (name, tag))
        with open(paths[name], 'w') as f:
            json.dump(data, f, ensure_ascii=False)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', paths['inventory'], paths['play'],
           '-' + 'v' * verbosity]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ansible_env(), cwd=workdir,
                          timeout=600, check=False)
    output = proc.stdout.decode('utf-8', 'replace')
    with open(os.path.join(workdir, 'run-%s.log' % tag), 'w') as f:
        f.write(output)
    registered = {}
    for h in HOSTS:
        path = results.replace('{{ inventory_hostname }}', h)
        if os.path.exists(path):
            with open(path) as f:
                registered[h] = json.load(f)
    return proc.returncode, output, registered


def recap(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP."""
    stats = {}
    for line in output.splitlines():
        m = re.match(r'^(\S+)\s+:\s+(ok=.*)$', line)
        if m and m.group(1) in HOSTS:
            stats[m.group(1)] = dict((k, int(v)) for k, v in (p.split('=') for p in m.group(2).split()))
    return stats


def test_role_on_two_hosts_declares_one_merged_job_once(cluster, ansible, jar, job_name, tmp_path):
    secret = 'TopSecret-%s' % job_name[-6:]
    role_vars = {
        'flink_jobs_url': cluster.url,
        'flink_jobs_connection': {'request_timeout': 10, 'wait_timeout': 180},
        'flink_jobs_defaults': {
            'entry_class': EXAMPLE_CLASS,
            'healthy_for': Ansible.healthy_for,
            'config': {'flinkops': {'it': {'a': 'from-defaults', 'shared': 'from-defaults'}}},
            'secret_args': ['--api-key', secret],
        },
        'flink_jobs_list': [{
            'name': job_name,
            'jar': jar,
            'args': ['--job-name', job_name],
            'config': {'flinkops': {'it': {'b': 'from-item', 'shared': 'from-item'}}},
        }],
    }
    workdir = str(tmp_path)

    rc, out, registered = run_role(workdir, 'first', role_vars, verbosity=3)
    assert rc == 0, out[-6000:]

    # Flink, not the module, is the referee: one live instance, whatever the number of hosts.
    live = live_jobs(cluster.url, job_name)
    assert len(live) == 1, live
    jid = live[0]['jid']
    rec = record(cluster.url, jid)
    assert rec['name'] == job_name
    assert rec['spec']['config'] == {'flinkops.it.a': 'from-defaults', 'flinkops.it.b': 'from-item',
                                     'flinkops.it.shared': 'from-item'}, rec
    assert rec['spec']['args'] == ['--job-name', job_name]
    assert secret not in json.dumps(rec) and secret not in json.dumps(user_config(cluster.url, jid))

    # run_once: the module ran on one host, and Ansible registered its results for both.
    assert len(re.findall(r'^changed: \[[^]]+\](?: =>)? \(item=%s\)' % re.escape(job_name), out, re.M)) == 1, out
    assert set(registered) == set(HOSTS), out[-6000:]
    assert registered[HOSTS[0]] == registered[HOSTS[1]]
    first = registered[HOSTS[0]]['results']
    assert len(first) == 1 and first[0]['changed'] and first[0]['job_id'] == jid
    assert first[0]['item'] == {'name': job_name}
    stats = recap(out)
    assert sum(s['changed'] for s in stats.values()) == 1 + len(HOSTS), stats  # the job, and each results file

    # A second run reports no change and leaves the same single instance.
    rc, again, registered = run_role(workdir, 'again', role_vars)
    assert rc == 0, again[-6000:]
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [jid]
    for h in HOSTS:
        result = registered[h]['results'][0]
        assert not result['changed'] and result['action'] == 'none' and result['job_id'] == jid, result
    assert not re.search(r'^changed: \[[^]]+\](?: =>)? \(item=', again, re.M), again
    assert all(s['failed'] == 0 for s in recap(again).values())

    # The secret never shows in the verbose output (the module's no_log), nor in the registered results.
    for text in (out, again, json.dumps(registered)):
        assert secret not in text
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in out
    assert '[WARNING]' not in out and '[DEPRECATION' not in out, out
