"""Benchmark: what a repeated run of flink_job costs when the job already runs.

The agent this collection replaces re-runs its playbook every few minutes, so
the no-op run is the hot path. This measures, against a real Flink on loopback:

* the reconciler alone (module_utils in-process): wall time and REST requests
  of a no-op ``present``;
* the whole module through ``ansible-playbook`` (process start, module
  transfer, the run itself) for a no-op ``present``.

    .venv/bin/python -m bench.noop_run [--version 2.3.0] [--runs 20]

Prints a table; nothing is asserted (tests do not time things).
"""

import argparse
import os
import statistics
import time

from bench._setup import start_cluster  # noqa: E402
from tests.harness.jobs import build_jar  # noqa: E402
from tests.integration.ansible_play import Ansible  # noqa: E402
from tests.integration.conftest import EXAMPLE_CLASS  # noqa: E402


def summary(samples):
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(round(0.9 * (len(samples) - 1))))]
    return '%.1f ms median, %.1f ms p90, %.1f ms max' % (
        statistics.median(samples) * 1000, p90 * 1000, samples[-1] * 1000)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--runs', type=int, default=20)
    args = parser.parse_args(argv)
    from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
    from ansible_collections.flinkops.flink.plugins.module_utils import _job as jobmod
    from ansible_collections.flinkops.flink.plugins.module_utils import _model as model

    jar = build_jar(args.version, 'v1')
    cluster, work = start_cluster(args.version, slots=2)
    try:
        name = 'bench-noop'
        job = {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name],
               'url': cluster.url}
        ansible = Ansible(os.path.join(work, 'ansible'))
        first = ansible.run('flink_job', job)
        assert first['changed'], first.output

        times, requests_per_run = [], []
        for dummy in range(args.runs):
            client = api.FlinkClient([cluster.url], api.Deadline(60))
            desired = model.Desired(name=name, state='present', jar=jar, entry_class=EXAMPLE_CLASS,
                                    args=['--job-name', name])
            started = time.perf_counter()
            result = jobmod.JobReconciler(client, desired).run()
            times.append(time.perf_counter() - started)
            requests_per_run.append(len(client.log))
            assert not result['changed']

        playbook = []
        for dummy in range(max(3, args.runs // 4)):
            started = time.perf_counter()
            r = ansible.run('flink_job', job)
            playbook.append(time.perf_counter() - started)
            assert not r['changed'], r.output

        print('Flink %s, job running, %d no-op runs' % (args.version, args.runs))
        print('| what | time | REST requests per run |')
        print('| --- | --- | --- |')
        print('| reconciler (in-process) | %s | %s |' % (summary(times), sorted(set(requests_per_run))))
        print('| flink_job via ansible-playbook (one-task play) | %s | - |' % summary(playbook))
    finally:
        cluster.stop()


if __name__ == '__main__':
    main()
