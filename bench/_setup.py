"""What every benchmark starts with: the collection importable, and a real Flink on loopback that it owns."""

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'build', 'collections'))

from tests.harness.cluster import FlinkCluster  # noqa: E402
from tests.integration.ansible_play import ensure_collection_link  # noqa: E402
from bench._ports import free_port_block  # noqa: E402

ensure_collection_link()


def start_cluster(version, slots, extra_config=None):
    """A started cluster in a fresh work directory under build/; returns (cluster, work dir). Stop it yourself.

    Its ports (REST, RPC) come from bench._ports (17000-17999).
    """
    port = free_port_block(10)
    work = tempfile.mkdtemp(prefix='bench-', dir=os.path.join(ROOT, 'build'))
    cluster = FlinkCluster(version, os.path.join(work, 'cluster'), rest_port=port, slots=slots,
                           extra_config=extra_config)
    cluster.start()
    return cluster, work
