"""`make demo` / `make stop`: a local Flink on localhost:8081 with the example job.

The cluster lives in ``demo/`` inside the project (git-ignored) and is started by
the test harness, which records the pids it owns; ``stop`` stops exactly those.
The deployment itself is the collection's own playbook, run with
ansible-playbook, so a second ``make demo`` reports ``changed=0``.
"""

import argparse
import os
import subprocess
import sys

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.harness.jobs import build_jar  # noqa: E402
from tests.integration.ansible_play import ansible_env, ensure_collection_link  # noqa: E402

DEMO_DIR = os.path.join(ROOT, 'demo')
CLUSTER_DIR = os.path.join(DEMO_DIR, 'cluster')
PORT = 8081
URL = 'http://localhost:%d' % PORT


def answering():
    try:
        return requests.get(URL + '/overview', timeout=3).status_code == 200
    except requests.RequestException:
        return False


def harness(*args):
    return subprocess.call([sys.executable, '-m', 'tests.harness.cluster'] + list(args), cwd=ROOT)


def start(version):
    os.makedirs(DEMO_DIR, exist_ok=True)
    if answering():
        print('Flink already answers on %s' % URL)
    else:
        rc = harness('start', '--version', version, '--workdir', CLUSTER_DIR, '--rest-port', str(PORT),
                     '--slots', '4')
        if rc != 0:
            return rc
    jar = build_jar(version, 'v1')
    ensure_collection_link()
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
           os.path.join(ROOT, 'playbooks', 'deploy_example.yml'), '-e', 'flink_url=%s' % URL,
           '-e', 'example_jar=%s' % jar]
    rc = subprocess.call(cmd, env=ansible_env(), cwd=ROOT)
    if rc == 0:
        print('\nFlink web UI: %s   (make stop stops it)' % URL)
    return rc


def stop():
    if not os.path.exists(os.path.join(CLUSTER_DIR, 'pids.json')):
        print('No demo cluster was started from this directory.')
        return 0
    return harness('stop', '--workdir', CLUSTER_DIR)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('start')
    s.add_argument('--version', default='2.3.0')
    sub.add_parser('stop')
    args = parser.parse_args(argv)
    if args.cmd == 'start':
        return start(args.version)
    return stop()


if __name__ == '__main__':
    sys.exit(main())
