"""Run the collection's roles through real ansible-playbook on loopback hosts.

A ``RolePlay`` is an inventory of hosts that all connect locally (each with its own
install and instance directory and ports, as separate machines would have) and a
playbook that runs ``flink_cluster`` on all of them and, optionally, ``flink_jobs``
once. Each run writes its inventory, playbook and output under the work directory.

``link_flink_home`` puts the harness's Flink distribution where the role looks for
an installed Flink, so a test that is not about installing skips the copy.
"""

import json
import os
import re
import subprocess
import sys
import time

from tests.harness import owned
from tests.harness.flinkdist import ensure_flink_home
from tests.integration.ansible_play import ansible_env

RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def recap(output):
    return dict((m.group(1), {'ok': int(m.group(2)), 'changed': int(m.group(3)), 'unreachable': int(m.group(4)),
                              'failed': int(m.group(5))}) for m in RECAP.finditer(output))


def link_flink_home(version, install_dir):
    """Make <install_dir>/flink-<version> the harness's distribution (a symlink); the role then installs nothing."""
    os.makedirs(install_dir, exist_ok=True)
    link = os.path.join(install_dir, 'flink-%s' % version)
    if not os.path.lexists(link):
        os.symlink(ensure_flink_home(version), link)
    return link


def common_vars(version):
    """Role variables every loopback test cluster shares."""
    return {
        'ansible_connection': 'local',
        'ansible_python_interpreter': sys.executable,
        'flink_cluster_version': version,
        'flink_cluster_install_source': 'pypi',
        'flink_cluster_user': 'root',
        'flink_cluster_group': 'root',
        'flink_cluster_service_manager': 'script',
        'flink_cluster_bind_address': '127.0.0.1',
        'flink_cluster_advertised_address': '127.0.0.1',
        'flink_cluster_jobmanager_memory': '1024m',
        'flink_cluster_taskmanager_memory': '1280m',
        'flink_cluster_taskmanager_slots': 2,
        'flink_cluster_wait_timeout': 150,
    }


class RolePlay(object):
    def __init__(self, workdir, inventory, jobs=None, jobs_url=None):
        """``inventory``: an Ansible YAML inventory as a dict. ``jobs``: flink_jobs_list for a second play."""
        self.workdir = workdir
        self.inventory = inventory
        self.jobs = jobs
        self.jobs_url = jobs_url
        self.runs = 0
        self.durations = []
        os.makedirs(workdir, exist_ok=True)

    def playbook(self):
        plays = [{
            'name': 'Cluster',
            'hosts': 'all',
            'gather_facts': True,
            'gather_subset': ['min'],
            'roles': [{'role': 'flinkops.flink.flink_cluster'}],
        }]
        if self.jobs is not None:
            plays.append({
                'name': 'Jobs',
                'hosts': 'all',
                'gather_facts': False,
                'tasks': [{
                    'name': 'Declare the jobs',
                    'ansible.builtin.include_role': {'name': 'flinkops.flink.flink_jobs'},
                    'vars': {'flink_jobs_url': self.jobs_url, 'flink_jobs_list': self.jobs,
                             'flink_jobs_defaults': {'healthy_for': 0, 'wait_timeout': 180}},
                    'when': "flink_cluster_state | default('started') == 'started'",
                    'run_once': True,
                }],
            })
        return plays

    def run(self, check=False, diff=False, timeout=900, extra_vars=None, host_vars=None):
        """Run the playbook; ``host_vars`` ({host: {var: value}}) change single hosts for this run only."""
        self.runs += 1
        n = self.runs
        inventory = json.loads(json.dumps(self.inventory))
        for host, values in (host_vars or {}).items():
            _host_entry(inventory, host).update(values)
        inv_path = os.path.join(self.workdir, 'inventory-%d.json' % n)
        play_path = os.path.join(self.workdir, 'play-%d.json' % n)
        with open(inv_path, 'w') as f:
            json.dump(inventory, f)
        with open(play_path, 'w') as f:
            json.dump(self.playbook(), f)
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inv_path, play_path]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        if extra_vars:
            cmd += ['-e', json.dumps(extra_vars)]
        started = time.monotonic()
        proc = owned.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=ansible_env({'ANSIBLE_PIPELINING': '1'}), cwd=self.workdir, timeout=timeout)
        self.durations.append(round(time.monotonic() - started, 1))
        output = proc.stdout.decode('utf-8', 'replace')
        with open(os.path.join(self.workdir, 'run-%d.log' % n), 'w') as f:
            f.write(output)
        return proc.returncode, output, recap(output)

    def ensure(self, **kwargs):
        rc, output, stats = self.run(**kwargs)
        assert rc == 0, output[-8000:]
        return output, stats


def _host_entry(inventory, host):
    def walk(group):
        if host in (group.get('hosts') or {}):
            if group['hosts'][host] is None:
                group['hosts'][host] = {}
            return group['hosts'][host]
        for child in (group.get('children') or {}).values():
            found = walk(child)
            if found is not None:
                return found
        return None
    entry = walk(inventory['all'])
    if entry is None:
        raise KeyError(host)
    return entry


def process_conf(instance_dir, process):
    """The Flink configuration file the role wrote for ``process`` (jobmanager, taskmanager): ``config.yaml``, or
    ``flink-conf.yaml`` on Flink 1.18, whose legacy format the checked ``key: value`` lines look the same in."""
    conf_dir = os.path.join(instance_dir, 'conf-%s' % process)
    for name in ('config.yaml', 'flink-conf.yaml'):
        if os.path.exists(os.path.join(conf_dir, name)):
            return os.path.join(conf_dir, name)
    raise AssertionError('the role wrote no Flink configuration in %s' % conf_dir)


def read_pid(instance_dir, daemon):
    """Pid in the role's pid file of a process ('standalonesession', 'taskexecutor', 'zookeeper'), or None."""
    path = os.path.join(instance_dir, 'pid', 'flink-flinkops-%s.pid' % daemon)
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if os.path.exists('/proc/%d' % pid) else None


def stop_instance(instance_dir):
    """Stop what a role-made instance runs, by its pid files (the test's own clean-up when the role cannot)."""
    ctl = os.path.join(instance_dir, 'bin', 'flinkctl')
    if os.path.exists(ctl):
        for process in ('taskmanager', 'jobmanager', 'zookeeper'):
            subprocess.run([ctl, process, 'stop'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                           timeout=120)
