"""Run the integration suites of several Flink versions (and ansible-core releases) side by side.

    python -m tests.harness.suites --full 2.3.0 --full 1.20.5 --lifecycle 2.2.1 --lifecycle 1.18.1 --jobs 2
    python -m tests.harness.suites --lifecycle 2.3.0 --core build/venvs/core-2.16/bin/python --jobs 2

A run is one pytest session: the whole suite (``--full``) or the life-cycle suite
(``--lifecycle``, tests/integration/test_lifecycle.py) on one Flink version, with the
Python (and so the ansible-core) of ``--core`` (default: this interpreter). Runs are
spread over ``--jobs`` streams that go on at the same time, longest first onto the
least loaded stream; a stream runs its share one after the other. Each stream has its
own loopback port window (FLINKOPS_PORT_OFFSET), so streams never race for a port.

Tests whose subject does not change with the Flink line (``ONCE``) run with the first
full run only; the role-level tests with the last full run only (they share the system
user ``flink``, so two of them must not run at once).

Each run writes its output to ``build/it/<run>.log`` and its results as JUnit XML to
``build/support/<run>.xml``, from which tests/harness/support.py builds the README's
support table, with ``build/support/<run>.json`` (exit status, duration, commit).
With ``--resume``, a run whose result passed at the commit the work tree is at (no
tracked file changed) is kept, not run again: an interrupted ``make matrix`` goes on
where it stopped. Exit status: 0 when every run passed.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from xml.etree import ElementTree

from tests.harness import support

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IT = 'tests/integration'
LIFECYCLE = ['%s/test_lifecycle.py' % IT]
# Tests whose subject does not change with the Flink line (the collection build, the execution environment, the
# transport: proxies, path prefixes, TLS, secrets in output, ansible-runner) and the refusal of Flink 1.17, which
# starts its own cluster: with the first full run only.
ONCE = ['%s/%s' % (IT, name) for name in (
    'test_collection_build.py', 'test_execution_environment.py', 'test_unsupported_version.py',
    'test_ansible_runner.py', 'test_auth_proxy.py', 'test_path_prefix.py', 'test_secrets.py', 'test_tls.py')]
# Tests whose subject hardly changes with the Flink line: injected HTTP faults in front of Flink, and sets of jobs
# (flink_job_set runs flink_job's own reconciler, which every line's runs cover). make test runs them with the first
# full run only, to stay inside CI's time; make matrix (--every-line) with every full run.
SPARED = ['%s/%s' % (IT, name) for name in ('test_faults.py', 'test_job_set.py')]
ROLE_TESTS = ['%s/%s' % (IT, name) for name in (
    'test_cluster_restarts.py', 'test_cluster_root.py', 'test_flink_jobs_role.py', 'test_cluster_pyflink.py')]
# Port windows of the streams (tests/integration/conftest.py, free_port_block): 21000-23999, 24000-26999,
# 29000-31999; clear of a suite run by hand (18000-20999), of molecule's 28xxx and of the ephemeral ports.
PORT_OFFSETS = (3000, 6000, 11000)
# Minutes of the parts of a run on a 2-core machine with two streams going (measured 2026-11-28 on a fresh clone;
# a molecule scenario: per scenario), to balance the streams.
COST = {'full': 23.5, 'once': 9.0, 'spared': 12.0, 'roles': 15.5, 'lifecycle': 2.7, 'molecule': 3.0}


def core_version(python):
    out = subprocess.check_output([python, '-c', 'import ansible.release as r; print(r.__version__)'])
    return out.decode().strip()


class Run(object):
    def __init__(self, kind, flink, python, core, once=False, roles=False, every_line=False):
        self.kind, self.flink, self.python, self.core = kind, flink, python, core
        self.once, self.roles, self.every_line = once, roles, every_line
        self.scenarios = []
        self.cost = (COST[kind] + (COST['once'] if once else 0) + (COST['roles'] if roles else 0)
                     + (COST['spared'] if kind == 'full' and (once or every_line) else 0))
        self.name = 'flink-%s__core-%s__%s' % (flink, core, kind)
        self.rc = None
        self.seconds = None
        self.kept = None    # the record of an earlier pass at this commit (--resume)

    def commands(self, junit):
        """The commands of this run, one after the other (molecule: one scenario each)."""
        if self.kind == 'molecule':
            molecule = os.path.join(os.path.dirname(self.python), 'molecule')
            return [[molecule, 'test', '-s', scenario] for scenario in self.scenarios]
        return [self.argv(junit)]

    def argv(self, junit):
        argv = [self.python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--durations=15', '--junitxml', junit]
        if self.kind == 'lifecycle':
            return argv + LIFECYCLE
        ignore = (([] if self.once else ONCE) + ([] if self.once or self.every_line else SPARED)
                  + ([] if self.roles else ROLE_TESTS))
        return argv + ['--ignore=%s' % path for path in ignore] + [IT]


def plan(full, lifecycle, pythons, jobs, molecule=(), every_line=False):
    """The runs, spread over ``jobs`` streams (lists of runs), longest first onto the least loaded stream.

    The molecule scenarios (``molecule``) follow the role-level tests in their stream: both deploy the roles
    with the same service user, so they never run at the same time.
    """
    runs = []
    for python in pythons:
        core = core_version(python)
        for i, version in enumerate(full):
            runs.append(Run('full', version, python, core, once=(i == 0), roles=(i == len(full) - 1),
                            every_line=every_line))
        runs.extend(Run('lifecycle', version, python, core) for version in lifecycle)
    after_roles = None
    if molecule:
        after_roles = Run('molecule', 'roles', sys.executable, core_version(sys.executable))
        after_roles.scenarios = list(molecule)
        after_roles.cost *= len(molecule)
        after_roles.name = 'molecule__%s' % '-'.join(molecule)
    streams = [[] for _stream in range(max(1, min(jobs, len(PORT_OFFSETS), len(runs))))]

    def load(stream):
        return sum(r.cost for r in stream) + (after_roles.cost if after_roles and any(r.roles for r in stream) else 0)
    for run in sorted(runs, key=lambda r: -(r.cost + (after_roles.cost if after_roles and r.roles else 0))):
        min(streams, key=load).append(run)
    if after_roles is not None:
        stream = next((s for s in streams if any(r.roles for r in s)), streams[0])
        at = next((i for i, r in enumerate(stream) if r.roles), -1) + 1
        stream.insert(at, after_roles)
    return streams


RUNNING = []      # the pytest processes of the streams, for a SIGTERM to reach
STOPPING = threading.Event()


def default_sigint():
    """In a run's process: SIGINT as Ctrl-C. A shell without job control starts background commands (make test &,
    nohup) with SIGINT ignored, and Python then never turns it into KeyboardInterrupt: forward_term could not stop
    the run, and its clusters would outlive it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def forward_term(_signum, _frame):
    """SIGTERM (a CI timeout): interrupt every pytest as Ctrl-C would, so each stops the clusters it started."""
    STOPPING.set()
    for proc in list(RUNNING):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)


def run_stream(runs, offset, log_dir, junit_dir, echo, resume=False):
    for run in runs:
        if STOPPING.is_set():
            break
        run.kept = support.passed_at_head(run.name) if resume else None
        if run.kept:
            run.rc, run.seconds = 0, run.kept['seconds']
            echo('=== %s: passed at %s on %s, kept (--resume)' % (run.name, run.kept['commit'], run.kept['when']))
            continue
        log = os.path.join(log_dir, '%s.log' % run.name)
        junit = os.path.join(junit_dir, '%s.xml' % run.name)
        env = dict(os.environ, FLINKOPS_FLINK_VERSION=run.flink, FLINKOPS_PORT_OFFSET=str(offset))
        if run.kind == 'molecule':
            env['PATH'] = os.path.dirname(run.python) + os.pathsep + env.get('PATH', '')
            env.update(NO_COLOR='1', PY_COLORS='0')
        echo('=== %s: starting (output in %s)' % (run.name, os.path.relpath(log, ROOT)))
        start = time.monotonic()
        with open(log, 'wb') as out:
            for argv in run.commands(junit):
                out.write(('=== %s\n' % ' '.join(argv)).encode())
                out.flush()
                proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=default_sigint)
                RUNNING.append(proc)
                run.rc = proc.wait()
                RUNNING.remove(proc)
                if run.rc != 0 or STOPPING.is_set():
                    break
        run.seconds = time.monotonic() - start
        support.record(run.name, run.rc, round(run.seconds))
        echo('=== %s: exit %d after %d s' % (run.name, run.rc, run.seconds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--full', action='append', default=[], help='Flink version for the whole suite')
    parser.add_argument('--lifecycle', action='append', default=[], help='Flink version for the life-cycle suite')
    parser.add_argument('--core', action='append', default=[], help='python of an ansible-core venv (repeatable)')
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--molecule', action='append', default=[],
                        help='a role scenario (extensions/molecule) to run after the role-level tests, in their stream')
    parser.add_argument('--every-line', action='store_true',
                        help='run the SPARED tests with every full run, not only with the first (make matrix)')
    parser.add_argument('--stream-output', action='store_true', help='print each log when its run ends')
    parser.add_argument('--resume', action='store_true',
                        help='keep each run that passed at this commit (no tracked file changed since), run the rest')
    args = parser.parse_args(argv)
    log_dir = os.path.join(ROOT, 'build', 'it')
    junit_dir = os.path.join(ROOT, 'build', 'support')
    os.makedirs(log_dir, exist_ok=True)
    os.makedirs(junit_dir, exist_ok=True)
    lock = threading.Lock()

    def echo(text):
        with lock:
            print(text, flush=True)

    streams = plan(args.full, args.lifecycle, args.core or [sys.executable], args.jobs, args.molecule,
                   every_line=args.every_line)
    for i, stream in enumerate(streams):
        echo('stream %d (ports +%d): %s' % (i + 1, PORT_OFFSETS[i], ', '.join(r.name for r in stream)))
    signal.signal(signal.SIGTERM, forward_term)
    threads = [threading.Thread(target=run_stream, args=(stream, PORT_OFFSETS[i], log_dir, junit_dir, echo,
                                                         args.resume))
               for i, stream in enumerate(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [r for stream in streams for r in stream]
    # The logs of failed runs last, and their failing tests in the summary: a CI console that keeps only the tail
    # of the output still shows what failed and why.
    for run in sorted((r for r in runs if r.rc is not None and not r.kept), key=lambda r: r.rc != 0):
        print('=== %s (%s) ===' % (run.name, os.path.join('build', 'it', run.name + '.log')))
        with open(os.path.join(log_dir, '%s.log' % run.name), errors='replace') as f:
            sys.stdout.write(f.read())
    print('\n=== summary ===')
    for run in runs:
        state = ('not run' if run.rc is None else 'passed earlier (kept)' if run.kept else 'passed' if run.rc == 0
                 else 'FAILED (exit %s)' % run.rc)
        print('%-45s %s after %4d s' % (run.name, state, run.seconds or 0))
        if run.rc:
            for case, message in failures(os.path.join(junit_dir, '%s.xml' % run.name)):
                print('    %s: %s' % (case, message))
    return 0 if all(r.rc == 0 for r in runs) else 1


def failures(junit):
    """(test id, first line of its message) of each failed or erroring test case in a JUnit XML file."""
    try:
        tree = ElementTree.parse(junit)
    except (OSError, ElementTree.ParseError):
        return []
    found = []
    for case in tree.iter('testcase'):
        for bad in list(case.findall('failure')) + list(case.findall('error')):
            message = (bad.get('message') or bad.text or '').strip().splitlines()
            found.append(('%s::%s' % (case.get('classname', ''), case.get('name', '')),
                          (message[0] if message else bad.tag)[:300]))
    return found


if __name__ == '__main__':
    sys.exit(main())
