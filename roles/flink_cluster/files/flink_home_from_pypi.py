"""Assemble a FLINK_HOME from the official Apache Flink packages on PyPI.

Used by the flink_cluster role (install source ``pypi``, run on the target host
with ``ansible.builtin.script``) and by the test harness. Standard library only.

`apache-flink==V` carries ``pyflink/bin`` and ``pyflink/conf``;
`apache-flink-libraries==V` carries ``pyflink/{lib,opt,plugins}`` as a wheel
(2.x) or ``deps/{bin,lib,opt,plugins}`` in an sdist (1.x). Both are fetched with
pip into ``$FLINKOPS_CACHE/wheels`` (default ``~/.cache/flinkops``) and unpacked
into ``$FLINKOPS_CACHE/flink-<V>``. The home is built in a temporary directory
and renamed into place, so an interrupted or concurrent build never leaves a
half-built home behind.

    flink_home_from_pypi.py --version 2.3.0 [--cache DIR] [--dest DIR]    # prints FLINK_HOME
    flink_home_from_pypi.py --version 2.3.0 --python-env DIR             # a PyFlink venv; prints its python
"""

import argparse
import fcntl
import glob
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile

PARTS = ('bin', 'conf', 'lib', 'opt', 'plugins')
MARKER = '.flinkops-complete'


def cache_root():
    return os.environ.get('FLINKOPS_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'flinkops')


def _download(version, wheels):
    have = [p for p in glob.glob(os.path.join(wheels, '*')) if _matches(p, version)]
    names = set(os.path.basename(p).split('-')[0].replace('_', '-') for p in have)
    if {'apache-flink', 'apache-flink-libraries'} <= names:
        return
    os.makedirs(wheels, exist_ok=True)
    subprocess.check_call([sys.executable, '-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check',
                           '-q', '-d', wheels, 'apache-flink==%s' % version,
                           'apache-flink-libraries==%s' % version])


def _matches(path, version):
    base = os.path.basename(path)
    return ('-%s-' % version in base or '-%s.tar.gz' % version in base) and base.startswith('apache')


def _find(wheels, project, version):
    prefix = project.replace('-', '_') + '-' + version
    found = [p for p in glob.glob(os.path.join(wheels, prefix + '*'))
             if p.endswith('.whl') or p.endswith('.tar.gz')]
    alt = [p for p in glob.glob(os.path.join(wheels, project + '-' + version + '*')) if p.endswith('.tar.gz')]
    found = sorted(set(found + alt))
    if not found:
        raise RuntimeError('no %s %s in %s' % (project, version, wheels))
    return found[0]


def _extract_zip(path, dest):
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            parts = info.filename.split('/')
            if len(parts) > 2 and parts[0] == 'pyflink' and parts[1] in PARTS and not info.is_dir():
                target = os.path.join(dest, *parts[1:])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with z.open(info) as src, open(target, 'wb') as out:
                    shutil.copyfileobj(src, out)


def _extract_sdist(path, dest):
    with tarfile.open(path) as t:
        for member in t.getmembers():
            parts = member.name.split('/')
            # apache-flink-libraries-1.20.3/deps/lib/flink-dist-1.20.3.jar
            if len(parts) > 3 and parts[1] == 'deps' and parts[2] in PARTS and member.isfile():
                target = os.path.join(dest, *parts[2:])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with t.extractfile(member) as src, open(target, 'wb') as out:
                    shutil.copyfileobj(src, out)


def _built_once(root, name, target, build):
    """Run ``build(wheels)`` unless ``target`` is complete (holds MARKER): once, under a lock of its own in the cache
    ``root``, so concurrent callers build it one time and the others wait for it. ``build`` marks it complete."""
    if os.path.exists(os.path.join(target, MARKER)):
        return
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, '.lock-%s' % name), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(target, MARKER)):
            return
        build(os.path.join(root, 'wheels'))


def ensure_flink_home(version, cache=None, dest=None):
    """FLINK_HOME for ``version``: ``dest`` (default ``<cache>/flink-<version>``), built if missing."""
    root = cache or cache_root()
    home = dest or os.path.join(root, 'flink-%s' % version)

    def build(wheels):
        _download(version, wheels)
        parent = os.path.dirname(os.path.abspath(home))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.flink-%s-' % version, dir=parent)
        try:
            for project in ('apache-flink-libraries', 'apache-flink'):
                path = _find(wheels, project, version)
                if path.endswith('.whl'):
                    _extract_zip(path, tmp)
                else:
                    _extract_sdist(path, tmp)
            for script in glob.glob(os.path.join(tmp, 'bin', '*')):
                mode = os.stat(script).st_mode
                os.chmod(script, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            os.makedirs(os.path.join(tmp, 'log'), exist_ok=True)
            if not glob.glob(os.path.join(tmp, 'lib', 'flink-dist*.jar')):
                raise RuntimeError('the Flink %s packages held no lib/flink-dist jar' % version)
            open(os.path.join(tmp, MARKER), 'w').close()
            if os.path.exists(home):
                shutil.rmtree(home)
            os.rename(tmp, home)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)

    _built_once(root, 'flink-%s' % version, home, build)
    return home


def ensure_python_env(version, cache=None, dest=None):
    """A Python environment for PyFlink ``version`` (``apache-flink==<version>`` and what it needs): ``dest``
    (default ``<cache>/pyflink-<version>``), a virtual environment of this interpreter, built if missing. Returns
    its ``python``. The Flink packages come from the download cache; their dependencies from the index."""
    root = cache or cache_root()
    env = dest or os.path.join(root, 'pyflink-%s' % version)
    python = os.path.join(env, 'bin', 'python')

    def build(wheels):
        _download(version, wheels)
        if os.path.exists(env):
            shutil.rmtree(env)
        # Built in place (a virtual environment records its own path), marked complete only at the end.
        subprocess.check_call([sys.executable, '-m', 'venv', env])
        subprocess.check_call([python, '-m', 'pip', 'install', '--disable-pip-version-check', '-q',
                               '--find-links', wheels, 'apache-flink==%s' % version])
        open(os.path.join(env, MARKER), 'w').close()

    _built_once(root, 'pyflink-%s' % version, env, build)
    return python


def main(argv=None):
    parser = argparse.ArgumentParser(description='Assemble FLINK_HOME from PyPI')
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--cache', help='download cache (default: $FLINKOPS_CACHE or ~/.cache/flinkops)')
    parser.add_argument('--dest', help='FLINK_HOME to create (default: <cache>/flink-<version>)')
    parser.add_argument('--python-env', metavar='DIR',
                        help='instead: create a PyFlink Python environment in DIR (prints its python)')
    args = parser.parse_args(argv)
    cache = os.path.expanduser(args.cache) if args.cache else None
    if args.python_env:
        print(ensure_python_env(args.version, cache=cache, dest=os.path.expanduser(args.python_env)))
        return
    dest = os.path.expanduser(args.dest) if args.dest else None
    print(ensure_flink_home(args.version, cache=cache, dest=dest))


if __name__ == '__main__':
    main()
