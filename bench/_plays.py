"""Measured plays: exactly the play a user would write, run by ``ansible-playbook``, timed from outside.

The play has no extra task (no result file): the bench_record callback (bench/callback_plugins), enabled next
to the default stdout callback, writes when the playbook and each task started and ended and the tasks'
changed/failed/action, so a run can be checked (a no-op that changed something is an error) and split into
``ansible-playbook`` start-up (process start to the first task), the tasks, and the tail (last task to exit).
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid

from bench._setup import ROOT
from tests.integration.ansible_play import ansible_env

CALLBACKS = os.path.join(ROOT, 'bench', 'callback_plugins')
INTERPRETER = {'ansible_python_interpreter': '{{ ansible_playbook_python }}'}


def play(tasks=None, roles=None, vars=None, name='bench'):
    """A one-play playbook on localhost, no facts, the interpreter pinned to ansible-playbook's own Python."""
    p = {'name': name, 'hosts': 'localhost', 'gather_facts': False, 'vars': dict(INTERPRETER, **(vars or {}))}
    if roles is not None:
        p['roles'] = roles
    p['tasks'] = tasks or []
    return [p]


class PlayRun(object):
    """One timed run: ``seconds`` (process wall time), per-task records, and the split of the wall time."""

    def __init__(self, seconds, rc, output, record, started_at):
        self.seconds = seconds
        self.rc = rc
        self.output = output
        self.record = record or {'tasks': []}
        self.tasks = self.record.get('tasks', [])
        first = min([t['start'] for t in self.tasks] or [None]) if self.tasks else None
        last = max([t['end'] or t['start'] for t in self.tasks]) if self.tasks else None
        self.startup_s = (first - started_at) if first is not None else None
        self.tasks_s = (last - first) if first is not None else 0.0
        self.tail_s = (started_at + seconds - last) if last is not None else None

    def task_seconds(self, index):
        t = self.tasks[index]
        return (t['end'] or t['start']) - t['start']

    def results(self):
        """Each task's final result summary (the last one recorded for it)."""
        return [(t['name'], t['results'][-1] if t['results'] else {}) for t in self.tasks]

    @property
    def failed(self):
        return self.rc != 0 or any(r.get('failed') for _n, r in self.results())

    @property
    def changed(self):
        return any(r.get('changed') for _n, r in self.results())

    def check(self, changed=None, what='play'):
        """Raise unless the run succeeded (and changed, or not, as expected); returns self."""
        if self.failed:
            raise RuntimeError('%s failed (rc=%s): %s\n%s' % (what, self.rc, json.dumps(self.results())[:3000],
                                                              self.output[-3000:]))
        if changed is not None and self.changed != changed:
            raise RuntimeError('%s: expected changed=%s, got %s: %s'
                               % (what, changed, self.changed, json.dumps(self.results())[:3000]))
        return self

    def split(self):
        return {'seconds': round(self.seconds, 3),
                'startup_s': None if self.startup_s is None else round(self.startup_s, 3),
                'tasks_s': round(self.tasks_s, 3),
                'tail_s': None if self.tail_s is None else round(self.tail_s, 3),
                'task_s': [round(self.task_seconds(i), 3) for i in range(len(self.tasks))],
                'task_names': [t['name'] for t in self.tasks]}


class Plays(object):
    def __init__(self, workdir, env=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.bin = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        self.env = dict(env or {})

    def write(self, playbook, label='play'):
        path = os.path.join(self.workdir, '%s-%s.yml' % (label, uuid.uuid4().hex[:8]))
        with open(path, 'w') as f:
            json.dump(playbook, f, ensure_ascii=False, indent=1)   # JSON is YAML
        return path

    def run(self, path, timeout=3600, env=None):
        """Run the playbook at ``path``; returns a PlayRun."""
        record = os.path.join(self.workdir, 'record-%s.json' % uuid.uuid4().hex[:12])
        env = ansible_env(dict(self.env, BENCH_RECORD_FILE=record, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
                               ANSIBLE_CALLBACKS_ENABLED='bench_record', **(env or {})))
        cmd = [self.bin, '-i', 'localhost,', '-c', 'local', path]
        started_at = time.time()
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                              timeout=timeout, check=False)
        seconds = time.perf_counter() - started
        data = None
        if os.path.exists(record):
            with open(record) as f:
                data = json.load(f)
            os.remove(record)
        return PlayRun(seconds, proc.returncode, proc.stdout.decode('utf-8', 'replace'), data, started_at)


def module_direct(module, args, env=None, reps=3, timeout=600):
    """Run a module's Python file as AnsiballZ would run it, without Ansible: ``python -m <module> <args file>``.

    ``module`` is a dotted module name (``ansible.modules.uri``,
    ``ansible_collections.flinkops.flink.plugins.modules.flink_job``). Returns the wall times (interpreter start,
    imports, the module's work) and the last result.
    """
    import tempfile
    fd, path = tempfile.mkstemp(prefix='module-args-', suffix='.json')
    with os.fdopen(fd, 'w') as f:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, f)
    pythonpath = os.path.join(ROOT, 'build', 'collections')
    run_env = dict(os.environ, PYTHONPATH=pythonpath, **(env or {}))
    times, result = [], None
    try:
        for _rep in range(reps):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, '-m', module, path], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=run_env, timeout=timeout, check=False)
            times.append(time.perf_counter() - started)
            text = out.stdout.decode('utf-8', 'replace')
            try:
                result = json.loads(text[text.index('{'):])
            except ValueError:
                raise RuntimeError('%s printed no result (rc=%d): %s %s'
                                   % (module, out.returncode, text[-2000:], out.stderr.decode()[-2000:]))
            if result.get('failed'):
                raise RuntimeError('%s failed: %s' % (module, result.get('msg')))
    finally:
        os.remove(path)
    return times, result


_DEBUG_LINE = re.compile(r'^\s*(\d+) (\d+\.\d+): (.*)$')


def trace(output):
    """Phases of each module task from an ``ANSIBLE_DEBUG=1`` run's output (its lines carry timestamps).

    Per task: ``build_s`` (AnsiballZ: finding the module_utils and zipping the payload, on the controller),
    ``exec_s`` (the module's own process: interpreter, imports, the work), ``other_s`` (the rest from queueing the
    task until Ansible has the module's result: temp directories, copying, chmod, templating). Also ``startup_s``:
    from ansible-playbook's first debug line to the first task queued.
    """
    tasks, cur, first, first_task = [], None, None, None
    for line in output.splitlines():
        m = _DEBUG_LINE.match(line)
        if not m:
            continue
        ts, msg = float(m.group(2)), m.group(3)
        if first is None:
            first = ts
        if msg.startswith('entering _queue_task() for '):
            cur = {'action': msg.rsplit('/', 1)[-1], 'queued': ts}
            first_task = ts if first_task is None else first_task
        elif cur is None:
            continue
        elif msg.startswith('ANSIBALLZ: Acquiring lock'):
            cur['b0'] = ts
        elif msg.startswith('ANSIBALLZ: Done creating module'):
            cur['b1'] = ts
        elif (msg.startswith('_low_level_execute_command(): executing:') and '/AnsiballZ_' in msg
              and 'chmod ' not in msg and 'rm -f' not in msg):
            cur['e0'] = ts
        elif msg.startswith('done with local.exec_command()') and 'e0' in cur and 'e1' not in cur:
            cur['e1'] = ts
        elif msg.startswith('done with _execute_module ('):
            cur['done'] = ts
            build = cur['b1'] - cur['b0'] if 'b1' in cur else 0.0
            exe = cur['e1'] - cur['e0'] if 'e1' in cur else 0.0
            tasks.append({'action': cur['action'], 'build_s': round(build, 3), 'exec_s': round(exe, 3),
                          'other_s': round(ts - cur['queued'] - build - exe, 3)})
            cur = None
    return {'startup_s': round(first_task - first, 3) if first_task is not None else None, 'tasks': tasks}
