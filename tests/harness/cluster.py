"""Real standalone Flink session clusters on loopback, owned by pid.

    python -m tests.harness.cluster start --version 2.3.0 --workdir DIR --rest-port 18081 [--ha]
    python -m tests.harness.cluster stop --workdir DIR

Every process (JobManagers, TaskManagers, the bundled ZooKeeper) runs in the
foreground of its own process group, started here; ``pids.json`` in the work
directory records pid, process group and start time, so ``stop`` signals
exactly those processes and nothing else (never by name). Each process gets its
own FLINK_CONF_DIR / FLINK_LOG_DIR / FLINK_PID_DIR, so many clusters share one
FLINK_HOME. The configuration is the distribution's own ``conf/config.yaml``
with our settings merged in (Flink 2 needs its ``env.java.opts.all``); a
distribution without one (Flink 1.18 and older) gets its ``conf/flink-conf.yaml``
merged and written in the legacy flat format those versions read.
"""

import argparse
import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import requests
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.harness.flinkdist import ensure_flink_home  # noqa: E402

TERMINAL = ('FINISHED', 'CANCELED', 'FAILED')


def _load(relpath, name):
    """A module of the collection by its file (the harness runs without the collection on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The collection's own code: harness and role merge and write configurations the same way.
flatten = _load(os.path.join('plugins', 'filter', 'flink_config.py'), 'flinkops_filter_flink_config').flink_flatten_config
_cluster_conf = _load(os.path.join('plugins', 'module_utils', '_cluster_conf.py'), 'flinkops_cluster_conf')


def config_file_name(flink_home):
    """``config.yaml`` (Flink 1.19 and later ship it), else the legacy ``flink-conf.yaml``."""
    return 'config.yaml' if os.path.exists(os.path.join(flink_home, 'conf', 'config.yaml')) else 'flink-conf.yaml'


# What Flink 1.18 (the first release for Java 17) ships in env.java.opts.all. Flink 1.17 ships none, and on this
# machine's Java 17 it cannot start without them: the harness lends them, so the refusal of 1.17 can be shown on a
# real 1.17 cluster.
JAVA17_OPTS = ' '.join(
    ['--add-exports=java.base/sun.net.util=ALL-UNNAMED', '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
     '--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED']
    + ['--add-opens=java.base/%s=ALL-UNNAMED' % p for p in (
        'java.lang', 'java.net', 'java.io', 'java.nio', 'sun.nio.ch', 'java.lang.reflect', 'java.text', 'java.time',
        'java.util', 'java.util.concurrent', 'java.util.concurrent.atomic', 'java.util.concurrent.locks')])


def merged_config(flink_home, overrides):
    """The distribution's configuration file, flattened, with ``overrides`` on top."""
    name = config_file_name(flink_home)
    with open(os.path.join(flink_home, 'conf', name)) as f:
        shipped = yaml.safe_load(f) if name == 'config.yaml' else _cluster_conf.parse_legacy(f.read())
    conf = flatten(shipped or {})
    conf.setdefault('env.java.opts.all', JAVA17_OPTS)
    conf.update(overrides)
    return conf


def _proc_start_time(pid):
    """Start time of a running process, None if it is gone (zombies of ours are reaped)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ('Z', 'X'):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _alive(entry):
    st = _proc_start_time(entry['pid'])
    return st is not None and st == entry['start_time']


class FlinkCluster(object):
    def __init__(self, version, workdir, rest_port, ha=False, jobmanagers=None, taskmanagers=1, slots=4,
                 extra_config=None):
        self.version = version
        self.workdir = os.path.abspath(workdir)
        self.rest_port = int(rest_port)
        self.ha = ha
        self.jobmanagers = jobmanagers or (2 if ha else 1)
        self.taskmanagers = taskmanagers
        self.slots = slots
        self.extra_config = dict(extra_config or {})
        self.home = None
        self.procs = []   # dicts: role, index, pid, pgid, start_time, log_dir
        self.zk_port = self.rest_port + 5

    # -- addresses ---------------------------------------------------------
    def rest_port_of(self, i):
        return self.rest_port + i

    @property
    def urls(self):
        return ['http://127.0.0.1:%d' % self.rest_port_of(i) for i in range(self.jobmanagers)]

    @property
    def url(self):
        return self.urls[0]

    # -- configuration -------------------------------------------------------
    def _config(self, rest_port):
        w = self.workdir
        c = {
            'jobmanager.rpc.address': '127.0.0.1',
            'jobmanager.bind-host': '127.0.0.1',
            'jobmanager.rpc.port': self.rest_port + 3,
            'taskmanager.bind-host': '127.0.0.1',
            'taskmanager.host': '127.0.0.1',
            'taskmanager.rpc.port': '0',
            'taskmanager.data.port': 0,
            'blob.server.port': '0',
            'rest.address': '127.0.0.1',
            'rest.bind-address': '127.0.0.1',
            'rest.port': rest_port,
            'jobmanager.memory.process.size': '1024m',
            'taskmanager.memory.process.size': '1536m',
            'taskmanager.numberOfTaskSlots': self.slots,
            'parallelism.default': 1,
            'state.savepoints.dir': 'file://%s/savepoints' % w,
            'state.checkpoints.dir': 'file://%s/checkpoints' % w,
            'execution.checkpointing.interval': '2s',
            'web.tmpdir': '%s/web' % w,
            'io.tmp.dirs': '%s/tmp' % w,
            'heartbeat.interval': 2000,
            'heartbeat.timeout': 8000,
        }
        if self.ha:
            c.update({
                'high-availability.type': 'zookeeper',
                'high-availability.storageDir': 'file://%s/ha' % w,
                'high-availability.zookeeper.quorum': '127.0.0.1:%d' % self.zk_port,
                'high-availability.cluster-id': '/flinkops-%d' % self.rest_port,
                'high-availability.jobmanager.port': '0',
                'high-availability.zookeeper.client.session-timeout': 6000,
                'jobmanager.rpc.port': '0',
            })
        c.update(self.extra_config)
        return merged_config(self.home, c)

    def _write_conf(self, name, rest_port):
        conf_dir = os.path.join(self.workdir, 'conf-%s' % name)
        if os.path.exists(conf_dir):
            shutil.rmtree(conf_dir)
        shutil.copytree(os.path.join(self.home, 'conf'), conf_dir)
        name = config_file_name(self.home)
        with open(os.path.join(conf_dir, name), 'w') as f:
            if name == 'config.yaml':
                yaml.safe_dump(self._config(rest_port), f, default_flow_style=False, sort_keys=True)
            else:
                f.write(_cluster_conf.legacy_text(self._config(rest_port)))
        if self.ha:
            with open(os.path.join(conf_dir, 'zoo.cfg'), 'w') as f:
                f.write('tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s/zookeeper\nclientPort=%d\n'
                        'clientPortAddress=127.0.0.1\nadmin.enableServer=false\n'
                        '4lw.commands.whitelist=*\n' % (self.workdir, self.zk_port))
        return conf_dir

    # -- processes -----------------------------------------------------------
    def _spawn(self, role, index, argv, rest_port):
        name = '%s%d' % (role, index)
        conf_dir = self._write_conf(name, rest_port)
        log_dir = os.path.join(self.workdir, 'log-%s' % name)
        pid_dir = os.path.join(self.workdir, 'pid-%s' % name)
        for d in (log_dir, pid_dir):
            os.makedirs(d, exist_ok=True)
        env = dict(os.environ, FLINK_CONF_DIR=conf_dir, FLINK_LOG_DIR=log_dir, FLINK_PID_DIR=pid_dir,
                   FLINK_HOME=self.home)
        env.pop('FLINK_URL', None)
        out = open(os.path.join(log_dir, 'console.out'), 'ab')
        proc = subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        entry = {'role': role, 'index': index, 'pid': proc.pid, 'pgid': proc.pid,
                 'start_time': _proc_start_time(proc.pid), 'log_dir': log_dir, 'rest_port': rest_port}
        self.procs = [p for p in self.procs if not (p['role'] == role and p['index'] == index)]
        self.procs.append(entry)
        self._save()
        return entry

    def _save(self):
        state = {'version': self.version, 'rest_port': self.rest_port, 'ha': self.ha,
                 'jobmanagers': self.jobmanagers, 'taskmanagers': self.taskmanagers, 'slots': self.slots,
                 'procs': self.procs}
        tmp = os.path.join(self.workdir, 'pids.json.tmp')
        with open(tmp, 'w') as f:
            json.dump(state, f, indent=2)
        os.rename(tmp, os.path.join(self.workdir, 'pids.json'))

    def start(self, timeout=120):
        self.home = ensure_flink_home(self.version)
        os.makedirs(self.workdir, exist_ok=True)
        existing = load_state(self.workdir)
        if existing and any(_alive(p) for p in existing['procs']):
            raise RuntimeError('a cluster started from %s is still running; stop it first' % self.workdir)
        bin_dir = os.path.join(self.home, 'bin')
        if self.ha:
            self._spawn('zookeeper', 0, [os.path.join(bin_dir, 'zookeeper.sh'), 'start-foreground', '1'],
                        self.rest_port)
            self._wait_port(self.zk_port, 60)
        for i in range(self.jobmanagers):
            self.start_jobmanager(i)
        for i in range(self.taskmanagers):
            self._spawn('taskmanager', i, [os.path.join(bin_dir, 'taskmanager.sh'), 'start-foreground'],
                        self.rest_port)
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def start_jobmanager(self, i):
        argv = [os.path.join(self.home or ensure_flink_home(self.version), 'bin', 'jobmanager.sh'),
                'start-foreground']
        return self._spawn('jobmanager', i, argv, self.rest_port_of(i))

    def _wait_port(self, port, timeout):
        import socket
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(('127.0.0.1', port)) == 0:
                    return
            time.sleep(0.3)
        raise RuntimeError('port %d did not open within %d s' % (port, timeout))

    def overview(self, url=None, timeout=3):
        return requests.get((url or self.url) + '/overview', timeout=timeout).json()

    def wait_ready(self, timeout=120, urls=None):
        """Until a JobManager answers with all TaskManagers and slots registered."""
        end = time.monotonic() + timeout
        want_slots = self.taskmanagers * self.slots
        last = None
        while time.monotonic() < end:
            for url in urls or self.urls:
                try:
                    resp = requests.get(url + '/overview', timeout=3)
                    last = '%s: HTTP %d %s' % (url, resp.status_code, resp.text[:200])
                    if resp.status_code == 200:
                        o = resp.json()
                        if o.get('taskmanagers') == self.taskmanagers and o.get('slots-total') == want_slots:
                            return url
                except requests.RequestException as exc:
                    last = '%s: %s' % (url, exc)
            dead = [p for p in self.procs if not _alive(p)]
            if dead:
                raise RuntimeError('Flink process(es) died during start: %s\n%s'
                                   % ([(p['role'], p['index']) for p in dead], self.log_tail(dead[0])))
            time.sleep(0.5)
        raise RuntimeError('Flink did not become ready within %d s (last: %s)\n%s'
                           % (timeout, last, self.log_tail(self.procs[0]) if self.procs else ''))

    def log_tail(self, entry, lines=40):
        text = []
        for path in sorted(glob.glob(os.path.join(entry['log_dir'], '*'))):
            with open(path, errors='replace') as f:
                text.append('== %s\n%s' % (path, ''.join(f.readlines()[-lines:])))
        return '\n'.join(text)

    def proc(self, role, index=0):
        for p in self.procs:
            if p['role'] == role and p['index'] == index:
                return p
        raise KeyError((role, index))

    def leader_index(self):
        """Index of the JobManager that last logged that it was granted leadership and is alive."""
        best = None
        for p in self.procs:
            if p['role'] != 'jobmanager' or not _alive(p):
                continue
            for path in glob.glob(os.path.join(p['log_dir'], '*.log')):
                with open(path, errors='replace') as f:
                    for line in f:
                        if 'DefaultDispatcherRunner was granted leadership' in line:
                            stamp = line[:23]
                            if best is None or stamp > best[0]:
                                best = (stamp, p['index'])
        return best[1] if best else None

    def kill_jobmanager(self, i, sig=signal.SIGKILL):
        self._signal(self.proc('jobmanager', i), sig)

    def _signal(self, entry, sig):
        if _alive(entry):
            try:
                os.killpg(entry['pgid'], sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=20):
        """Stop exactly the processes this cluster started (TaskManagers first)."""
        order = {'taskmanager': 0, 'jobmanager': 1, 'zookeeper': 2}
        procs = sorted(self.procs, key=lambda p: order.get(p['role'], 3))
        for p in procs:
            self._signal(p, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(_alive(p) for p in procs):
            time.sleep(0.2)
        for p in procs:
            self._signal(p, signal.SIGKILL)
        end = time.monotonic() + 10
        while time.monotonic() < end and any(_alive(p) for p in procs):
            time.sleep(0.1)
        still = [p for p in procs if _alive(p)]
        if still:
            raise RuntimeError('could not stop %s' % still)

    def all_stopped(self):
        return not any(_alive(p) for p in self.procs)

    # -- jobs ----------------------------------------------------------------
    def rest(self, method, path, url=None, **kwargs):
        kwargs.setdefault('timeout', 30)
        return requests.request(method, (url or self.url) + path, **kwargs)

    def jobs(self, url=None):
        return self.rest('GET', '/jobs/overview', url=url).json()['jobs']

    def live_jobs(self, url=None):
        return [j for j in self.jobs(url) if j['state'] not in TERMINAL]

    def cancel_all(self, timeout=60):
        for j in self.live_jobs():
            self.rest('PATCH', '/jobs/%s?mode=cancel' % j['jid'])
        end = time.monotonic() + timeout
        while self.live_jobs() and time.monotonic() < end:
            time.sleep(0.3)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def load_state(workdir):
    path = os.path.join(workdir, 'pids.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def cluster_from_workdir(workdir):
    state = load_state(workdir)
    if state is None:
        raise RuntimeError('no cluster state in %s' % workdir)
    c = FlinkCluster(state['version'], workdir, state['rest_port'], ha=state['ha'],
                     jobmanagers=state['jobmanagers'], taskmanagers=state['taskmanagers'], slots=state['slots'])
    c.procs = state['procs']
    return c


def main(argv=None):
    parser = argparse.ArgumentParser(description='Start and stop Flink test clusters on loopback')
    sub = parser.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('start')
    s.add_argument('--version', default='2.3.0')
    s.add_argument('--workdir', required=True)
    s.add_argument('--rest-port', type=int, required=True)
    s.add_argument('--ha', action='store_true')
    s.add_argument('--taskmanagers', type=int, default=1)
    s.add_argument('--slots', type=int, default=4)
    t = sub.add_parser('stop')
    t.add_argument('--workdir', required=True)
    args = parser.parse_args(argv)
    if args.cmd == 'start':
        c = FlinkCluster(args.version, args.workdir, args.rest_port, ha=args.ha, taskmanagers=args.taskmanagers,
                         slots=args.slots)
        began = time.monotonic()
        c.start()
        print('Flink %s answers on %s (ready in %.1f s)' % (args.version, ' '.join(c.urls), time.monotonic() - began))
        return 0
    c = cluster_from_workdir(args.workdir)
    c.stop()
    print('stopped %d process(es) started from %s' % (len(c.procs), args.workdir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
