"""A real nginx in front of Flink, from the distribution's package, owned by pid.

No root install: ``apt-get download nginx`` fetches the package and ``dpkg-deb -x``
unpacks it into ``$FLINKOPS_CACHE/nginx/<package version>/`` (default
``~/.cache/flinkops``), once. Each ``Nginx`` runs that binary in the foreground
(``daemon off; master_process off;``, one process) with its own prefix, config,
logs, pid file and temp paths under its work directory, listening on a free
loopback port; it is started with ``Popen`` and stopped by that pid, never by
name.

It can require HTTP basic auth (an htpasswd file with ``{SSHA}`` hashes written
here), a bearer token, and TLS with client certificates (mutual TLS). With a
``prefix`` (``/flink/``), Flink is reached under that path only, as behind a YARN
proxy or a Kubernetes ingress path: ``location /flink/ { proxy_pass <upstream>/; }``
strips the prefix, every other path answers 404 without reaching Flink, and the
access log also names the upstream that answered and its status (``-`` when
nginx answered itself).
``make_pki`` creates the certificates with the openssl command line.
"""

import base64
import fcntl
import glob
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def cache_root():
    return os.environ.get('FLINKOPS_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'flinkops')


def nginx_binary():
    """Path of an unpacked distribution nginx, downloaded with apt-get on first use."""
    root = os.path.join(cache_root(), 'nginx')
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = sorted(glob.glob(os.path.join(root, '*', 'usr', 'sbin', 'nginx')))
        if found:
            return found[-1]
        tmp = tempfile.mkdtemp(prefix='.download-', dir=root)
        try:
            got = subprocess.run(['apt-get', 'download', 'nginx'], cwd=tmp, check=False, capture_output=True,
                                 text=True, timeout=300)
            if got.returncode != 0:
                raise RuntimeError('apt-get download nginx failed (rc=%d): %s\nThe package lists may be missing: '
                                   'run apt-get update once.' % (got.returncode, (got.stderr or got.stdout).strip()))
            deb = glob.glob(os.path.join(tmp, 'nginx_*.deb'))[0]
            version = subprocess.run(['dpkg-deb', '-f', deb, 'Version'], check=True, capture_output=True,
                                     text=True).stdout.strip()
            unpacked = os.path.join(tmp, 'root')
            subprocess.run(['dpkg-deb', '-x', deb, unpacked], check=True, capture_output=True, timeout=120)
            dest = os.path.join(root, version.replace('/', '_'))
            os.rename(unpacked, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return os.path.join(dest, 'usr', 'sbin', 'nginx')


def htpasswd_line(user, password, salt=None):
    """An htpasswd entry with the {SSHA} scheme (SHA-1 of password+salt, then salt, base64), which nginx accepts."""
    salt = salt if salt is not None else os.urandom(8)
    digest = hashlib.sha1(password.encode('utf-8') + salt).digest()
    return '%s:{SSHA}%s' % (user, base64.b64encode(digest + salt).decode('ascii'))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    subprocess.run(['openssl'] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(directory, server_names=('localhost', '127.0.0.1'), client=True, name='test'):
    """A CA, a server certificate for ``server_names`` and a client certificate, as PEM files.

    Returns a dict of paths: ca, ca_key, server_cert, server_key, client_cert, client_key.
    """
    os.makedirs(directory, exist_ok=True)
    d = directory
    _openssl('req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-days', '30', '-nodes', '-keyout', 'ca.key',
             '-out', 'ca.pem', '-subj', '/O=flinkops tests/CN=%s CA' % name,
             '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
             cwd=d)
    san = ','.join(('IP:%s' % n) if n.replace('.', '').isdigit() or ':' in n else ('DNS:%s' % n)
                   for n in server_names)
    kinds = [('server', 'serverAuth', san)] + ([('client', 'clientAuth', None)] if client else [])
    for kind, usage, alt in kinds:
        _openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', '%s.key' % kind, '-out',
                 '%s.csr' % kind, '-subj', '/O=flinkops tests/CN=%s %s' % (name, kind), cwd=d)
        with open(os.path.join(d, '%s.ext' % kind), 'w') as f:
            f.write('basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
                    'extendedKeyUsage=%s\n' % usage)
            if alt:
                f.write('subjectAltName=%s\n' % alt)
        _openssl('x509', '-req', '-sha256', '-days', '30', '-in', '%s.csr' % kind, '-CA', 'ca.pem', '-CAkey',
                 'ca.key', '-set_serial', str(int.from_bytes(os.urandom(8), 'big')), '-extfile', '%s.ext' % kind,
                 '-out', '%s.pem' % kind, cwd=d)
    paths = {'ca': 'ca.pem', 'ca_key': 'ca.key', 'server_cert': 'server.pem', 'server_key': 'server.key'}
    if client:
        paths.update(client_cert='client.pem', client_key='client.key')
    return dict((k, os.path.join(d, v)) for k, v in paths.items())


class Nginx(object):
    """nginx on 127.0.0.1:<free port> proxying to ``upstream`` (a Flink REST URL)."""

    def __init__(self, workdir, upstream, users=None, bearer_token=None, tls=None, client_ca=None, prefix=None):
        self.workdir = workdir
        self.upstream = upstream.rstrip('/')
        self.users = dict(users or {})
        self.bearer_token = bearer_token
        self.tls = tls  # dict with server_cert and server_key
        self.client_ca = client_ca  # require client certificates signed by this CA
        # '/flink/' (always with both slashes) or None: Flink at the server's root
        self.prefix = ('/%s/' % prefix.strip('/')) if prefix and prefix.strip('/') else None
        self.port = None
        self.proc = None
        self.binary = None

    @property
    def url(self):
        return '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.port)

    @property
    def prefix_url(self):
        """Where Flink is: ``url`` plus the prefix, with its trailing slash (``url`` without a prefix)."""
        return self.url + (self.prefix or '')

    def _config(self):
        w = self.workdir
        lines = [
            'daemon off;',
            'master_process off;',
            'worker_processes 1;',
            'pid %s/nginx.pid;' % w,
            'error_log %s/error.log info;' % w,
            'events { worker_connections 256; }',
            'http {',
        ]
        if self.prefix:
            # The combined format, then what went upstream: the access log shows both sides of the prefix.
            lines += ['  log_format flinkops_prefix \'$remote_addr - $remote_user [$time_local] "$request" $status '
                      '$body_bytes_sent "$http_referer" "$http_user_agent" upstream=$upstream_addr '
                      'upstream_status=$upstream_status\';']
        lines += [
            '  default_type application/octet-stream;',
            '  access_log %s/access.log%s;' % (w, ' flinkops_prefix' if self.prefix else ''),
            '  client_body_temp_path %s/tmp/body;' % w,
            '  proxy_temp_path %s/tmp/proxy;' % w,
            '  fastcgi_temp_path %s/tmp/fastcgi;' % w,
            '  uwsgi_temp_path %s/tmp/uwsgi;' % w,
            '  scgi_temp_path %s/tmp/scgi;' % w,
            '  client_max_body_size 200m;',
        ]
        if self.bearer_token:
            lines += ['  map $http_authorization $flinkops_token_ok {',
                      '    default 0;',
                      '    "Bearer %s" 1;' % self.bearer_token,
                      '  }']
        lines += ['  server {',
                  '    listen 127.0.0.1:%d%s;' % (self.port, ' ssl' if self.tls else '')]
        if self.tls:
            lines += ['    ssl_certificate %s;' % self.tls['server_cert'],
                      '    ssl_certificate_key %s;' % self.tls['server_key'],
                      '    ssl_protocols TLSv1.2 TLSv1.3;']
            if self.client_ca:
                lines += ['    ssl_client_certificate %s;' % self.client_ca,
                          '    ssl_verify_client on;']
        if self.prefix:
            # Only the prefix leads to Flink: a request that lost it must not reach Flink by accident.
            lines += ['    location / { return 404; }',
                      '    location %s {' % self.prefix]
        else:
            lines += ['    location / {']
        if self.users:
            lines += ['      auth_basic "flink";',
                      '      auth_basic_user_file %s/htpasswd;' % w]
        if self.bearer_token:
            lines += ['      if ($flinkops_token_ok = 0) { return 401; }']
        # With a prefix, proxy_pass with a URI ('/') replaces the matched prefix by it: /flink/jobs -> /jobs.
        lines += ['      proxy_pass %s%s;' % (self.upstream, '/' if self.prefix else ''),
                  '      proxy_http_version 1.1;',
                  '      proxy_set_header Authorization "";',
                  '      proxy_read_timeout 120s;',
                  '    }',
                  '  }',
                  '}']
        return '\n'.join(lines) + '\n'

    def start(self, timeout=20):
        self.binary = nginx_binary()
        os.makedirs(os.path.join(self.workdir, 'tmp'), exist_ok=True)
        with open(os.path.join(self.workdir, 'htpasswd'), 'w') as f:
            for user, password in self.users.items():
                f.write(htpasswd_line(user, password) + '\n')
        last = None
        for attempt in range(5):  # a free port can be taken between the probe and the bind: try another
            self.port = free_port()
            conf = os.path.join(self.workdir, 'nginx.conf')
            with open(conf, 'w') as f:
                f.write(self._config())
            log = open(os.path.join(self.workdir, 'nginx.out'), 'ab')
            self.proc = subprocess.Popen([self.binary, '-p', self.workdir + '/', '-c', conf,
                                          '-e', os.path.join(self.workdir, 'error.log')],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            log.close()
            end = time.monotonic() + timeout
            while time.monotonic() < end and self.proc.poll() is None:
                try:
                    with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                        return self
                except OSError:
                    time.sleep(0.05)
            last = 'attempt %d: %s' % (attempt + 1, self.log_tail())
            self.stop()
            if 'Address already in use' not in last:
                break
        raise RuntimeError('nginx did not start:\n%s' % last)

    def log_tail(self, lines=30):
        text = ''
        for name in ('nginx.out', 'error.log'):
            try:
                with open(os.path.join(self.workdir, name), errors='replace') as f:
                    text += ''.join(f.readlines()[-lines:])
            except OSError:
                pass
        return text

    def access_log(self):
        try:
            with open(os.path.join(self.workdir, 'access.log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def stop(self, timeout=10):
        """Stop exactly the process started here (by its pid)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
