# Make the working tree importable as ansible_collections.flinkops.flink for plain pytest.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_root():
    env = os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep)[0]
    if env and os.path.isdir(os.path.join(env, 'ansible_collections', 'flinkops', 'flink')):
        return env
    base = os.path.join(ROOT, 'build', 'collections')
    link = os.path.join(base, 'ansible_collections', 'flinkops', 'flink')
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return base


sys.path.insert(0, _collections_root())
