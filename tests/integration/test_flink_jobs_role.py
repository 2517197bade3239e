"""The flink_jobs role on real Flink, through ansible-playbook with two inventory hosts.

Flink's REST API is the referee, never the module's result: the job list shows exactly one
instance although two hosts ran the role (run_once), and the record the job carries
(``flinkops.spec`` in its global job parameters) holds the config keys of both
``flink_jobs_defaults`` and the item (recursive merge). A second run changes nothing,
and no secret shows in the verbose output. Pruning through the role (``flink_jobs_scope``,
``flink_jobs_prune``) stops exactly the dropped job of the scope, and its ``--check`` run
predicts exactly that and changes nothing.
"""

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid

import requests

from tests.harness import owned
from tests.integration.ansible_play import Ansible, ansible_env, ensure_collection_link
from tests.integration.conftest import EXAMPLE_CLASS, TERMINAL, live_jobs

HOSTS = ('jobs-a', 'jobs-b')


def user_config(url, jid):
    return requests.get(url + '/jobs/%s/config' % jid, timeout=10).json()['execution-config']['user-config']


def record(url, jid):
    """The flinkops record of a job (base64url JSON, as _identity.decode_record reads it)."""
    text = user_config(url, jid)['flinkops.spec']
    return json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)).decode('utf-8'))


def run_role(workdir, tag, role_vars, verbosity=1, check=False, diff=False):
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
                        'check_mode': False, 'diff': False}],
    }]
    paths = {}
    for name, data in (('inventory', inventory), ('play', play)):
        paths[name] = os.path.join(workdir, '%s-%s.json' % (name, tag))
        with open(paths[name], 'w') as f:
            json.dump(data, f, ensure_ascii=False)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', paths['inventory'], paths['play'],
           '-' + 'v' * verbosity]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    proc = owned.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ansible_env(), cwd=workdir,
                     timeout=600)
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


def declare_output(output):
    """The output of the role's 'Declare the jobs' task."""
    return output.split('TASK [flinkops.flink.flink_jobs : Declare the jobs]', 1)[1].split('\nTASK [', 1)[0]


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

    # run_once: the module ran on one host, and Ansible registered its result for both.
    assert len(re.findall(r'^changed: \[[^]]+\]', declare_output(out), re.M)) == 1, out
    assert set(registered) == set(HOSTS), out[-6000:]
    assert registered[HOSTS[0]] == registered[HOSTS[1]]
    first = registered[HOSTS[0]]['jobs']
    assert len(first) == 1 and first[0]['changed'] and first[0]['job_id'] == jid
    assert first[0]['name'] == job_name and first[0]['pruned'] is False
    assert registered[HOSTS[0]]['pruned'] == [] and registered[HOSTS[0]]['scope'] is None
    stats = recap(out)
    assert sum(s['changed'] for s in stats.values()) == 1 + len(HOSTS), stats  # the job, and each results file

    # A second run reports no change and leaves the same single instance.
    rc, again, registered = run_role(workdir, 'again', role_vars)
    assert rc == 0, again[-6000:]
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [jid]
    for h in HOSTS:
        assert not registered[h]['changed'], registered[h]
        result = registered[h]['jobs'][0]
        assert not result['changed'] and result['action'] == 'none' and result['job_id'] == jid, result
    assert not re.search(r'^changed: ', declare_output(again), re.M), again
    assert all(s['failed'] == 0 for s in recap(again).values())

    # The secret never shows in the verbose output (the module's no_log), nor in the registered results.
    for text in (out, again, json.dumps(registered)):
        assert secret not in text
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in out
    assert '[WARNING]' not in out and '[DEPRECATION' not in out, out


def start_by_hand(url, jar, name):
    """A job submitted straight through REST: it carries no flinkops record."""
    with open(jar, 'rb') as f:
        up = requests.post(url + '/jars/upload', files={'jarfile': ('by-hand.jar', f)}, timeout=60).json()
    jar_id = up['filename'].rsplit('/', 1)[-1]
    answer = requests.post(url + '/jars/%s/run' % jar_id, timeout=120,
                           json={'entryClass': EXAMPLE_CLASS, 'programArgsList': ['--job-name', name] + SLOW})
    assert answer.status_code == 200, answer.text
    return answer.json()['jobid']


def states(url, jids):
    """{jid: state} of the given jobs, straight from Flink."""
    jobs = dict((j['jid'], j['state']) for j in requests.get(url + '/jobs/overview', timeout=10).json()['jobs'])
    return dict((jid, jobs.get(jid)) for jid in jids)


def wait_ended(url, jid, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = states(url, [jid])[jid]
        if state in TERMINAL:
            return state
        time.sleep(0.5)
    return states(url, [jid])[jid]


SLOW = ['--sleep-ms', '200']    # keeps the example job's CPU low


def test_prune_through_the_role_stops_exactly_the_dropped_job_of_the_scope(cluster, jar, job_name, tmp_path):
    url = cluster.url
    scope = 'it-role-%s' % uuid.uuid4().hex[:8]
    names = dict((k, '%s-%s' % (job_name, k)) for k in ('a', 'b', 'c', 'other', 'hand'))

    def role_vars(jobs, job_scope=scope, **extra):
        v = {
            'flink_jobs_url': url,
            'flink_jobs_connection': {'request_timeout': 10, 'wait_timeout': 180},
            'flink_jobs_defaults': {'entry_class': EXAMPLE_CLASS, 'healthy_for': Ansible.healthy_for, 'jar': jar},
            'flink_jobs_list': [{'name': names[k], 'args': ['--job-name', names[k]] + SLOW} for k in jobs],
            'flink_jobs_scope': job_scope,
        }
        v.update(extra)
        return v
    workdir = str(tmp_path)

    rc, out, registered = run_role(workdir, 'deploy', role_vars('abc', flink_jobs_max_parallel=3))
    assert rc == 0, out[-6000:]
    assert [j['name'] for j in registered[HOSTS[0]]['jobs']] == [names[k] for k in 'abc']
    rc, out, registered = run_role(workdir, 'other', role_vars(['other'], job_scope=scope + '-other'))
    assert rc == 0 and registered[HOSTS[0]]['scope'] == scope + '-other', out[-6000:]
    start_by_hand(url, jar, names['hand'])

    jids = {}
    for k, name in names.items():
        live = live_jobs(url, name)
        assert len(live) == 1, (name, live)
        jids[k] = live[0]['jid']
    assert record(url, jids['a'])['scope'] == scope and record(url, jids['other'])['scope'] == scope + '-other'
    assert 'flinkops.spec' not in user_config(url, jids['hand'])
    everything = sorted(jids.values())
    assert set(states(url, everything).values()) == {'RUNNING'}

    # --check --diff with c dropped and pruning on: predicts exactly c, touches nothing.
    pruning = role_vars('ab', flink_jobs_prune=True)
    rc, out, registered = run_role(workdir, 'check', pruning, check=True, diff=True)
    assert rc == 0, out[-6000:]
    predicted = registered[HOSTS[0]]
    assert predicted['changed'] and predicted['pruned'] == [names['c']], predicted
    by_name = dict((j['name'], j) for j in predicted['jobs'])
    assert sorted(by_name) == sorted(names[k] for k in 'abc')
    assert by_name[names['c']]['pruned'] and by_name[names['c']]['changed']
    assert not any(by_name[names[k]]['changed'] or by_name[names[k]]['pruned'] for k in 'ab')
    assert [d['before_header'] for d in predicted['diff']] == ['job %s' % names['c']], predicted['diff']
    assert 'job %s' % names['c'] in out      # the diff is shown
    assert set(states(url, everything).values()) == {'RUNNING'}
    assert all(len(live_jobs(url, name)) == 1 for name in names.values())

    # The real run: c ends FINISHED (stopped with a savepoint); a, b, the other scope's job and the job started
    # by hand keep running, the same instances as before.
    rc, out, registered = run_role(workdir, 'prune', pruning)
    assert rc == 0, out[-6000:]
    assert wait_ended(url, jids['c']) == 'FINISHED'
    after = states(url, everything)
    assert after == dict((jid, 'FINISHED' if jid == jids['c'] else 'RUNNING') for jid in everything), after
    assert len(live_jobs(url)) == 4
    for k in ('a', 'b', 'other', 'hand'):
        assert [j['jid'] for j in live_jobs(url, names[k])] == [jids[k]]
    pruned = [j for j in registered[HOSTS[0]]['jobs'] if j['pruned']]
    assert [j['name'] for j in pruned] == [names['c']] and pruned[0]['savepoint'], pruned

    # Again: nothing left to prune, nothing changes.
    rc, again, registered = run_role(workdir, 'prune-again', pruning)
    assert rc == 0, again[-6000:]
    for text in (out, again):
        assert '[WARNING]' not in text and '[DEPRECATION' not in text, text
    assert not registered[HOSTS[0]]['changed'] and registered[HOSTS[0]]['pruned'] == [], registered[HOSTS[0]]
    assert states(url, everything) == after
