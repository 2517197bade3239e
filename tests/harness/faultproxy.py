"""A fault-injecting HTTP proxy on loopback, between a module and a real Flink.

Rules say which requests to disturb and how; everything else is forwarded
unchanged. Faults:

* ``drop``: forward the request to Flink, then close the client's connection
  without an answer (the request took effect, the client never learns it).
* ``reset``: close the connection without forwarding.
* ``status``: answer with a given status and body without forwarding
  (for example Flink's leader-election 503).
* ``delay``: wait, then forward (for answers slower than the client's timeout).
* ``hook``: call ``before()`` and forward, then call ``after(status, body)``;
  when ``after`` returns ``'drop'`` the answer is dropped. Failover tests use it
  to kill the leading JobManager at an exact point of a module's run.

When Flink itself does not answer (a killed JobManager), the proxy closes the
client's connection, as the dead JobManager would.

The proxy counts what it did, so tests can assert that a fault really fired.
It only ever binds 127.0.0.1 and stops with ``close()``.
"""

import http.client
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LEADER_ELECTION_BODY = json.dumps({'errors': [
    'Service temporarily unavailable due to an ongoing leader election. Please refresh.']})


class Rule(object):
    def __init__(self, method, path, fault, times=1, status=503, body=LEADER_ELECTION_BODY, seconds=0.0,
                 before=None, after=None):
        self.before = before
        self.after = after
        self.method = method
        self.path = re.compile(path)
        self.fault = fault
        self.times = times          # how often the rule fires; None = always
        self.status = status
        self.body = body
        self.seconds = seconds
        self.fired = 0

    def matches(self, method, path):
        if self.times is not None and self.fired >= self.times:
            return False
        return (self.method in ('*', method)) and bool(self.path.search(path))


class FaultProxy(object):
    def __init__(self, upstream):
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.rules = []
        self.log = []   # (method, path, fault or None, status)
        self.connections = 0    # client connections accepted (a keep-alive client reuses them)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def setup(self):
                BaseHTTPRequestHandler.setup(self)
                with proxy._lock:
                    proxy.connections += 1

            def _handle(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                rule = proxy._take_rule(self.command, self.path)
                fault = rule.fault if rule else None
                if fault == 'reset':
                    proxy._record(self.command, self.path, fault, None)
                    self._abort()
                    return
                if fault == 'status':
                    data = rule.body.encode()
                    self.send_response(rule.status)
                    self.send_header('Content-Type', 'application/json; charset=UTF-8')
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    proxy._record(self.command, self.path, fault, rule.status)
                    return
                if fault == 'delay':
                    time.sleep(rule.seconds)
                if fault == 'hook' and rule.before:
                    rule.before()
                try:
                    status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                except OSError:
                    proxy._record(self.command, self.path, 'upstream-down', None)
                    self._abort()
                    return
                if fault == 'hook' and rule.after and rule.after(status, data) == 'drop':
                    fault = 'drop'
                if fault == 'drop':
                    proxy._record(self.command, self.path, fault, status)
                    self._abort()
                    return
                try:
                    self.send_response(status)
                    for k, v in headers:
                        if k.lower() not in ('transfer-encoding', 'connection', 'content-length'):
                            self.send_header(k, v)
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                proxy._record(self.command, self.path, fault, status)

            def _abort(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name='faultproxy', daemon=True)
        self._thread.start()

    def add(self, *args, **kwargs):
        rule = Rule(*args, **kwargs)
        with self._lock:
            self.rules.append(rule)
        return rule

    def _take_rule(self, method, path):
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    return rule
        return None

    def _record(self, method, path, fault, status):
        with self._lock:
            self.log.append((method, path, fault, status))

    def _forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            fwd = dict((k, v) for k, v in headers.items() if k.lower() not in ('host', 'connection'))
            conn.request(method, path, body=body or None, headers=fwd)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
