"""Benchmark: an upgrade through flink_job against the same upgrade done by hand over REST.

On one real Flink on loopback, the example job is upgraded from one version to
the other (v1 -> v2 -> v1 -> ...), several rounds, the methods alternating (their
order rotates every round):

* ``flink_job state: upgraded`` through ``ansible-playbook`` (a one-task play),
  with the module's default health gate (``healthy_for: 10``);
* the same with ``healthy_for: 0`` (every task RUNNING once, no exception);
* by hand with ``requests``, what a careful operator does: ``POST /jobs/<id>/stop``
  (``drain: false``, ``targetDirectory``), poll ``GET /jobs/<id>/savepoints/<request-id>``
  until COMPLETED, ``POST /jars/<id>/run`` with ``savepointPath``, poll
  ``GET /jobs/overview`` until the new job is RUNNING with every task running.
  Polls are 0.5 s apart, as the module's. The run request carries the body
  flink_job would send (its job id and record), so that the next flink_job
  upgrade finds a job it manages, not a foreign one (which it would refuse to
  upgrade without ``allow_no_rollback``); that is a few hundred bytes more in
  one request.

Before every measurement the job runs the other version with a completed
checkpoint (``GET /jobs/<id>/checkpoints``), and the target version's jar is
already on the cluster (flink_job deletes the previous version's jar after an
upgrade; it is uploaded again outside the measurement), so both methods do the
same work. Right before each flink_job upgrade, a no-op run of flink_job
``present`` on the running job (as bench.noop_run does) times what
``ansible-playbook`` itself costs at that moment; the gate window is the
``verification.healthy_s`` the module reports. A flink_job run is broken down
into that start-up, the gate window, and the rest (the upgrade itself).

    .venv/bin/python -m bench.upgrade_vs_rest [--version 2.3.0] [--rounds 3]

Prints tables and writes them as JSON to ``build/bench/upgrade_vs_rest-<version>.json``.
Nothing is asserted beyond each upgrade having happened.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid

import requests

from bench._setup import ROOT, start_cluster  # noqa: E402
from tests.harness.jobs import build_jar  # noqa: E402
from tests.integration.ansible_play import FLINK_JOB, Ansible  # noqa: E402
from tests.integration.conftest import EXAMPLE_CLASS  # noqa: E402

POLL_S = 0.5            # the module's POLL_INTERVAL
WAIT_S = 180            # for anything one step waits for
METHODS = ('flink_job healthy_for 10 (default)', 'flink_job healthy_for 0', 'by hand over REST')
NOOP = 'flink_job present, no-op (ansible-playbook overhead)'


def stats(samples):
    return {'median': statistics.median(samples), 'min': min(samples), 'max': max(samples), 'n': len(samples),
            'samples': [round(s, 3) for s in samples]}


class Bench(object):

    def __init__(self, version, cluster, work, name='bench-upgrade', extra_args=()):
        from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
        from ansible_collections.flinkops.flink.plugins.module_utils import _model as model
        from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs

        self.url = cluster.url
        self.name = name
        self.args = ['--job-name', self.name] + list(extra_args)
        self.jars = {'v1': build_jar(version, 'v1'), 'v2': build_jar(version, 'v2')}
        self.desired = dict((v, model.Desired(name=self.name, state='upgraded', jar=jar, entry_class=EXAMPLE_CLASS,
                                              args=list(self.args)))
                            for v, jar in self.jars.items())
        self.jobs = FlinkJobs(api.FlinkClient([self.url], api.Deadline(24 * 3600)))
        self.http = requests.Session()
        self.ansible = Ansible(os.path.join(work, 'ansible'))
        self.current = None

    # -- helpers (outside the measurements) --------------------------------------------
    def get(self, path):
        r = self.http.get(self.url + path, timeout=30)
        r.raise_for_status()
        return r.json()

    def live(self):
        """The one live instance of the job (overview entry)."""
        live = [j for j in self.get('/jobs/overview')['jobs']
                if j['name'] == self.name and j['state'] not in ('FINISHED', 'CANCELED', 'FAILED')]
        if len(live) != 1:
            raise RuntimeError('expected one live instance of %s, found %r' % (self.name, live))
        return live[0]

    def play(self, variant, state, healthy_for=None):
        args = {'name': self.name, 'state': state, 'jar': self.jars[variant], 'entry_class': EXAMPLE_CLASS,
                'args': list(self.args), 'url': self.url}
        if healthy_for is not None:
            args['healthy_for'] = healthy_for
        # Clear the test suite's healthy_for default, so the module's own default (10) applies.
        started = time.perf_counter()
        result = self.ansible.run('flink_job', args, play_extra={'module_defaults': {FLINK_JOB: {}}})
        return time.perf_counter() - started, result

    def prepare(self, target):
        """The target version's jar on the cluster; the job RUNNING (every task) with a completed checkpoint."""
        sha = self.desired[target].spec.jar_sha256
        if self.jobs.find_jar(sha) is None:
            self.jobs.upload_jar(self.jars[target], sha)
        end = time.monotonic() + WAIT_S
        while True:
            job = self.live()
            tasks = job.get('tasks') or {}
            if job['state'] == 'RUNNING' and tasks.get('total') and tasks.get('running') == tasks.get('total'):
                counts = (self.get('/jobs/%s/checkpoints' % job['jid']).get('counts') or {})
                if (counts.get('completed') or 0) >= 1:
                    return job['jid']
            if time.monotonic() > end:
                raise RuntimeError('job %s: no completed checkpoint with every task running within %d s'
                                   % (job['jid'], WAIT_S))
            time.sleep(POLL_S)

    # -- the measurements -----------------------------------------------------------------
    def by_flink_job(self, target, healthy_for):
        seconds, r = self.play(target, 'upgraded', healthy_for)
        if r.failed or not r.get('changed') or r.get('action') != 'upgraded':
            raise RuntimeError('flink_job did not upgrade (%s): %s\n%s' % (r.get('action'), r.get('msg'), r.output))
        return seconds, {'healthy_s': (r.get('verification') or {}).get('healthy_s'), 'job_id': r.get('job_id')}

    def by_hand(self, target):
        from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg
        from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
        from ansible_collections.flinkops.flink.plugins.module_utils import _plan as planner

        old = self.live()['jid']
        jar_id = self.jobs.find_jar(self.desired[target].spec.jar_sha256)
        generation = planner.next_generation([j for j in self.jobs.overview() if ident.belongs_to(j['id'], self.name)])
        jid = ident.job_id(self.name, generation)
        version = self.desired[target].version()
        salt = cfg.new_salt()
        self.jobs.run_body(version, jid, '/warm', version.record('/warm', salt=salt))  # caches cluster config reads
        target_dir = '%s/hand-%s' % (self.jobs.default_savepoint_dir().rstrip('/'), uuid.uuid4().hex)
        before = len(self.jobs.client.log)
        http, url = self.http, self.url

        started = time.perf_counter()
        r = http.post('%s/jobs/%s/stop' % (url, old), json={'drain': False, 'targetDirectory': target_dir},
                      timeout=30)
        r.raise_for_status()
        trigger = r.json()['request-id']
        end = time.monotonic() + WAIT_S
        while True:
            status = http.get('%s/jobs/%s/savepoints/%s' % (url, old, trigger), timeout=30).json()
            if (status.get('status') or {}).get('id') == 'COMPLETED':
                op = status.get('operation') or {}
                if not op.get('location'):
                    raise RuntimeError('stop-with-savepoint failed: %r' % op.get('failure-cause'))
                savepoint = op['location']
                break
            if time.monotonic() > end:
                raise RuntimeError('savepoint not COMPLETED within %d s' % WAIT_S)
            time.sleep(POLL_S)
        body = self.jobs.run_body(version, jid, savepoint, version.record(savepoint, salt=salt))
        r = http.post('%s/jars/%s/run' % (url, jar_id), json=body, timeout=120)
        r.raise_for_status()
        new = r.json()['jobid']
        end = time.monotonic() + WAIT_S
        while True:
            jobs = http.get(url + '/jobs/overview', timeout=30).json()['jobs']
            job = next((j for j in jobs if j['jid'] == new), None)
            if job is not None:
                if job['state'] in ('FAILED', 'CANCELED', 'FINISHED'):
                    raise RuntimeError('the new job %s ended as %s' % (new, job['state']))
                tasks = job.get('tasks') or {}
                if job['state'] == 'RUNNING' and tasks.get('total') and tasks['running'] == tasks['total']:
                    break
            if time.monotonic() > end:
                raise RuntimeError('new job %s not RUNNING with every task within %d s' % (new, WAIT_S))
            time.sleep(POLL_S)
        seconds = time.perf_counter() - started

        if len(self.jobs.client.log) != before:
            raise RuntimeError('building the run body sent requests inside the measurement')
        return seconds, {'job_id': new, 'savepoint': savepoint}

    def measure(self, method, target):
        if method == METHODS[0]:
            return self.by_flink_job(target, None)
        if method == METHODS[1]:
            return self.by_flink_job(target, 0)
        return self.by_hand(target)

    def noop(self):
        seconds, r = self.play(self.current, 'present')
        if r.failed or r.get('changed'):
            raise RuntimeError('the no-op run was not a no-op: %s\n%s' % (r.get('msg'), r.output))
        return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    cluster, work = start_cluster(args.version, slots=2)
    done = False
    try:
        b = Bench(args.version, cluster, work)
        unused, first = b.play('v1', 'present')
        if first.failed or not first.get('changed'):
            raise RuntimeError('first deployment failed: %s\n%s' % (first.get('msg'), first.output))
        b.current = 'v1'
        samples = dict((m, []) for m in METHODS + (NOOP,))
        parts = dict((m, {'overhead': [], 'gate': [], 'rest': []}) for m in METHODS[:2])
        runs = []
        for rnd in range(args.rounds):
            order = METHODS[rnd % len(METHODS):] + METHODS[:rnd % len(METHODS)]
            for method in order:
                target = 'v2' if b.current == 'v1' else 'v1'
                from_job = b.prepare(target)
                load = os.getloadavg()[0]
                noop = None
                if method in parts:
                    # ansible-playbook's own cost, measured next to this run: a no-op run on the running job.
                    noop = b.noop()
                    samples[NOOP].append(noop)
                took, info = b.measure(method, target)
                b.current = target
                samples[method].append(took)
                run = dict(info, round=rnd + 1, method=method, seconds=round(took, 3), from_job_id=from_job,
                           upgrade='%s -> %s' % ('v1' if target == 'v2' else 'v2', target), loadavg_1m=load)
                if method in parts:
                    gate = info['healthy_s'] or 0.0
                    run.update(noop_s=round(noop, 3), gate_s=gate, rest_s=round(took - noop - gate, 3))
                    parts[method]['overhead'].append(noop)
                    parts[method]['gate'].append(gate)
                    parts[method]['rest'].append(took - noop - gate)
                runs.append(run)
                print('round %d: %-36s %s  %.2f s%s (load %.1f)'
                      % (rnd + 1, method, run['upgrade'], took,
                         ', no-op run next to it %.2f s' % noop if noop is not None else '', load), file=sys.stderr)
        load_after = os.getloadavg()

        s = dict((m, stats(v)) for m, v in samples.items())
        hand = s[METHODS[2]]['median']
        loads = [r['loadavg_1m'] for r in runs] + [load_before[0], load_after[0]]
        print('Flink %s, %d rounds, %d cores, 1-minute load average %.1f-%.1f during the run'
              % (args.version, args.rounds, os.cpu_count(), min(loads), max(loads)))
        print('| method | median | min | max | median minus by hand |')
        print('| --- | --- | --- | --- | --- |')
        for m in METHODS + (NOOP,):
            diff = '%+.2f s' % (s[m]['median'] - hand) if m != NOOP else '-'
            print('| %s | %.2f s | %.2f s | %.2f s | %s |' % (m, s[m]['median'], s[m]['min'], s[m]['max'], diff))
        print()
        print('flink_job broken down, per run then median (min-max):')
        print('| part | healthy_for 10 | healthy_for 0 |')
        print('| --- | --- | --- |')
        breakdown = {}
        for key, label in (('overhead', 'ansible-playbook start-up (the no-op run next to it)'),
                           ('gate', 'gate window (healthy_s the module reports)'),
                           ('rest', 'the upgrade itself (the rest)')):
            cells = []
            for m in METHODS[:2]:
                st = stats(parts[m][key])
                breakdown.setdefault(m, {})[key] = st
                cells.append('%.2f s (%.2f-%.2f)' % (st['median'], st['min'], st['max']))
            print('| %s | %s | %s |' % (label, cells[0], cells[1]))
        print('| by hand over REST, for comparison | %.2f s (%.2f-%.2f) | same |'
              % (hand, s[METHODS[2]]['min'], s[METHODS[2]]['max']))
        print('(median healthy_for 10 minus median healthy_for 0: %.2f s)'
              % (s[METHODS[0]]['median'] - s[METHODS[1]]['median']))

        out_dir = os.path.join(ROOT, 'build', 'bench')
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, 'upgrade_vs_rest-%s.json' % args.version)
        with open(out, 'w') as f:
            json.dump({'bench': 'upgrade_vs_rest', 'flink_version': args.version, 'rounds': args.rounds,
                       'cpu_count': os.cpu_count(), 'loadavg_before': load_before, 'loadavg_after': load_after,
                       'measured_at': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'methods': s,
                       'breakdown': breakdown,
                       'runs': runs}, f, indent=2)
        print('written to %s' % os.path.relpath(out, ROOT))
        done = True
    finally:
        cluster.stop()
        if done:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print('cluster work directory (logs) kept: %s' % work, file=sys.stderr)


if __name__ == '__main__':
    main()
