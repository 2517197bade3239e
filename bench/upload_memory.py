"""Benchmark: memory of a jar upload, streamed (FlinkClient.upload) against requests' ``files=``.

``files=`` makes requests build the whole multipart body in memory (and again on
every retry); ``FlinkClient.upload`` streams it from disk. This uploads a jar of
each size to a real Flink on loopback both ways and prints, per way, the peak
resident set size above the process's resident set just before the upload, and
the upload's wall time.

Every measurement runs in a fresh child process (this module with ``--child``),
so one measurement's peak cannot hide in another's. The child resets its peak
(``/proc/self/clear_refs``) after its imports, uploads, and reports
``VmHWM - VmRSS(before)`` from ``/proc/self/status``. The parent checks that the
file Flink stored has the jar's size, then deletes it.

    .venv/bin/python -m bench.upload_memory [--version 2.3.0] [--size-mib 200 [64 ...]] [--runs 1]

The jars are zip files of random bytes (ZIP_STORED), written under
``~/.cache/flinkops/bench/`` and deleted afterwards. Prints a table; nothing is
asserted beyond the upload's integrity.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'build', 'collections'))

MIB = 1024 * 1024
WAYS = ('streamed', 'files')


def _status_mib():
    values = {}
    with open('/proc/self/status') as f:
        for line in f:
            key, sep, rest = line.partition(':')
            if key in ('VmHWM', 'VmRSS'):
                values[key] = int(rest.split()[0]) / 1024.0
    return values


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux 4.0+); False where the kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def child(way, url, jar, upload_name):
    """One upload in this (fresh) process; prints a JSON line with the measurement."""
    from ansible_collections.flinkops.flink.plugins.module_utils import _api as api

    client = api.FlinkClient([url], api.Deadline(300), request_timeout=60)
    client.get('/config', 'read the cluster config')  # imports, connection pool: outside the measurement
    if way != 'streamed':
        # What a script that uploads a jar usually does: the requests library's files=, which builds the whole
        # multipart body in memory. Imported and connected before the measurement, as the module is.
        import requests
        session = requests.Session()
        session.get(url.rstrip('/') + '/config', timeout=60).raise_for_status()
    reset = _reset_peak()
    before = _status_mib()
    started = time.perf_counter()
    if way == 'streamed':
        answer = client.upload(jar, upload_name, 'upload jar %s' % jar, timeout=120)
    else:
        with open(jar, 'rb') as fh:
            resp = session.post(url.rstrip('/') + '/jars/upload', timeout=120,
                                files={'jarfile': (upload_name, fh, 'application/x-java-archive')})
        resp.raise_for_status()
        answer = resp.json()
    seconds = time.perf_counter() - started
    after = _status_mib()
    # Without the reset, VmHWM may be an earlier peak: the delta is then an upper bound.
    print(json.dumps({'way': way, 'seconds': seconds, 'peak_delta_mib': after['VmHWM'] - before['VmRSS'],
                      'peak_mib': after['VmHWM'],
                      'rss_before_mib': before['VmRSS'], 'peak_reset': reset,
                      'jar_id': answer['filename'].replace('\\', '/').rsplit('/', 1)[-1],
                      'requests': client.requests_made}))


def make_jar(path, size):
    """A valid jar (zip, stored, not compressed) of about ``size`` bytes of random data, written in blocks."""
    block = 4 * MIB
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        zf.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\r\n\r\n')
        with zf.open('data/random.bin', 'w', force_zip64=True) as out:
            left = size
            while left > 0:
                n = min(block, left)
                out.write(os.urandom(n))
                left -= n
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo('data/random.bin').file_size == size


def measure(way, url, jar, upload_name):
    out = subprocess.run([sys.executable, '-m', 'bench.upload_memory', '--child', way, '--url', url,
                          '--jar', jar, '--upload-name', upload_name],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         check=False, timeout=600)
    if out.returncode != 0:
        raise RuntimeError('%s upload failed (exit %d): %s' % (way, out.returncode, out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def stored_size(workdir, jar_id):
    hits = glob.glob(os.path.join(workdir, 'web', '**', jar_id), recursive=True)
    return os.path.getsize(hits[0]) if hits else None


def cache_dir():
    cache = os.path.join(os.environ.get('FLINKOPS_CACHE') or os.path.expanduser('~/.cache/flinkops'), 'bench')
    os.makedirs(cache, exist_ok=True)
    return cache


def uploads_against(url, cluster_workdir, size_mib, runs, ways=WAYS):
    """Upload a jar of ``size_mib`` MiB to a running cluster ``runs`` times per way (the ways alternate).

    The cluster must accept bodies of that size (``rest.server.max-content-length``); ``cluster_workdir`` is
    the harness cluster's work directory (where Flink stores uploads, to check each one arrived whole). Returns
    {way: [measurement, ...]} and the jar's size in bytes; every uploaded copy is deleted again.
    """
    import requests

    jar_dir = tempfile.mkdtemp(prefix='upload-memory-', dir=cache_dir())
    try:
        jar = os.path.join(jar_dir, 'bench-%d.jar' % size_mib)
        make_jar(jar, size_mib * MIB)
        jar_size = os.path.getsize(jar)
        results = dict((w, []) for w in ways)
        for run in range(runs):
            for way in (ways if run % 2 == 0 else tuple(reversed(ways))):
                upload_name = 'bench-%s-%d.jar' % (way, size_mib)
                m = measure(way, url, jar, upload_name)
                got = stored_size(cluster_workdir, m['jar_id'])
                if got != jar_size:
                    raise RuntimeError('%s upload of %d bytes stored %r bytes' % (way, jar_size, got))
                requests.delete('%s/jars/%s' % (url, m['jar_id']), timeout=30).raise_for_status()
                results[way].append(m)
        return results, jar_size
    finally:
        shutil.rmtree(jar_dir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--size-mib', type=int, nargs='+', default=[200])
    parser.add_argument('--runs', type=int, default=1, help='measurements per size and way')
    parser.add_argument('--child', choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument('--url', help=argparse.SUPPRESS)
    parser.add_argument('--jar', help=argparse.SUPPRESS)
    parser.add_argument('--upload-name', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.url, args.jar, args.upload_name)

    from tests.harness.cluster import FlinkCluster
    from tests.integration.ansible_play import ensure_collection_link
    from bench._ports import free_port_block

    ensure_collection_link()
    biggest = max(args.size_mib)
    work = tempfile.mkdtemp(prefix='bench-upload-', dir=os.path.join(ROOT, 'build'))
    cluster = None
    rows = []
    done = False
    try:
        port = free_port_block(10)
        # Flink refuses bodies above rest.server.max-content-length (100 MiB by default).
        limit = max(314572800, (biggest + 16) * MIB)
        cluster = FlinkCluster(args.version, os.path.join(work, 'cluster'), rest_port=port,
                               extra_config={'rest.server.max-content-length': limit})
        cluster.start()
        for size_mib in args.size_mib:
            results, jar_size = uploads_against(cluster.url, os.path.join(work, 'cluster'), size_mib, args.runs)
            rows.append((jar_size, results))

        print('Flink %s, upload to 127.0.0.1, %d run(s) per way, fresh process per run' % (args.version, args.runs))
        print('| jar size | streamed: peak RSS delta | files=: peak RSS delta | streamed: upload s | files=: upload s |')
        print('| --- | --- | --- | --- | --- |')
        before = []
        for jar_size, results in rows:
            peak = dict((w, ' / '.join('%.1f MiB' % m['peak_delta_mib'] for m in results[w])) for w in WAYS)
            secs = dict((w, ' / '.join('%.2f' % m['seconds'] for m in results[w])) for w in WAYS)
            before.extend(m['rss_before_mib'] for w in WAYS for m in results[w])
            print('| %.1f MiB | %s | %s | %s | %s |'
                  % (jar_size / float(MIB), peak['streamed'], peak['files'], secs['streamed'], secs['files']))
        print('(peak RSS delta: VmHWM after the upload minus VmRSS just before it; the child process held '
              '%.0f-%.0f MiB before uploading)' % (min(before), max(before)))
        done = True
    finally:
        if cluster is not None:
            cluster.stop()
        if done:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print('cluster work directory (logs) kept: %s' % work, file=sys.stderr)


if __name__ == '__main__':
    main()
