"""The changelog fragments are valid for antsibull-changelog, and a release can be made from them.

Fragments stay in the repository until a release: the release test runs on a copy.
"""

import glob
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHANGELOGS = os.path.join(ROOT, 'changelogs')
ANTSIBULL_CHANGELOG = os.path.join(os.path.dirname(sys.executable), 'antsibull-changelog')


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def changelog(*args, **kwargs):
    env = dict(os.environ)
    env['PATH'] = os.pathsep.join([os.path.dirname(sys.executable), env.get('PATH', '')])
    return subprocess.run([ANTSIBULL_CHANGELOG] + list(args), capture_output=True, text=True, check=False, env=env,
                          timeout=120, **kwargs)


def fragments():
    return sorted(glob.glob(os.path.join(CHANGELOGS, 'fragments', '*.yml'))
                  + glob.glob(os.path.join(CHANGELOGS, 'fragments', '*.yaml')))


@pytest.fixture(scope='module')
def config():
    return load(os.path.join(CHANGELOGS, 'config.yaml'))


def test_lint_passes():
    proc = changelog('lint', cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == '', proc.stdout


def test_changelog_yaml_is_valid_and_not_released_yet():
    path = os.path.join(CHANGELOGS, 'changelog.yaml')
    proc = changelog('lint-changelog-yaml', path, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = load(path)
    # Nothing released yet: the fragments carry everything for the first release.
    assert data == {'ancestor': None, 'releases': {}}


def test_every_fragment_uses_known_sections(config):
    known = set(name for name, _title in config['sections'])
    known.update([config['prelude_section_name'], config['trivial_section_name']])
    names = [os.path.basename(p) for p in fragments()]
    assert '0006-awx.yml' in names
    for path in fragments():
        data = load(path)
        assert isinstance(data, dict) and data, path
        assert set(data) <= known, '%s: unknown sections %s' % (path, sorted(set(data) - known))
        for section, entries in data.items():
            if section == config['prelude_section_name']:
                assert isinstance(entries, str) and entries.strip(), path
            else:
                assert isinstance(entries, list) and entries, '%s: %s' % (path, section)
                assert all(isinstance(e, str) and e.strip() for e in entries), '%s: %s' % (path, section)


def test_release_from_the_fragments_on_a_copy(tmp_path):
    version = load(os.path.join(ROOT, 'galaxy.yml'))['version']
    copy = tmp_path / 'ansible_collections' / 'flinkops' / 'flink'
    copy.mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, 'galaxy.yml'), str(copy))
    for name in ('changelogs', 'plugins', 'meta'):
        shutil.copytree(os.path.join(ROOT, name), str(copy / name),
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    before = set(os.path.basename(p) for p in fragments())

    proc = changelog('release', '--version', version, '--date', '2026-01-01', cwd=str(copy))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    released = load(str(copy / 'changelogs' / 'changelog.yaml'))['releases'][version]
    assert set(released['fragments']) == before
    text = (copy / 'CHANGELOG.rst').read_text()
    assert 'v%s' % version in text
    assert 'extensions/awx/flink_credential_type.yml' in text
    for module in ('flink_job', 'flink_job_info', 'flink_cluster_info', 'flink_savepoint'):
        assert '- %s - ' % module in text, module
    # The repository's own fragments are untouched.
    assert set(os.path.basename(p) for p in fragments()) == before
