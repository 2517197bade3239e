"""Compile the example job with the machine's JDK against a Flink distribution.

    python -m tests.harness.jobs --version 2.3.0 --variant v1     # prints the jar path

``variant`` is compiled into the class as its VERSION constant, so two variants
are two jars with different bytes and the same behaviour (an "upgrade").
Jars are cached in ``$FLINKOPS_CACHE/jars/<flink version>/`` by a hash of the
source and variant, written atomically.
"""

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.harness.flinkdist import cache_root, ensure_flink_home  # noqa: E402

SOURCE_DIR = os.path.join(ROOT, 'examples', 'jobs', 'src', 'main', 'java')
MAIN_CLASS = 'org.flinkops.examples.StatefulCounter'


def _sources():
    return sorted(glob.glob(os.path.join(SOURCE_DIR, '**', '*.java'), recursive=True))


def build_jar(version, variant='v1'):
    h = hashlib.sha256(variant.encode())
    for path in _sources():
        with open(path, 'rb') as f:
            h.update(f.read())
    out_dir = os.path.join(cache_root(), 'jars', version)
    jar = os.path.join(out_dir, 'stateful-counter-%s-%s.jar' % (variant, h.hexdigest()[:12]))
    if os.path.exists(jar):
        return jar
    home = ensure_flink_home(version)
    classpath = os.pathsep.join(sorted(glob.glob(os.path.join(home, 'lib', '*.jar'))))
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix='build-', dir=out_dir)
    try:
        src = os.path.join(work, 'src')
        for path in _sources():
            rel = os.path.relpath(path, SOURCE_DIR)
            target = os.path.join(src, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(path) as f:
                text = f.read().replace('@VERSION@', variant)
            with open(target, 'w') as f:
                f.write(text)
        classes = os.path.join(work, 'classes')
        os.makedirs(classes)
        subprocess.check_call(['javac', '-nowarn', '-Xlint:none', '--release', '11', '-cp', classpath, '-d', classes]
                              + sorted(glob.glob(os.path.join(src, '**', '*.java'), recursive=True)))
        tmp_jar = os.path.join(work, 'job.jar')
        subprocess.check_call(['jar', 'cfe', tmp_jar, MAIN_CLASS, '-C', classes, '.'])
        os.rename(tmp_jar, jar)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return jar


def main(argv=None):
    parser = argparse.ArgumentParser(description='Build the example job jar')
    parser.add_argument('--version', default='2.3.0')
    parser.add_argument('--variant', default='v1')
    args = parser.parse_args(argv)
    print(build_jar(args.version, args.variant))


if __name__ == '__main__':
    main()
