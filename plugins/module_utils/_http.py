# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The HTTP transport of the Flink REST client, on Python's standard library alone.

``_api.FlinkClient`` sends every request through ``Session.request``. It needs
less than a general HTTP library offers, and it needs one thing such libraries
hide: whether a failure happened before anything was sent. So:

* A connection is opened (TCP, the TLS handshake, a proxy's CONNECT) before the
  request is written. Every failure up to there is a ``ConnectionError`` whose
  text starts with "Failed to establish a new connection" (or names the host
  that does not resolve), or a ``ConnectTimeout``, or an ``SSLError``: nothing
  reached Flink, so repeating is safe. A failure after that (the connection
  broke, no answer within the read timeout) is "Connection aborted" or
  ``ReadTimeout``: the request may have been delivered.
* Connections are kept alive and reused (one idle pool per endpoint, safe for
  the threads of a job set). A kept connection that the server closed meanwhile
  is noticed before it is used, so an idle timeout on the server's side does not
  turn into a lost answer.
* Connect and read timeouts are separate: ``timeout=(connect, read)``.
* A body may be a stream with ``read(n)`` and ``__len__`` (a jar upload): it is
  sent in blocks with a ``Content-Length``, never held in memory as a whole.
* TLS: ``verify`` True (the system's CA certificates, or ``SSL_CERT_FILE``),
  False, or the path of a CA file or directory; ``cert`` a file with certificate
  and key, or ``(certificate, key)``.
* ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` in the
  environment are honoured (plain HTTP proxies; HTTPS through CONNECT), as the
  ``uri`` module and most HTTP tools do.
* Redirects are never followed; the 3xx answer is returned.

The exception names follow the ``requests`` library's, whose place this took
(``requests`` is no longer needed on the host that runs the modules).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import select
import socket
import ssl
import threading

try:
    from http import client as http_client
    from urllib.parse import quote, unquote, urlencode, urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity quiet
    import httplib as http_client
    from urllib import quote, unquote, urlencode
    from urlparse import urlsplit

USER_AGENT = 'flinkops.flink'
BLOCK_SIZE = 64 * 1024
# What may stay unquoted in a request target (the set requests' requote_uri keeps); anything else is
# percent-encoded, so a space or a non-ASCII character in a jar's name does not make the request invalid.
_SAFE = "!#$%&'()*+,/:;=?@[]~"


class RequestException(IOError):
    """Base class of every failure of ``Session.request``."""


class ConnectionError(RequestException):  # pylint: disable=redefined-builtin
    """No connection, or the connection broke (the text tells which)."""


class SSLError(ConnectionError):
    """TLS failed: the handshake, the certificate, or the client certificate given."""


class Timeout(RequestException):
    """A timeout; see ConnectTimeout and ReadTimeout."""


class ConnectTimeout(ConnectionError, Timeout):
    """No connection within the connect timeout: nothing was sent."""


class ReadTimeout(Timeout):
    """The request was sent, and no answer came within the read timeout."""


class InvalidURL(RequestException, ValueError):
    """The URL cannot be requested (scheme, host or port)."""


class Response(object):
    """An answer: ``status_code``, ``reason``, ``headers`` (case-insensitive ``get``) and the whole ``content``."""

    def __init__(self, status_code, reason, headers, content, url):
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content
        self.url = url

    @property
    def text(self):
        return self.content.decode('utf-8', 'replace')

    def json(self):
        return json.loads(self.text)


def _basic_auth(username, password):
    raw = '%s:%s' % (username, password or '')
    try:
        data = raw.encode('latin-1')
    except UnicodeEncodeError:
        data = raw.encode('utf-8')
    return 'Basic ' + base64.b64encode(data).decode('ascii')


def _target(parts):
    path = parts.path or '/'
    if parts.query:
        path += '?' + parts.query
    return quote(path, safe=_SAFE)


def _dropped(sock):
    """True when a kept-alive connection can no longer be used (the server closed it, or sent something)."""
    try:
        readable = select.select([sock], [], [], 0)[0]
    except (ValueError, OSError, select.error):
        return True
    return bool(readable)


class Session(object):
    """Requests to HTTP(S) endpoints, with kept-alive connections; see the module documentation."""

    def __init__(self):
        self.headers = {'User-Agent': USER_AGENT}
        self.verify = True
        self.cert = None
        self.auth = None
        self.trust_env = True
        self._idle = {}         # endpoint key -> [idle connections]
        self._contexts = {}     # (verify, cert) -> ssl.SSLContext
        self._lock = threading.Lock()

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- building blocks ---------------------------------------------------

    def _context(self, verify, cert):
        key = (verify, tuple(cert) if isinstance(cert, (list, tuple)) else cert)
        with self._lock:
            ctx = self._contexts.get(key)
        if ctx is not None:
            return ctx
        try:
            if verify is False:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif isinstance(verify, str):
                if os.path.isdir(verify):
                    ctx = ssl.create_default_context(capath=verify)
                else:
                    ctx = ssl.create_default_context(cafile=verify)
            else:
                ctx = ssl.create_default_context()
        except (ssl.SSLError, OSError) as exc:
            raise SSLError('Could not load the CA certificates from %s: %s' % (verify, exc))
        if cert:
            certfile, keyfile = (cert[0], cert[1]) if isinstance(cert, (list, tuple)) else (cert, None)
            try:
                ctx.load_cert_chain(certfile, keyfile)
            except (ssl.SSLError, OSError) as exc:
                raise SSLError('Could not load the client certificate %s%s: %s'
                               % (certfile, ' with key %s' % keyfile if keyfile else '', exc))
        with self._lock:
            self._contexts[key] = ctx
        return ctx

    def _proxy(self, scheme, host, port):
        """The proxy's (host, port, Proxy-Authorization or None) for this endpoint, or None."""
        if not self.trust_env or not any(k.lower().endswith('_proxy') for k in os.environ):
            return None
        # urllib.request only when the environment names a proxy: it is slow to import, for nothing otherwise.
        from urllib.request import getproxies_environment, proxy_bypass_environment
        proxies = getproxies_environment()
        proxy = proxies.get(scheme) or proxies.get('all')
        if not proxy:
            return None
        if proxy_bypass_environment('%s:%s' % (host, port), proxies) or proxy_bypass_environment(host, proxies):
            return None
        if '://' not in proxy:
            proxy = 'http://' + proxy
        try:
            parts = urlsplit(proxy)
            pport = parts.port or 80
        except ValueError as exc:
            raise InvalidURL('Malformed proxy URL in the environment (%s_proxy): %s' % (scheme, exc))
        if parts.scheme != 'http' or not parts.hostname:
            raise InvalidURL('Unsupported proxy URL in the environment (%s_proxy): only http:// proxies are supported'
                             % scheme)
        auth = None
        if parts.username:
            auth = _basic_auth(unquote(parts.username), unquote(parts.password or ''))
        return parts.hostname, pport, auth

    def _new_connection(self, scheme, host, port, proxy, verify, cert):
        if scheme == 'https':
            ctx = self._context(verify, cert)
            if proxy:
                conn = http_client.HTTPSConnection(proxy[0], proxy[1], context=ctx, blocksize=BLOCK_SIZE)
                conn.set_tunnel(host, port, headers={'Proxy-Authorization': proxy[2]} if proxy[2] else None)
            else:
                conn = http_client.HTTPSConnection(host, port, context=ctx, blocksize=BLOCK_SIZE)
        elif proxy:
            conn = http_client.HTTPConnection(proxy[0], proxy[1], blocksize=BLOCK_SIZE)
        else:
            conn = http_client.HTTPConnection(host, port, blocksize=BLOCK_SIZE)
        return conn

    def _checkout(self, key):
        with self._lock:
            conns = self._idle.get(key)
            while conns:
                conn = conns.pop()
                if conn.sock is not None and not _dropped(conn.sock):
                    return conn
                conn.close()
        return None

    def _checkin(self, key, conn):
        if conn.sock is None:
            return
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    # -- the request -------------------------------------------------------

    def request(self, method, url, json=None, data=None, headers=None, params=None, timeout=None,
                allow_redirects=False, verify=None, cert=None):  # pylint: disable=redefined-outer-name
        """Send one request and return its Response; raise the exceptions above. See the module documentation."""
        del allow_redirects  # never followed
        verify = self.verify if verify is None else verify
        cert = self.cert if cert is None else cert
        if isinstance(timeout, (tuple, list)):
            connect_timeout, read_timeout = timeout
        else:
            connect_timeout = read_timeout = timeout
        if params:
            pairs = [(k, v) for k, v in params.items() if v is not None]
            if pairs:
                url += ('&' if '?' in url else '?') + urlencode(pairs, doseq=True)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL('Invalid URL %r: %s' % (url, exc))
        scheme = parts.scheme.lower()
        if scheme not in ('http', 'https'):
            raise InvalidURL('Invalid URL %r: the scheme must be http or https' % url)
        host = parts.hostname
        if not host:
            raise InvalidURL('Invalid URL %r: no host' % url)
        port = port or (443 if scheme == 'https' else 80)

        hdrs = dict(self.headers)
        if self.auth:
            hdrs['Authorization'] = _basic_auth(self.auth[0], self.auth[1])
        body = None
        if json is not None:
            body = _json_dumps(json).encode('utf-8')
            hdrs['Content-Type'] = 'application/json'
        elif data is not None:
            body = data
        if headers:
            hdrs.update(headers)
        if body is not None:
            hdrs['Content-Length'] = str(len(body))
        elif method.upper() in ('POST', 'PUT', 'PATCH'):
            hdrs['Content-Length'] = '0'

        proxy = self._proxy(scheme, host, port)
        target = _target(parts)
        if proxy and scheme == 'http':
            target = '%s://%s%s' % (scheme, parts.netloc.rpartition('@')[2], target)
            if proxy[2]:
                hdrs['Proxy-Authorization'] = proxy[2]
        key = (scheme, host, port, proxy, verify, tuple(cert) if isinstance(cert, (list, tuple)) else cert)

        conn = self._checkout(key)
        if conn is None:
            conn = self._new_connection(scheme, host, port, proxy, verify, cert)
            conn.timeout = connect_timeout
            self._connect(conn, host, proxy)
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout)
        conn.timeout = read_timeout

        done = False
        try:
            conn.request(method, target, body=body, headers=hdrs)
            resp = conn.getresponse()
            content = resp.read()
            done = True
        except socket.timeout:
            raise ReadTimeout('Read timed out. (read timeout=%s)' % (read_timeout,))
        except ssl.SSLError as exc:
            # As the TLS alert of a server that wants a client certificate (TLS 1.3 sends it after the handshake).
            raise SSLError('%s' % (exc,))
        except (http_client.HTTPException, OSError) as exc:
            raise ConnectionError("('Connection aborted.', %r)" % (exc,))
        finally:
            if not done:
                conn.close()
        if resp.will_close:
            conn.close()
        else:
            self._checkin(key, conn)
        return Response(resp.status, resp.reason, resp.headers, content, url)

    @staticmethod
    def _connect(conn, host, proxy):
        """Open ``conn`` (TCP, proxy tunnel, TLS); every failure here means nothing was sent."""
        where = ('proxy %s:%s' % (proxy[0], proxy[1])) if proxy else host
        try:
            conn.connect()
        except socket.gaierror as exc:
            conn.close()
            raise ConnectionError("Failed to resolve '%s' (%s)" % (proxy[0] if proxy else host, exc))
        except ssl.SSLError as exc:     # also ssl.CertificateError
            conn.close()
            raise SSLError('%s' % (exc,))
        except socket.timeout:
            conn.close()
            raise ConnectTimeout('Connection to %s timed out. (connect timeout=%s)' % (where, conn.timeout))
        except (http_client.HTTPException, OSError) as exc:
            conn.close()
            raise ConnectionError('Failed to establish a new connection to %s: %s' % (where, exc))


def _json_dumps(value):
    return json.dumps(value, separators=(',', ':'))
