"""Run `ansible-test sanity` on a copy of the collection, on a machine without Docker.

1. Put a get-pip stand-in where ansible-test looks for its cached bootstrap
   script (it cannot download the real one here), see get_pip_standin.py.
2. Copy the tracked and new (not ignored) files into
   <tmp>/flinkops-sanity-<hash>-core-<X.Y.Z>/ansible_collections/flinkops/flink, where ansible-test
   wants them. The directory is keyed by the repository, this interpreter and its ansible-core
   release, so runs under different cores (make sanity-cores, build/venvs/core-*) never share a copy.
3. Run `ansible-test sanity --venv` (the one next to this interpreter) with this interpreter's
   Python version.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dest():
    from ansible.release import __version__ as core
    key = hashlib.sha256(('%s\0%s\0%s' % (ROOT, sys.executable, core)).encode()).hexdigest()[:8]
    # Outside the repository: inside it, ansible-test would ask git and see only ignored files.
    return os.path.join(tempfile.gettempdir(), 'flinkops-sanity-%s-core-%s' % (key, core),
                        'ansible_collections', 'flinkops', 'flink')


DEST = _dest()

# Sanity tests that cannot run here, for reasons outside the collection's code.
SKIP = [
    # Needs the 'shellcheck' binary, which is not on the machine; the repository's
    # shell scripts are only the CI entry point.
    'shellcheck',
]


def pip_bootstrap_version():
    import ansible_test
    path = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(path) as f:
        m = re.search(r"default_packages = dict\(\s*pip='([^']+)'", f.read())
    if not m:
        raise SystemExit('cannot find the pip version ansible-test bootstraps in %s' % path)
    return m.group(1)


def install_standin():
    # The pip release differs per core (2.16 and 2.17: 23.1.2, with setuptools and wheel; 2.18 and 2.19: 24.2),
    # so does the cache file's name; the stand-in installs whichever release it is asked for.
    version = pip_bootstrap_version()
    cache = os.path.expanduser('~/.ansible/test/cache')
    os.makedirs(cache, exist_ok=True)
    target = os.path.join(cache, 'get_pip_%s.py' % version.replace('.', '_'))
    # Written aside and renamed: a sanity run under another core may be reading the same file right now.
    tmp = '%s.%d.tmp' % (target, os.getpid())
    shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'get_pip_standin.py'), tmp)
    os.replace(tmp, target)


def copy_collection():
    files = subprocess.check_output(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'],
                                    cwd=ROOT).decode().split('\0')
    if os.path.exists(DEST):
        shutil.rmtree(DEST)
    for rel in files:
        if not rel or not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        target = os.path.join(DEST, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), target)


def main():
    install_standin()
    copy_collection()
    python = '%d.%d' % sys.version_info[:2]
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-test'), 'sanity', '--venv', '--python', python,
           '--color', 'no']
    for name in SKIP:
        cmd += ['--skip-test', name]
    cmd += sys.argv[1:]
    print(' '.join(cmd), flush=True)
    return subprocess.call(cmd, cwd=DEST)


if __name__ == '__main__':
    sys.exit(main())
