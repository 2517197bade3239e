"""Benchmark: flinkops.flink against what users do today, in one session on one Flink cluster (issue 13).

One Flink (loopback, ports 17000-17999, 64 slots, a 3 GiB TaskManager) and, on it, one comparison after the
other; within a comparison the variants alternate round by round (their order rotates), so drift on the
machine hits every variant alike:

1. ``noop``: a no-op ``flink_job`` play (the job runs already) against a play with one ``ansible.builtin.uri``
   GET of ``/jobs/overview``, the floor of any task that talks to Flink's REST API. A play with no task is
   measured next to them: ``ansible-playbook``'s own start-up.
2. ``first``: a first submission, ``flink_job`` with ``wait: true`` (default) and ``healthy_for: 0`` (it
   returns once every task is RUNNING and the job reported no failure; the default ``healthy_for: 10`` would add
   a 10 s window), the jar not yet on the cluster, against a play whose ``command`` task runs
   ``flink run -d -m 127.0.0.1:<port>`` from the distribution (returns once Flink accepted the job).
3. ``upgrade``: ``flink_job state: upgraded`` (``healthy_for: 0``) minus the floor measured in the same round,
   against stop-with-savepoint, run from it and poll until every task is RUNNING, by hand over REST
   (bench.upgrade_vs_rest.Bench, which also prepares each round: target jar on the cluster, a checkpoint taken).
4. ``fleet``: N declared jobs already running (default 50), one play with the ``flinkops.flink.flink_jobs`` role
   and N items, against one play with one ``uri`` task and against one play with a ``uri`` loop of N
   (``GET /jobs/<id>`` per job).
5. ``set``: M jobs (default 10) upgraded in one ``flink_job_set`` run (``max_parallel`` M, ``healthy_for: 0``)
   against M ``flink_job state: upgraded`` tasks (``healthy_for: 0``) in one play; the version alternates.
6. ``upload``: peak memory of uploading a 200 MiB jar the way flink_job does (streamed), in a fresh process
   (bench.upload_memory), next to requests' ``files=``.

Every play runs ``ansible-playbook -i localhost, -c local`` with ``ansible_python_interpreter:
"{{ ansible_playbook_python }}"`` and ANSIBLE_COLLECTIONS_PATH=build/collections; the plays are exactly the
plays a user writes (the bench_record callback times their tasks without adding one). Every job the benchmark
starts runs the example job with ``--sleep-ms 500``. Results: ``build/bench/last.json`` and
``build/bench/last.md``; ``python -m bench.report --readme README.md`` puts the table into the README.

    .venv/bin/python -m bench.compare [--version 2.3.0] [--reps 5] [--items noop first ...]
    .venv/bin/python -m bench.compare --smoke      # a few seconds per item: 2 reps, 3+2 jobs, 8 MiB

The benchmark owns its cluster's processes by pid and stops exactly those (finally); the Flink CLI runs are
children of ansible-playbook that exit by themselves.
"""

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import time
import traceback

import requests

from bench._setup import ROOT, start_cluster  # noqa: E402
from bench._plays import Plays, module_direct, play, trace  # noqa: E402
from tests.harness.flinkdist import ensure_flink_home  # noqa: E402
from tests.harness.jobs import build_jar  # noqa: E402
from tests.integration.conftest import EXAMPLE_CLASS  # noqa: E402

ITEMS = ('noop', 'first', 'upgrade', 'set', 'fleet', 'upload')
TERMINAL = ('FINISHED', 'CANCELED', 'FAILED')
SLEEP_ARGS = ['--sleep-ms', '500']
MIB = 1024 * 1024
OUT_DIR = os.path.join(ROOT, 'build', 'bench')


# -- statistics ---------------------------------------------------------------------------------------------------
def stats(samples):
    s = sorted(samples)
    n = len(s)
    if not n:
        return {'n': 0}
    return {'n': n, 'median': round(statistics.median(s), 3), 'p90': round(s[max(0, int(math.ceil(0.9 * n)) - 1)], 3),
            'min': round(s[0], 3), 'max': round(s[-1], 3), 'samples': [round(x, 3) for x in samples]}


def rotated(variants, rnd):
    k = rnd % len(variants)
    return list(variants[k:]) + list(variants[:k])


def verdict(ratio, target, lower_is_better=True):
    if target is None or ratio is None:
        return '-'
    return 'PASS' if (ratio <= target if lower_is_better else ratio >= target) else 'MISS'


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def split_medians(runs):
    """Median start-up / tasks / tail of a list of PlayRun.split() dicts."""
    out = {}
    for key in ('startup_s', 'tasks_s', 'tail_s'):
        vals = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(statistics.median(vals), 3) if vals else None
    per_task = [r['task_s'] for r in runs if r.get('task_s')]
    if per_task and all(len(t) == len(per_task[0]) for t in per_task):
        out['task_s'] = [round(statistics.median(col), 3) for col in zip(*per_task)]
        out['task_names'] = runs[0].get('task_names')
    return out


# -- machine ------------------------------------------------------------------------------------------------------
def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    ram = None
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    ram = round(int(line.split()[1]) / 1024.0 / 1024.0, 1)
    except OSError:
        pass
    from ansible.release import __version__ as ansible_core
    return {'cpu': cpu, 'cores': os.cpu_count(), 'ram_gib': ram, 'ansible_core': ansible_core,
            'python': platform.python_version(), 'os': platform.platform()}


# -- the session --------------------------------------------------------------------------------------------------
class Session(object):

    def __init__(self, args, cluster, work):
        from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
        from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs

        self.args = args
        self.version = args.version
        self.cluster = cluster
        self.work = work
        self.url = cluster.url
        self.http = requests.Session()
        self.plays = Plays(os.path.join(work, 'plays'))
        self.jars = {'v1': build_jar(args.version, 'v1'), 'v2': build_jar(args.version, 'v2')}
        self.flink_home = ensure_flink_home(args.version)
        self.api = FlinkJobs(api.FlinkClient([self.url], api.Deadline(24 * 3600)))
        self.results = {}

    # -- REST helpers (outside every measurement) ---------------------------------------------------------------
    def get(self, path):
        r = self.http.get(self.url + path, timeout=30)
        r.raise_for_status()
        return r.json()

    def overview(self):
        return self.get('/jobs/overview')['jobs']

    def live(self, jobs=None):
        return [j for j in (jobs if jobs is not None else self.overview()) if j['state'] not in TERMINAL]

    def wait_running(self, names, timeout=300):
        """Until each name has exactly one live instance, RUNNING with every task running; {name: jid}."""
        names = set(names)
        end = time.monotonic() + timeout
        while True:
            by_name = {}
            for j in self.live():
                by_name.setdefault(j['name'], []).append(j)
            ok = {}
            for n in names:
                inst = by_name.get(n, [])
                tasks = inst[0].get('tasks') or {} if len(inst) == 1 else {}
                if (len(inst) == 1 and inst[0]['state'] == 'RUNNING' and tasks.get('total')
                        and tasks.get('running') == tasks.get('total')):
                    ok[n] = inst[0]['jid']
            if len(ok) == len(names):
                return ok
            if time.monotonic() > end:
                raise RuntimeError('not every job RUNNING within %d s: missing %s'
                                   % (timeout, sorted(names - set(ok))[:10]))
            time.sleep(0.2)

    def cancel(self, names, timeout=120):
        names = set(names)
        for j in self.live():
            if j['name'] in names:
                self.http.patch('%s/jobs/%s?mode=cancel' % (self.url, j['jid']), timeout=30)
        end = time.monotonic() + timeout
        while any(j['name'] in names for j in self.live()):
            if time.monotonic() > end:
                raise RuntimeError('jobs %s still live %d s after cancel' % (sorted(names)[:5], timeout))
            time.sleep(0.2)

    def delete_jars(self):
        for f in self.get('/jars').get('files') or []:
            self.http.delete('%s/jars/%s' % (self.url, f['id']), timeout=30)

    def ensure_jar(self, variant):
        from ansible_collections.flinkops.flink.plugins.module_utils._model import check_jar
        sha = check_jar(self.jars[variant])
        if self.api.find_jar(sha) is None:
            self.api.upload_jar(self.jars[variant], sha)

    # -- plays ----------------------------------------------------------------------------------------------------
    def job_args(self, name, variant='v1', **extra):
        a = {'name': name, 'url': self.url, 'jar': self.jars[variant], 'entry_class': EXAMPLE_CLASS,
             'args': ['--job-name', name] + SLEEP_ARGS}
        a.update(extra)
        return a

    def uri_task(self, path='/jobs/overview'):
        return {'name': 'GET %s' % path, 'ansible.builtin.uri': {'url': self.url + path}}

    def flink_job_task(self, name, variant='v1', **extra):
        return {'name': 'flink_job %s' % name, 'flinkops.flink.flink_job': self.job_args(name, variant, **extra)}

    def run(self, playbook, label, changed=None):
        path = self.plays.write(playbook, label)
        return self.plays.run(path).check(changed=changed, what=label)

    def traced(self, playbook, label, reps=3, changed=None, before=None):
        """Run ``playbook`` ``reps`` times with ANSIBLE_DEBUG=1 (not measured: the debug output slows it a bit)
        and return the medians of bench._plays.trace's phases per task."""
        path = self.plays.write(playbook, label + '-traced')
        runs = []
        for rep in range(reps):
            if before is not None:
                before(rep)
            out = self.plays.run(path, env={'ANSIBLE_DEBUG': '1'}).check(changed=changed, what=label + ' (traced)')
            runs.append(trace(out.output))
        tasks = []
        for i, t in enumerate(runs[0]['tasks']):
            col = [r['tasks'][i] for r in runs if len(r['tasks']) > i]
            tasks.append(dict([('action', t['action'])] + [
                (k, round(statistics.median(c[k] for c in col), 3)) for k in ('build_s', 'exec_s', 'other_s')]))
        return {'reps': reps, 'tasks': tasks,
                'startup_s': round(statistics.median(r['startup_s'] or 0 for r in runs), 3)}

    def measure_rounds(self, key, variants, reps, warmup=0, before=None, after=None):
        """Run ``variants`` ({name: callable(round) -> PlayRun or (seconds, info)}) ``reps`` rounds, rotated.

        Returns {name: [seconds, ...]}, {name: [split, ...]}, {name: [info, ...]}.
        """
        names = list(variants)
        seconds = dict((n, []) for n in names)
        splits = dict((n, []) for n in names)
        infos = dict((n, []) for n in names)
        for rnd in range(-warmup, reps):
            for n in rotated(names, rnd):
                if before is not None:
                    before(n, rnd)
                out = variants[n](rnd)
                if hasattr(out, 'split'):
                    took, split, info = out.seconds, out.split(), {}
                else:
                    took, info = out
                    split = None
                if after is not None:
                    info = dict(info or {}, **(after(n, rnd, out) or {}))
                detail = '' if split is None else ' (start-up %.2f, tasks %.2f)' % (split['startup_s'] or 0,
                                                                                    split['tasks_s'])
                log('%s round %d%s: %-44s %.2f s%s'
                    % (key, rnd + 1 if rnd >= 0 else 0, ' (warm-up)' if rnd < 0 else '', n, took, detail))
                if rnd >= 0:
                    seconds[n].append(took)
                    if split is not None:
                        splits[n].append(split)
                    infos[n].append(info)
        return seconds, splits, infos

    # -- 1. no-op run against the floor -----------------------------------------------------------------------------
    def item_noop(self):
        name = 'bench-noop'
        self.run(play([self.flink_job_task(name, healthy_for=0)]), 'noop-deploy', changed=True)
        self.wait_running([name])
        variants = {
            'flink_job, no-op (job running)': lambda r: self.run(play([self.flink_job_task(name)]), 'noop',
                                                                 changed=False),
            'uri GET /jobs/overview (the floor)': lambda r: self.run(play([self.uri_task()]), 'floor',
                                                                     changed=False),
            'play with no task (ansible-playbook start-up)': lambda r: self.run(play([]), 'empty'),
        }
        sec, splits, unused = self.measure_rounds('noop', variants, self.args.reps_fast, warmup=1)
        names = list(variants)
        fj, floor = stats(sec[names[0]]), stats(sec[names[1]])
        ratio = fj['median'] / floor['median']
        self.results['noop'] = {
            'title': 'No-op flink_job play vs one uri GET /jobs/overview play',
            'variants': dict((n, stats(sec[n])) for n in names),
            'splits': dict((n, split_medians(splits[n])) for n in names),
            'ours': names[0], 'theirs': names[1], 'ratio': round(ratio, 3), 'target': 1.1,
            'verdict': verdict(ratio, 1.1), 'profile': self.noop_profile(name),
        }

    def noop_profile(self, name):
        """The reconciler in-process (no Ansible): wall time and requests of a no-op run; module import time."""
        import subprocess
        from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
        from ansible_collections.flinkops.flink.plugins.module_utils import _job as jobmod
        from ansible_collections.flinkops.flink.plugins.module_utils import _model as model

        times, reqs = [], None
        for unused in range(10):
            client = api.FlinkClient([self.url], api.Deadline(60))
            desired = model.Desired(name=name, state='present', jar=self.jars['v1'], entry_class=EXAMPLE_CLASS,
                                    args=['--job-name', name] + SLEEP_ARGS)
            started = time.perf_counter()
            result = jobmod.JobReconciler(client, desired).run()
            times.append(time.perf_counter() - started)
            reqs = ['%s %s' % (m, p) for m, p, unused_s in client.log]
            if result['changed']:
                raise RuntimeError('in-process no-op changed something: %r' % result)
        code = ('import time; t=time.perf_counter(); '
                'import ansible_collections.flinkops.flink.plugins.modules.flink_job; '
                'print(time.perf_counter()-t)')
        imports, imports_basic = [], []
        # what every module imports (uri as well): the rest of flink_job's import time is its own
        code_basic = ('import time; t=time.perf_counter(); import ansible.module_utils.basic; '
                      'print(time.perf_counter()-t)')
        for unused in range(3):
            for c, into in ((code, imports), (code_basic, imports_basic)):
                out = subprocess.run([sys.executable, '-c', c], stdout=subprocess.PIPE, check=True,
                                     env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'build', 'collections')))
                into.append(float(out.stdout.decode().strip()))
        direct_fj, r = module_direct('ansible_collections.flinkops.flink.plugins.modules.flink_job',
                                     self.job_args(name), reps=5)
        if r.get('changed'):
            raise RuntimeError('flink_job run directly changed something: %r' % r)
        direct_uri, unused = module_direct('ansible.modules.uri', {'url': self.url + '/jobs/overview'}, reps=5)
        return {'reconciler_s': stats(times), 'requests': reqs, 'import_flink_job_s': stats(imports),
                'import_basic_s': stats(imports_basic),
                'flink_job_process_s': stats(direct_fj), 'uri_process_s': stats(direct_uri),
                'ansiballz_bytes': self.payload_sizes(name),
                'trace_flink_job': self.traced(play([self.flink_job_task(name)]), 'noop', changed=False),
                'trace_uri': self.traced(play([self.uri_task()]), 'floor', changed=False)}

    def payload_sizes(self, name):
        """Size of the AnsiballZ file Ansible builds and ships for each module (one kept run, not timed)."""
        keep = os.path.join(self.work, 'kept-remote-files')
        os.makedirs(keep, exist_ok=True)
        path = self.plays.write(play([self.flink_job_task(name), self.uri_task()]), 'payload')
        self.plays.run(path, env={'ANSIBLE_KEEP_REMOTE_FILES': '1', 'ANSIBLE_REMOTE_TMP': keep}).check(changed=False)
        sizes = {}
        for top, unused, files in os.walk(keep):
            for f in files:
                if f.startswith('AnsiballZ_') and f.endswith('.py'):
                    sizes[f[len('AnsiballZ_'):-3]] = os.path.getsize(os.path.join(top, f))
        shutil.rmtree(keep, ignore_errors=True)
        return sizes

    # -- 2. first submission against flink run -d -----------------------------------------------------------------
    def item_first(self):
        flink = os.path.join(self.flink_home, 'bin', 'flink')
        cli_log = os.path.join(self.work, 'cli-log')
        os.makedirs(cli_log, exist_ok=True)
        port = self.url.rsplit(':', 1)[1]
        names = {}

        def fj(rnd):
            n = names['fj'] = 'bench-first-fj-%d' % (rnd + 10)
            return self.run(play([self.flink_job_task(n, healthy_for=0)]), 'first-flink_job', changed=True)

        def cli(rnd):
            n = names['cli'] = 'bench-first-cli-%d' % (rnd + 10)
            argv = [flink, 'run', '-d', '-m', '127.0.0.1:%s' % port, '-c', EXAMPLE_CLASS, self.jars['v1'],
                    '--job-name', n] + SLEEP_ARGS
            task = {'name': 'flink run -d', 'ansible.builtin.command': {'argv': argv},
                    # Logs, and the JAAS file the CLI writes on every run, go to the benchmark's own directory.
                    'environment': {'FLINK_LOG_DIR': cli_log, 'JVM_ARGS': '-Djava.io.tmpdir=%s' % cli_log}}
            return self.run(play([task]), 'first-cli', changed=True)

        variants = {'flink_job, first submission (healthy_for 0)': fj, 'flink run -d (Flink CLI)': cli}
        keys = dict(zip(variants, ('fj', 'cli')))

        def before(variant, rnd):
            self.delete_jars()   # a first submission: the jar is not on the cluster yet

        def after(variant, rnd, out):
            n = names[keys[variant]]
            t0 = time.perf_counter()
            self.wait_running([n])
            extra = time.perf_counter() - t0
            self.cancel([n])
            return {'until_running_after_play_s': round(extra, 3)}

        sec, splits, infos = self.measure_rounds('first', variants, self.args.reps, warmup=1, before=before,
                                                 after=after)
        vn = list(variants)
        ratio = stats(sec[vn[0]])['median'] / stats(sec[vn[1]])['median']
        cli_more = [i['until_running_after_play_s'] for i in infos[vn[1]]]
        fj_more = [i['until_running_after_play_s'] for i in infos[vn[0]]]
        self.results['first'] = {
            'title': 'First submission: flink_job (wait, healthy_for 0) vs a play running flink run -d',
            'variants': dict((n, stats(sec[n])) for n in vn),
            'splits': dict((n, split_medians(splits[n])) for n in vn),
            'ours': vn[0], 'theirs': vn[1], 'ratio': round(ratio, 3), 'target': None, 'verdict': '-',
            'notes': {'cli_until_running_after_play_s': stats(cli_more),
                      'flink_job_until_running_after_play_s': stats(fj_more)},
        }

    # -- 3. an upgrade against the same steps by hand ---------------------------------------------------------------
    def item_upgrade(self):
        from bench.upgrade_vs_rest import Bench
        b = Bench(self.version, self.cluster, os.path.join(self.work, 'upgrade'), name='bench-upgrade',
                  extra_args=SLEEP_ARGS)
        self.run(play([self.flink_job_task(b.name, 'v1', healthy_for=0)]), 'upgrade-deploy', changed=True)
        b.current = 'v1'
        floor_of_round = {}

        def target():
            return 'v2' if b.current == 'v1' else 'v1'

        def floor(rnd):
            out = self.run(play([self.uri_task()]), 'floor', changed=False)
            floor_of_round[rnd] = out.seconds
            return out

        def fj(rnd):
            t = target()
            b.prepare(t)
            out = self.run(play([self.flink_job_task(b.name, t, state='upgraded', healthy_for=0)]), 'upgrade',
                           changed=True)
            action = out.results()[0][1].get('action')
            if action != 'upgraded':
                raise RuntimeError('flink_job did not upgrade: %r' % out.results())
            b.current = t
            return out

        def hand(rnd):
            t = target()
            b.prepare(t)
            took, info = b.by_hand(t)
            b.current = t
            return took, info

        variants = {'uri GET /jobs/overview (the floor)': floor,
                    'flink_job state=upgraded (healthy_for 0)': fj,
                    'by hand over REST (stop-with-savepoint, run, poll)': hand}
        sec, splits, unused = self.measure_rounds('upgrade', variants, self.args.reps, warmup=0)
        vn = list(variants)
        minus = [f - floor_of_round[r] for r, f in enumerate(sec[vn[1]])]
        ours = stats(minus)
        ratio = ours['median'] / stats(sec[vn[2]])['median']
        out = dict((n, stats(sec[n])) for n in vn)
        out['flink_job upgrade minus the floor (same round)'] = ours
        self.results['upgrade'] = {
            'title': 'Upgrade: flink_job (healthy_for 0) minus the floor vs stop-with-savepoint + run + RUNNING by hand',
            'variants': out, 'splits': dict((n, split_medians(splits[n])) for n in vn if splits[n]),
            'ours': 'flink_job upgrade minus the floor (same round)', 'theirs': vn[2],
            'ratio': round(ratio, 3), 'target': None, 'verdict': '-',
        }
        self.cancel([b.name])

    # -- 5. M upgrades in one flink_job_set run against M flink_job tasks -------------------------------------------
    def item_set(self):
        m = self.args.set_jobs
        names = ['bench-set-%02d' % i for i in range(m)]
        current = {'v': 'v1'}

        def set_task(variant, state, healthy_for=0):
            jobs = []
            for n in names:
                j = self.job_args(n, variant, state=state, healthy_for=healthy_for)
                j.pop('url')
                jobs.append(j)
            return {'name': 'flink_job_set, %d jobs' % m, 'flinkops.flink.flink_job_set': {
                'url': self.url, 'max_parallel': self.args.max_parallel, 'jobs': jobs}}

        self.run(play([set_task('v1', 'present')]), 'set-deploy', changed=True)
        self.wait_running(names)

        def target():
            return 'v2' if current['v'] == 'v1' else 'v1'

        def before(variant, rnd):
            t = target()
            self.ensure_jar(t)
            self.wait_running(names)

        def check_all_upgraded(out, how):
            results = out.results()
            if how == 'set':
                actions = [j.get('action') for j in results[0][1].get('jobs', [])]
            else:
                actions = [r.get('action') for unused, r in results]
            if actions != ['upgraded'] * m:
                raise RuntimeError('%s: not every job upgraded: %r' % (how, actions))

        def by_set(rnd):
            t = target()
            out = self.run(play([set_task(t, 'upgraded')]), 'set-upgrade', changed=True)
            check_all_upgraded(out, 'set')
            current['v'] = t
            return out

        def by_tasks(rnd):
            t = target()
            out = self.run(play([self.flink_job_task(n, t, state='upgraded', healthy_for=0) for n in names]),
                           'seq-upgrade', changed=True)
            check_all_upgraded(out, 'tasks')
            current['v'] = t
            return out

        variants = {'flink_job_set, %d upgrades (max_parallel %d, healthy_for 0)' % (m, self.args.max_parallel):
                    by_set,
                    '%d flink_job state=upgraded tasks in one play (healthy_for 0)' % m: by_tasks}
        sec, splits, unused = self.measure_rounds('set', variants, self.args.reps, before=before)
        vn = list(variants)
        ratio = stats(sec[vn[0]])['median'] / stats(sec[vn[1]])['median']
        self.results['set'] = {
            'title': '%d upgrades: one flink_job_set run vs %d flink_job tasks' % (m, m),
            'variants': dict((n, stats(sec[n])) for n in vn),
            'splits': dict((n, split_medians(splits[n])) for n in vn),
            'ours': vn[0], 'theirs': vn[1], 'ratio': round(ratio, 3), 'target': 0.4,
            'verdict': verdict(ratio, 0.4), 'jobs': m, 'max_parallel': self.args.max_parallel,
        }
        if self.results['set']['verdict'] == 'MISS':
            # Where the time goes: one traced run of each (outside the rounds above).
            prof = {}
            for label, make in (('set', lambda t: play([set_task(t, 'upgraded')])),
                                ('tasks', lambda t: play([self.flink_job_task(x, t, state='upgraded', healthy_for=0)
                                                          for x in names]))):
                t = target()
                before(None, None)
                prof['trace_' + label] = self.traced(make(t), 'set-' + label, reps=1, changed=True)
                current['v'] = t
            self.results['set']['profile'] = prof
        self.cancel(names)

    # -- 4. N declared jobs already running: the role against uri plays --------------------------------------------
    def item_fleet(self):
        n = self.args.fleet_jobs
        names = ['bench-fleet-%02d' % i for i in range(n)]
        items = [{'name': x, 'jar': self.jars['v1'], 'entry_class': EXAMPLE_CLASS,
                  'args': ['--job-name', x] + SLEEP_ARGS} for x in names]

        def role_play(extra_vars=None):
            v = {'flink_jobs_url': self.url, 'flink_jobs_list': items}
            v.update(extra_vars or {})
            return play(roles=[{'role': 'flinkops.flink.flink_jobs'}], vars=v)

        log('fleet: deploying %d jobs through the role (healthy_for 0)' % n)
        first = self.run(role_play({'flink_jobs_defaults': {'healthy_for': 0}}), 'fleet-deploy', changed=True)
        jids = self.wait_running(names)
        loop = {'name': 'GET /jobs/<id> of each job', 'ansible.builtin.uri': {'url': self.url + '/jobs/{{ item }}'},
                'loop': [jids[x] for x in names]}
        variants = {
            'flink_jobs role, %d jobs, no-op' % n: lambda r: self.run(role_play(), 'fleet-role', changed=False),
            'one uri task (GET /jobs/overview)': lambda r: self.run(play([self.uri_task()]), 'floor', changed=False),
            'uri loop of %d (GET /jobs/<id>)' % n: lambda r: self.run(play([loop]), 'uri-loop', changed=False),
        }
        sec, splits, unused = self.measure_rounds('fleet', variants, self.args.reps_fast, warmup=1)
        vn = list(variants)
        role, one, many = (stats(sec[x])['median'] for x in vn)
        self.results['fleet'] = {
            'title': '%d running jobs: the flink_jobs role vs uri plays' % n,
            'variants': dict((x, stats(sec[x])) for x in vn),
            'splits': dict((x, split_medians(splits[x])) for x in vn),
            'ours': vn[0], 'theirs': vn[1], 'ratio': round(role / one, 3), 'target': 1.2,
            'verdict': verdict(role / one, 1.2),
            'also': {'theirs': vn[2], 'ratio': round(role / many, 3)},
            'deploy': {'seconds': round(first.seconds, 3), 'split': first.split()},
            'jobs': n, 'profile': self.fleet_profile(names, role_play()),
        }
        self.cancel(names)

    def fleet_profile(self, names, role_play):
        """flink_job_set's reconciler in-process on the N running jobs: wall time and requests of a no-op run."""
        from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
        from ansible_collections.flinkops.flink.plugins.module_utils import _fleet as fleet
        from ansible_collections.flinkops.flink.plugins.module_utils import _model as model

        times, counts = [], []
        for unused in range(5):
            clients = []

            def connect(timeout):
                c = api.FlinkClient([self.url], api.Deadline(timeout))
                clients.append(c)
                return c
            members = [fleet.Member(model.Desired(name=x, state='present', jar=self.jars['v1'],
                                                  entry_class=EXAMPLE_CLASS, args=['--job-name', x] + SLEEP_ARGS),
                                    300) for x in names]
            started = time.perf_counter()
            result = fleet.FleetReconciler(connect, members, max_parallel=5).run()
            times.append(time.perf_counter() - started)
            counts.append(sum(len(c.log) for c in clients))
            if result['changed']:
                raise RuntimeError('in-process fleet no-op changed something')
        jobs = []
        for x in names:
            j = self.job_args(x)
            j.pop('url')
            jobs.append(j)
        direct, r = module_direct('ansible_collections.flinkops.flink.plugins.modules.flink_job_set',
                                  {'url': self.url, 'jobs': jobs}, reps=3)
        if r.get('changed'):
            raise RuntimeError('flink_job_set run directly changed something')
        trace = self.traced(role_play, 'fleet-role', changed=False)
        return {'flink_job_set_reconciler_s': stats(times), 'requests': sorted(set(counts)), 'max_parallel': 5,
                'flink_job_set_process_s': stats(direct), 'trace_role': trace}

    # -- 6. upload memory -----------------------------------------------------------------------------------------
    def item_upload(self):
        from bench.upload_memory import uploads_against
        size = self.args.upload_mib
        results, jar_size = uploads_against(self.url, self.cluster.workdir, size, self.args.upload_runs)
        streamed = results['streamed']
        files = results['files']
        peak = stats([x['peak_mib'] for x in streamed])
        delta = stats([x['peak_delta_mib'] for x in streamed])
        self.results['upload'] = {
            'title': 'Peak memory of uploading a %d MiB jar (fresh process, streamed as flink_job does)' % size,
            'variants': {'streamed (flink_job), process peak MiB': peak,
                         'streamed (flink_job), peak above RSS before the upload, MiB': delta,
                         'requests files=, process peak MiB': stats([x['peak_mib'] for x in files]),
                         'streamed upload s': stats([x['seconds'] for x in streamed]),
                         'requests files= upload s': stats([x['seconds'] for x in files])},
            'ours': 'streamed (flink_job), process peak MiB', 'theirs': 'requests files=, process peak MiB',
            'unit': 'MiB', 'value': peak['max'], 'ratio': round(peak['max'] / max(1e-9, stats(
                [x['peak_mib'] for x in files])['max']), 3),
            'target_mib': 64, 'target': None, 'verdict': 'PASS' if peak['max'] < 64 else 'MISS',
            'jar_bytes': jar_size, 'peak_reset': all(x['peak_reset'] for x in streamed + files),
        }


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--items', nargs='+', choices=ITEMS, default=list(ITEMS))
    parser.add_argument('--reps', type=int, default=5, help='rounds of the slower comparisons (first, upgrade, set)')
    parser.add_argument('--reps-fast', type=int, default=10, help='rounds of the no-op comparisons (noop, fleet)')
    parser.add_argument('--fleet-jobs', type=int, default=50)
    parser.add_argument('--set-jobs', type=int, default=10)
    parser.add_argument('--max-parallel', type=int, default=10)
    parser.add_argument('--upload-mib', type=int, default=200)
    parser.add_argument('--upload-runs', type=int, default=3)
    parser.add_argument('--smoke', action='store_true', help='tiny sizes: 2 rounds, 3+2 jobs, 8 MiB, one upload')
    parser.add_argument('--out', default=os.path.join(OUT_DIR, 'last.json'))
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.reps_fast, args.fleet_jobs, args.set_jobs = 2, 2, 3, 2
        args.max_parallel = min(args.max_parallel, args.set_jobs)
        args.upload_mib, args.upload_runs = 8, 1

    # make (or anyone) stopping the benchmark with SIGTERM still runs the finally that stops the cluster.
    signal.signal(signal.SIGTERM, _terminate)
    began = time.time()
    load_before = os.getloadavg()
    slots = max(64, args.fleet_jobs + args.set_jobs + 4)
    config = {'taskmanager.memory.process.size': '3g',
              'execution.checkpointing.interval': '5s',
              'rest.server.max-content-length': max(314572800, (args.upload_mib + 16) * MIB)}
    log('starting Flink %s with %d slots' % (args.version, slots))
    cluster, work = start_cluster(args.version, slots=slots, extra_config=config)
    done = False
    errors = []
    try:
        s = Session(args, cluster, work)
        for item in ITEMS:
            if item in args.items:
                log('== %s' % item)
                t0 = time.time()
                try:
                    getattr(s, 'item_' + item)()
                except Exception as exc:  # pylint: disable=broad-except
                    # One item failing must not cost the others: record it, clear the cluster, go on.
                    log('%s FAILED: %s' % (item, traceback.format_exc()))
                    errors.append(item)
                    s.results[item] = {'error': '%s: %s' % (type(exc).__name__, str(exc)[:1500])}
                    cluster.cancel_all()
                s.results[item]['wall_s'] = round(time.time() - t0, 1)
        flink_version = s.get('/config').get('flink-version')
        done = not errors
    finally:
        cluster.stop()
        if done:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print('cluster work directory (logs) kept: %s' % work, file=sys.stderr)

    data = {'bench': 'compare', 'measured_at': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(began)),
            'seconds': round(time.time() - began, 1), 'machine': dict(machine(), flink=flink_version),
            'loadavg_before': [round(x, 2) for x in load_before],
            'loadavg_after': [round(x, 2) for x in os.getloadavg()],
            'settings': {'reps': args.reps, 'reps_fast': args.reps_fast, 'fleet_jobs': args.fleet_jobs,
                         'set_jobs': args.set_jobs, 'max_parallel': args.max_parallel, 'upload_mib': args.upload_mib,
                         'upload_runs': args.upload_runs, 'smoke': args.smoke, 'slots': slots, 'cluster': config},
            'items': s.results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(data, f, indent=2)
    from bench.report import markdown
    text = markdown(data)
    with open(os.path.splitext(args.out)[0] + '.md', 'w') as f:
        f.write(text)
    print(text)
    print('written to %s' % os.path.relpath(args.out, ROOT))
    if errors:
        print('items that failed: %s (see the log above; the cluster\'s work directory was kept)' % ', '.join(errors),
              file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
