"""An execution environment (EE) that includes this collection gets its Python requirement.

ansible-builder 3 only *creates* the build context here (no container engine runs on
this machine). The two steps of the image build that decide what gets installed are
then run on the host, from the generated context, the way its Containerfile runs them:

* galaxy stage: ``ansible-galaxy collection install -r requirements.yml`` in ``_build``;
* builder stage: the context's own ``scripts/introspect.py`` over the installed
  collections, with the Containerfile's ``--write-pip``/``--write-bindep`` options.

So the test shows that an image built from that context would pip-install ``requests``
for flinkops.flink and no system packages (no JDK) at all.
"""

import os
import re
import shutil
import sys

import pytest
import yaml

from tests.harness import owned
from tests.integration.ansible_play import ROOT, ansible_env

with open(os.path.join(ROOT, 'galaxy.yml')) as _f:
    TARBALL = 'flinkops-flink-%s.tar.gz' % yaml.safe_load(_f)['version']

# What a user writes to build an AWX EE with this collection (docs/awx.md shows the
# Galaxy form); here the collection comes from the tarball built from this tree.
EE_DEFINITION = """\
---
version: 3
images:
  base_image:
    name: quay.io/ansible/awx-ee:24.6.1
dependencies:
  galaxy:
    collections:
      - name: collections/%(tarball)s
        type: file
additional_build_files:
  - src: %(tarball_path)s
    dest: collections
"""


def bin_path(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def run(cmd, cwd, env=None):
    proc = owned.run(cmd, cwd=str(cwd), env=ansible_env(env), capture_output=True, text=True,
                     timeout=120)
    assert proc.returncode == 0, '%s failed (rc=%d):\n%s\n%s' % (' '.join(cmd), proc.returncode, proc.stdout,
                                                                 proc.stderr)
    return proc.stdout


def requirement_lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    dist = tmp_path_factory.mktemp('dist')
    run([bin_path('ansible-galaxy'), 'collection', 'build', ROOT, '--output-path', str(dist)], cwd=dist)
    path = dist / TARBALL
    assert path.is_file(), os.listdir(str(dist))
    return path


@pytest.fixture(scope='module')
def context(tmp_path_factory, tarball):
    work = tmp_path_factory.mktemp('ee')
    definition = work / 'execution-environment.yml'
    definition.write_text(EE_DEFINITION % {'tarball': TARBALL, 'tarball_path': str(tarball)})
    ctx = work / 'context'
    out = run([bin_path('ansible-builder'), 'create', '--file', str(definition), '--context', str(ctx),
               '--output-filename', 'Containerfile'], cwd=work)
    assert 'Complete!' in out, out
    return ctx


@pytest.fixture(scope='module')
def galaxy_stage(tmp_path_factory, context):
    """The Containerfile's galaxy stage: `COPY _build /build`, then install from requirements.yml."""
    stage = tmp_path_factory.mktemp('galaxy')
    build = stage / 'build'
    shutil.copytree(str(context / '_build'), str(build))
    collections = stage / 'usr-share-ansible-collections'
    run([bin_path('ansible-galaxy'), 'collection', 'install', '-r', 'requirements.yml', '--collections-path',
         str(collections)], cwd=build, env={'ANSIBLE_GALAXY_DISABLE_GPG_VERIFY': '1',
                                            'ANSIBLE_COLLECTIONS_PATH': str(collections)})
    installed = collections / 'ansible_collections' / 'flinkops' / 'flink'
    assert (installed / 'MANIFEST.json').is_file()
    return collections


def test_context_installs_the_collection_tarball_and_introspects(context, tarball):
    containerfile = (context / 'Containerfile').read_text()
    # The galaxy stage installs what _build/requirements.yml names, from /build.
    assert 'COPY _build /build' in containerfile
    assert re.search(r'^RUN .*ansible-galaxy collection install .*-r requirements\.yml', containerfile, re.M)
    # The builder stage introspects the installed collections and pip-installs the result.
    assert re.search(r'^RUN \$PYCMD /output/scripts/introspect\.py introspect .*--write-pip=/tmp/src/requirements\.txt',
                     containerfile, re.M)
    assert 'RUN /output/scripts/assemble' in containerfile

    with open(str(context / '_build' / 'requirements.yml')) as f:
        galaxy = yaml.safe_load(f)
    assert galaxy['collections'] == [{'name': 'collections/%s' % TARBALL, 'type': 'file'}]
    copied = context / '_build' / 'collections' / TARBALL
    assert copied.read_bytes() == tarball.read_bytes()


def test_build_stage_introspection_installs_no_python_and_no_system_packages(context, galaxy_stage, tmp_path):
    containerfile = (context / 'Containerfile').read_text()
    line = re.search(r'^RUN \$PYCMD /output/scripts/introspect\.py (.*)$', containerfile, re.M).group(1)
    src = tmp_path / 'src'
    # The same command, with the container paths mapped to this machine. In the image the
    # collections folder is introspect.py's default, /usr/share/ansible/collections.
    args = line.replace('/tmp/src/', str(src) + os.sep).split()
    cmd = [sys.executable, str(context / '_build' / 'scripts' / 'introspect.py')] + args + [str(galaxy_stage)]
    out = run(cmd, cwd=tmp_path)

    data = yaml.safe_load(out.split('---', 1)[1])
    assert not data.get('python') and not data.get('system'), data
    # Nothing for the assemble step to pip-install, and no bindep list at all: nothing from dnf, no JDK.
    assert not (src / 'requirements.txt').exists() or requirement_lines(src / 'requirements.txt') == []
    assert not (src / 'bindep.txt').exists()


def test_ansible_builder_introspect_reports_nothing_to_install(galaxy_stage):
    out = run([bin_path('ansible-builder'), 'introspect', str(galaxy_stage)], cwd=galaxy_stage)
    data = yaml.safe_load(out.split('---', 1)[1]) or {}
    assert not data.get('python') and not data.get('system'), out


def test_collection_declares_its_requirements_for_ansible_builder(galaxy_stage):
    installed = galaxy_stage / 'ansible_collections' / 'flinkops' / 'flink'
    with open(str(installed / 'meta' / 'execution-environment.yml')) as f:
        meta = yaml.safe_load(f)
    assert meta == {'version': 1, 'dependencies': {'python': 'requirements.txt', 'system': 'bindep.txt'}}
    # requirements.txt is explained, not empty, and asks for no Python package.
    assert (installed / 'requirements.txt').read_text().strip()
    assert requirement_lines(installed / 'requirements.txt') == []
    # bindep.txt is explained, not empty, and lists no package for any platform.
    assert (installed / 'bindep.txt').read_text().strip()
    assert requirement_lines(installed / 'bindep.txt') == []
    listed = run([bin_path('bindep'), '--file', str(installed / 'bindep.txt'), '--list_all', 'newline'],
                 cwd=galaxy_stage)
    assert listed.strip() == ''
