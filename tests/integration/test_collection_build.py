"""`ansible-galaxy collection build` + `install` gives a collection whose docs cover every option."""

import json
import os
import subprocess
import sys

from tests.integration.ansible_play import ROOT, ansible_env

MODULES = ('flink_job', 'flink_job_info', 'flink_cluster_info', 'flink_savepoint', 'flink_job_handover')


def bin_path(name):
    return os.path.join(os.path.dirname(sys.executable), name)


# Prints the option names of a module: runs it until it builds its AnsibleModule.
ARGSPEC_PROBE = """
import json, runpy, sys
from unittest import mock
import ansible.module_utils.basic as basic

captured = {}


class Stop(Exception):
    pass


def fake_init(self, argument_spec, **kwargs):
    captured.update(argument_spec)
    raise Stop()


with mock.patch.object(basic.AnsibleModule, '__init__', fake_init):
    try:
        runpy.run_path(sys.argv[1], run_name='__main__')
    except Stop:
        pass
print(json.dumps(sorted(captured)))
"""


def test_built_collection_installs_and_documents_every_option(tmp_path):
    build = subprocess.run([bin_path('ansible-galaxy'), 'collection', 'build', ROOT, '--output-path', str(tmp_path)],
                           capture_output=True, check=False, text=True, env=ansible_env(), cwd=ROOT)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = [p for p in os.listdir(str(tmp_path)) if p.endswith('.tar.gz')]
    assert tarballs == ['flinkops-flink-0.1.0.tar.gz']
    # Nothing of the test machinery's output or caches ends up in the artifact.
    listing = subprocess.run(['tar', 'tzf', str(tmp_path / tarballs[0])], capture_output=True, check=False, text=True).stdout
    assert 'build/' not in listing and '.venv' not in listing and 'demo/' not in listing

    target = tmp_path / 'installed'
    # Only the fresh directory is on the collections path: the working tree must not answer for it.
    env = ansible_env({'ANSIBLE_COLLECTIONS_PATH': str(target)})
    inst = subprocess.run([bin_path('ansible-galaxy'), 'collection', 'install', str(tmp_path / tarballs[0]), '-p',
                           str(target)], capture_output=True, check=False, text=True, env=env, cwd=str(tmp_path))
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert (target / 'ansible_collections' / 'flinkops' / 'flink' / 'MANIFEST.json').exists(), inst.stdout
    for module in MODULES:
        doc = subprocess.run([bin_path('ansible-doc'), '--json', 'flinkops.flink.%s' % module], capture_output=True, check=False,
                             text=True, env=env, cwd=str(tmp_path))
        assert doc.returncode == 0, doc.stderr
        data = json.loads(doc.stdout).get('flinkops.flink.%s' % module)
        assert data, doc.stdout[:500] + doc.stderr
        assert str(target) in data['doc']['filename'], 'ansible-doc read another copy of the collection'
        documented = set(data['doc']['options'])
        path = os.path.join(str(target), 'ansible_collections', 'flinkops', 'flink', 'plugins', 'modules',
                            module + '.py')
        spec = subprocess.run([sys.executable, '-c', ARGSPEC_PROBE, path], capture_output=True, check=False, text=True,
                              env=dict(env, PYTHONPATH=str(target)))
        assert spec.returncode == 0, spec.stderr
        assert set(json.loads(spec.stdout)) == documented
        assert data['examples'].strip() and data['return']

    # The roles, the filter and the quickstart playbook come along, documented.
    for role in ('flink_cluster', 'flink_jobs'):
        doc = subprocess.run([bin_path('ansible-doc'), '-t', 'role', '--json', 'flinkops.flink.%s' % role],
                             capture_output=True, check=False, text=True, env=env, cwd=str(tmp_path))
        assert doc.returncode == 0, doc.stderr
        entry = json.loads(doc.stdout)['flinkops.flink.%s' % role]
        assert entry['entry_points']['main']['options'], doc.stdout[:500]
    doc = subprocess.run([bin_path('ansible-doc'), '-t', 'filter', '--json', 'flinkops.flink.flink_flatten_config'],
                         capture_output=True, check=False, text=True, env=env, cwd=str(tmp_path))
    assert doc.returncode == 0, doc.stderr
    assert 'playbooks/quickstart.yml' in listing and 'roles/flink_cluster/files/flink_home_from_pypi.py' in listing
    assert 'extensions/molecule' not in listing
