"""Benchmark: what a forgotten history costs a new submission.

A non-HA JobManager refuses the id of every job it ran, also after it stopped
listing it (``jobstore.expiration-time``). flink_job then probes generation
g, g+1, g+3, g+7, ... so n forgotten instances cost about log2(n) refused
submissions, each of which runs the program's main() on the JobManager.

Against a real Flink on loopback this:

1. runs ``--history`` instances of one job under the flinkops ids of
   generations 0..n-1 (submitted and cancelled through REST, as earlier runs
   of flink_job would have left them),
2. waits until Flink lists none of them (``jobstore.expiration-time: 1``),
3. runs flink_job ``present`` (``restore_from: none``) in-process and reports
   the refused submissions, the generation it landed on and the wall time.

    .venv/bin/python -m bench.forgotten_generations [--version 2.3.0] [--history 100]

Prints a table; nothing is asserted.
"""

import argparse
import shutil
import sys
import time

import requests

from bench._setup import start_cluster  # noqa: E402
from tests.harness.jobs import build_jar  # noqa: E402
from tests.integration.conftest import EXAMPLE_CLASS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--history', type=int, default=100)
    args = parser.parse_args(argv)
    from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
    from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
    from ansible_collections.flinkops.flink.plugins.module_utils import _job as jobmod
    from ansible_collections.flinkops.flink.plugins.module_utils import _model as model

    jar = build_jar(args.version, 'v1')
    cluster, work = start_cluster(args.version, slots=4, extra_config={'jobstore.expiration-time': 1})
    done = False
    try:
        name = 'bench-forgotten'
        url = cluster.url
        with open(jar, 'rb') as f:
            up = requests.post(url + '/jars/upload', files={'jarfile': ('history.jar', f)}, timeout=60).json()
        jar_id = up['filename'].rsplit('/', 1)[-1]
        began = time.perf_counter()
        for g in range(args.history):
            jid = ident.job_id(name, g)
            r = requests.post(url + '/jars/%s/run' % jar_id, timeout=120,
                              json={'jobId': jid, 'entryClass': EXAMPLE_CLASS,
                                    'programArgsList': ['--job-name', name]})
            r.raise_for_status()
            requests.patch(url + '/jobs/%s?mode=cancel' % jid, timeout=30)
        setup = time.perf_counter() - began
        end = time.monotonic() + 120
        while time.monotonic() < end:
            jobs = requests.get(url + '/jobs/overview', timeout=10).json()['jobs']
            if not any(j['jid'].startswith(ident.name_hash(name)) for j in jobs):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError('Flink still lists the history after 120 s')

        client = api.FlinkClient([url], api.Deadline(600))
        desired = model.Desired(name=name, state='present', jar=jar, entry_class=EXAMPLE_CLASS,
                                args=['--job-name', name], restore_from='none')
        started = time.perf_counter()
        result = jobmod.JobReconciler(client, desired).run()
        took = time.perf_counter() - started
        runs = [e for e in client.log if e[0] == 'POST' and e[1].endswith('/run')]
        print('Flink %s, %d forgotten generations (set up in %.0f s)' % (args.version, args.history, setup))
        print('| forgotten instances | refused submissions | /run requests | landed on generation | wall time |')
        print('| --- | --- | --- | --- | --- |')
        row = (args.history, result.get('refused_submissions', 0), len(runs), result['generation'], took)
        print('| %d | %d | %d | %d | %.1f s |' % row)
        done = True
    finally:
        cluster.stop()
        if done:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print('cluster work directory (logs) kept: %s' % work, file=sys.stderr)


if __name__ == '__main__':
    main()
