# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""Flink REST client: one request choke point, URL failover and the retry policy.

The retry policy is the core of the collection's safety story. Flink answers
"not ready" in several ways while a JobManager starts or a leader is elected:
connection refused, 503 "ongoing leader election", 500 whose cause is an
unreachable or changing leader. None of those says anything about which jobs
exist, so the client waits them out (with backoff, bounded by one deadline for
the whole module run) instead of handing a failure or an empty answer to the
caller. Everything else fails at once with Flink's root cause.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity quiet
    from urlparse import urlsplit

from ansible_collections.flinkops.flink.plugins.module_utils import _http
from ansible_collections.flinkops.flink.plugins.module_utils._multipart import MultipartFileBody, SourceChanged


class FlinkError(Exception):
    """Base class: every failure the modules turn into ``fail_json(msg=...)``."""

    def __init__(self, msg, status=None, cause=None, url=None):
        super(FlinkError, self).__init__(msg)
        self.msg = msg
        self.status = status
        self.cause = cause
        self.url = url


class FlinkApiError(FlinkError):
    """Flink answered with an error that waiting will not cure."""


class FlinkNotReadyTimeout(FlinkError):
    """The cluster kept answering "not ready" until the deadline ran out."""


class FlinkLostAnswer(FlinkError):
    """A request may have reached Flink, but its answer was lost.

    Raised only for requests sent with ``retry_lost=False``; the caller decides
    how to repeat them (for example with the same job id).
    """


class FlinkConfigError(FlinkError):
    """The connection settings themselves are wrong (TLS, credentials, URL)."""


# Causes that mean "the cluster cannot answer right now", not "the answer is no".
_NOT_READY_MARKERS = (
    'recipientunreachableexception',
    'leader election',
    'leaderretrievalexception',
    'no leader',
    'leader is unknown',
    'unknown leader',
    'fencingtokenexception',
    'unavailabledispatcheroperationexception',
    'service temporarily unavailable',
    'asktimeoutexception',
    'could not retrieve the redirect address',
    'leader address',
)

# 503 answers that are not about leadership and will not go away by waiting.
_PERMANENT_503_MARKERS = (
    'rescaling is temporarily disabled',
)

_DUPLICATE_MARKERS = (
    'duplicatejobsubmissionexception',
    'duplicateapplicationsubmissionexception',
    'has already been submitted',
)


def error_text(body):
    """All error strings of a Flink error body, joined; ``body`` is text or parsed JSON."""
    if body is None:
        return ''
    if isinstance(body, dict):
        errors = body.get('errors')
        if isinstance(errors, list):
            return '\n'.join(str(e) for e in errors)
        return json.dumps(body)
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if isinstance(parsed, dict):
        return error_text(parsed)
    return body


_CAUSED_BY = re.compile(r'^\s*Caused by:\s*(.+?)\s*$', re.MULTILINE)
_SQL_REASONS = ('org.apache.flink.table.api.SqlParserException:', 'org.apache.flink.table.api.ValidationException:')
_HTML_TAGS = re.compile(r'<[^>]+>')


def root_cause(body):
    """Flink's reason for an error: the last ``Caused by:`` of the server trace.

    Without a trace, the first meaningful line of the first error. HTML error
    pages (from a reverse proxy) are reduced to their text.
    """
    text = error_text(body)
    if not text:
        return ''
    causes = _CAUSED_BY.findall(text)
    if causes:
        # The Table API's own reasons say what is wrong with SQL in the user's terms ("SQL parse failed. ...",
        # "Object 'x' not found"); the causes under them are the parser's internals.
        sql = [c for c in causes if c.startswith(_SQL_REASONS)]
        return sql[-1] if sql else causes[-1]
    if '<html' in text.lower():
        text = _HTML_TAGS.sub(' ', text)
        return ' '.join(text.split())[:300]
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('at ') and line not in ('Internal server error.', '<Exception on server side:'):
            return line
    return text.strip().splitlines()[0] if text.strip() else ''


def is_not_ready(status, body):
    """True when an HTTP answer means "not ready yet, ask again", never "no"."""
    text = error_text(body).lower()
    if status in (502, 504):
        return True
    if status == 503:
        return not any(m in text for m in _PERMANENT_503_MARKERS)
    if status == 500:
        return any(m in text for m in _NOT_READY_MARKERS)
    return False


def is_duplicate_submission(body):
    text = error_text(body).lower()
    return any(m in text for m in _DUPLICATE_MARKERS)


def validate_url(url):
    """Normalised base URL, or raise FlinkConfigError naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise FlinkConfigError('Flink URL must be a non-empty string, got %r' % (url,))
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise FlinkConfigError('Malformed Flink URL %r: %s' % (url, exc))
    if parts.scheme not in ('http', 'https'):
        raise FlinkConfigError(
            'Malformed Flink URL %r: the scheme must be http or https (for example http://flink-jobmanager:8081)' % url)
    if not parts.hostname:
        raise FlinkConfigError('Malformed Flink URL %r: no host name' % url)
    if parts.query or parts.fragment:
        raise FlinkConfigError('Malformed Flink URL %r: query strings and fragments are not allowed' % url)
    del port
    return url.rstrip('/')


class Deadline(object):
    """A time budget: the whole module run (``wait_timeout``), or one phase of it.

    ``label`` names the budget in messages (``describe()``): a phase of an
    upgrade says which part of ``wait_timeout`` ran out.
    """

    def __init__(self, timeout, clock=time.monotonic, label='wait_timeout'):
        self.timeout = float(timeout)
        self._clock = clock
        self._end = clock() + self.timeout
        self.label = label

    @classmethod
    def ending_at(cls, end, clock=time.monotonic, label='wait_timeout', timeout=None):
        """A budget that runs out at ``end`` (the clock's seconds); ``timeout`` is what ``describe()`` names."""
        deadline = cls(0, clock=clock, label=label)
        deadline._end = end
        deadline.timeout = float(timeout if timeout is not None else max(0.0, end - clock()))
        return deadline

    @property
    def end(self):
        return self._end

    def now(self):
        """The deadline's clock (monotonic seconds)."""
        return self._clock()

    def remaining(self):
        return max(0.0, self._end - self._clock())

    def expired(self):
        return self.remaining() <= 0.0

    def describe(self):
        return '%s=%.0f s' % (self.label, self.timeout)


class FlinkClient(object):
    """Talks to one Flink cluster through one or more REST endpoints.

    ``urls`` are tried in order; a connection failure moves on to the next one, so
    a list of JobManagers survives a dead one. All waiting is bounded by
    ``deadline``.
    """

    MIN_BACKOFF = 0.25
    MAX_BACKOFF = 3.0
    # A host name that does not resolve is most likely a typo in ``url``, not a
    # JobManager on its way up: it gets this many failed lookups, or this many
    # seconds from the start of its first failed lookup, whichever comes first.
    DNS_GRACE_ATTEMPTS = 3
    DNS_GRACE_SECONDS = 5.0

    def __init__(self, urls, deadline, validate_certs=True, ca_path=None, client_cert=None,
                 client_key=None, username=None, password=None, headers=None,
                 request_timeout=10.0, session=None, sleep=time.sleep):
        if isinstance(urls, str):
            urls = [urls]
        if not urls:
            raise FlinkConfigError('No Flink URL given: set the url option or the FLINK_URL environment variable')
        self.urls = [validate_url(u) for u in urls]
        self.deadline = deadline
        self.request_timeout = float(request_timeout)
        self._sleep = sleep
        self._current = 0
        # url -> {'first': clock time the first failed lookup started, 'failures': n, 'host': ..., 'reason': ...};
        # an entry goes away as soon as the host resolves again.
        self._unresolved = {}
        self.requests_made = 0
        self.log = []  # (method, path, status or error) for debugging and tests
        self.session = session if session is not None else _http.Session()
        if ca_path:
            self.session.verify = ca_path
        else:
            self.session.verify = bool(validate_certs)
        if client_cert and client_key:
            self.session.cert = (client_cert, client_key)
        elif client_cert:
            self.session.cert = client_cert
        elif client_key:
            raise FlinkConfigError('client_key was given without client_cert')
        if username:
            self.session.auth = (username, password or '')
        self.session.headers.update({'Accept': 'application/json'})
        if headers:
            self.session.headers.update(dict((str(k), str(v)) for k, v in headers.items()))

    @property
    def url(self):
        """The endpoint currently in use."""
        return self.urls[self._current]

    @property
    def current_index(self):
        return self._current

    def use_index(self, index):
        """Send the next requests to ``urls[index]`` first (the rotation goes on from there)."""
        self._current = index % len(self.urls)

    def _rotate(self):
        self._current = (self._current + 1) % len(self.urls)

    def request(self, method, path, what, json_body=None, params=None,
                allow_404=False, retry_lost=True, ok_statuses=(200, 201, 202),
                body_factory=None, timeout=None, text=False):
        """Send one logical request; return parsed JSON (``{}`` when empty).

        ``what`` says what the module was doing, for error messages
        ("list jobs", "start job 'orders'").
        404 returns ``None`` when ``allow_404``. "Not ready" answers and
        connection failures are retried until the deadline; with
        ``retry_lost=False`` an answer lost after the request may have been
        delivered raises FlinkLostAnswer instead of being retried.
        Other errors raise FlinkApiError carrying Flink's root cause. ``text``:
        return the body as text (a log file), not parsed.

        A host name in ``urls`` that does not resolve is retried only for a
        short grace (``DNS_GRACE_ATTEMPTS`` lookups or ``DNS_GRACE_SECONDS``,
        whichever comes first) while the other URLs are still tried in turn;
        once every URL is past that grace, FlinkConfigError names the hosts.

        Request body, one of:

        ``json_body``
            sent as JSON.
        ``body_factory``
            a callable returning ``(stream, content_type)``, called once per
            attempt, so a retry sends the body again from its start without the
            client holding its bytes. ``stream`` has ``read(n)`` and ``__len__``
            (like ``_multipart.MultipartFileBody``) and is sent in blocks with a
            Content-Length (``_http``); it is closed after the attempt. Memory
            use does not grow with the body's size.

        ``timeout`` (seconds) is this call's read timeout, in place of
        ``request_timeout``, for calls Flink answers only after real work
        (``/jars/<id>/plan`` and ``/run`` run the program's ``main()`` inside
        the request; big uploads). It is used as given: the remaining
        ``wait_timeout`` does not shorten it. Cutting such a call short would
        turn a slow success into a lost answer (FlinkLostAnswer, or a repeated
        request), which is worse than running over the deadline; so one call
        may end up to ``timeout`` seconds after the deadline. The deadline still
        bounds the waiting: no new attempt starts once it has run out, and the
        connect timeout stays ``min(request_timeout, remaining)`` as for every
        call. Without ``timeout`` nothing changes: connect and read timeouts are
        both ``min(request_timeout, remaining)`` (at least 0.5 s).
        """
        if json_body is not None and body_factory is not None:
            raise ValueError('request() takes json_body or body_factory, not both')
        if timeout is not None and float(timeout) <= 0:
            raise ValueError('timeout must be more than 0, got %r' % (timeout,))
        backoff = self.MIN_BACKOFF
        tried_in_round = 0
        last_problem = None
        while True:
            base = self.url
            connect_timeout = min(self.request_timeout, max(self.deadline.remaining(), 0.5))
            if timeout is None:
                read_timeout = connect_timeout
                req_timeout = connect_timeout
            else:
                read_timeout = float(timeout)
                req_timeout = (connect_timeout, read_timeout)
            data = None
            req_headers = None
            if body_factory is not None:
                try:
                    data, content_type = body_factory()
                except (IOError, OSError) as exc:
                    raise FlinkError('Could not %s: %s' % (what, exc), url=base)
                req_headers = {'Content-Type': content_type}
            self.requests_made += 1
            started = self.deadline.now()
            try:
                resp = self.session.request(method, base + path, json=json_body, data=data,
                                            headers=req_headers, params=params, timeout=req_timeout,
                                            allow_redirects=False, verify=self.session.verify,
                                            cert=self.session.cert)
            except SourceChanged as exc:
                raise FlinkError('Could not %s: %s' % (what, exc), url=base)
            except _http.SSLError as exc:
                raise FlinkConfigError(
                    'TLS handshake with %s failed while trying to %s: %s. Check ca_path, client_cert/client_key '
                    'and validate_certs, and that the endpoint really speaks https.' % (base, what, _short(exc)),
                    url=base)
            except (_http.ConnectTimeout, _http.InvalidURL) as exc:
                if isinstance(exc, _http.InvalidURL):
                    raise FlinkConfigError('Malformed Flink URL %s: %s' % (base, _short(exc)), url=base)
                self._unresolved.pop(base, None)
                last_problem = 'connection to %s timed out' % base
                self.log.append((method, path, 'connect-timeout'))
            except _http.ConnectionError as exc:
                dns_reason = _name_resolution_failure(exc)
                if dns_reason is not None:
                    # Nothing was sent: as safe to repeat as a refused connection.
                    last_problem = 'cannot resolve host %s of url %s (%s)' % (_host(base), base, dns_reason)
                    self.log.append((method, path, 'unresolved'))
                    self._note_unresolved(base, dns_reason, started)
                    self._fail_if_nothing_resolves()
                elif _is_refused(exc):
                    self._unresolved.pop(base, None)
                    last_problem = 'connection to %s refused (%s)' % (base, _short(exc))
                    self.log.append((method, path, 'refused'))
                else:
                    self._unresolved.pop(base, None)
                    last_problem = 'connection to %s broke: %s' % (base, _short(exc))
                    self.log.append((method, path, 'broken'))
                    if not retry_lost:
                        raise FlinkLostAnswer('the answer to %s was lost (%s)' % (what, last_problem), url=base)
            except _http.Timeout:
                self._unresolved.pop(base, None)
                last_problem = 'no answer from %s within %.0f s' % (base, read_timeout)
                self.log.append((method, path, 'read-timeout'))
                if not retry_lost:
                    raise FlinkLostAnswer('the answer to %s was lost (%s)' % (what, last_problem), url=base)
            except _http.RequestException as exc:
                raise FlinkApiError('Could not %s at %s: %s' % (what, base, _short(exc)), url=base)
            else:
                self._unresolved.pop(base, None)
                self.log.append((method, path, resp.status_code))
                status = resp.status_code
                if status in ok_statuses:
                    return resp.text if text else _parse_json(resp, what, base)
                if status == 404 and allow_404:
                    return None
                body = resp.text
                if status in (401, 403):
                    raise FlinkConfigError(
                        'Flink at %s refused the request to %s with HTTP %d (%s): check url_username/url_password '
                        'or headers' % (base, what, status, root_cause(body) or resp.reason), status=status, url=base)
                if status in (301, 302, 307, 308):
                    raise FlinkConfigError(
                        'Flink at %s redirected the request to %s (HTTP %d to %s): point url at the REST endpoint '
                        'itself' % (base, what, status, resp.headers.get('Location')), status=status, url=base)
                if is_not_ready(status, body):
                    last_problem = 'HTTP %d from %s: %s' % (status, base, root_cause(body) or resp.reason)
                    if not retry_lost and status in (502, 504):
                        # A proxy lost the upstream answer: the request may have been delivered.
                        raise FlinkLostAnswer('the answer to %s was lost (%s)' % (what, last_problem),
                                              status=status, url=base)
                else:
                    cause = root_cause(body) or resp.reason or ''
                    raise FlinkApiError('Could not %s: %s (HTTP %d from %s)' % (what, cause, status, base),
                                        status=status, cause=cause, url=base)
            finally:
                if data is not None and hasattr(data, 'close'):
                    data.close()
            # Not ready: try the next endpoint at once, then back off after a full round.
            tried_in_round += 1
            self._rotate()
            if self.deadline.expired():
                unresolved = ''
                if self._unresolved:
                    unresolved = '; cannot resolve %s' % ', '.join(
                        '%s (url %s)' % (e['host'], u) for u, e in sorted(self._unresolved.items()))
                raise FlinkNotReadyTimeout(
                    'Flink was not ready to %s within %s; last problem: %s%s'
                    % (what, self.deadline.describe(), last_problem, unresolved), url=base)
            if tried_in_round >= len(self.urls):
                tried_in_round = 0
                self._sleep(min(backoff, self.deadline.remaining()))
                backoff = min(backoff * 1.6, self.MAX_BACKOFF)

    def _note_unresolved(self, base, reason, started):
        entry = self._unresolved.get(base)
        if entry is None:
            entry = self._unresolved[base] = {'first': started, 'failures': 0, 'host': _host(base)}
        entry['failures'] += 1
        entry['reason'] = reason

    def _fail_if_nothing_resolves(self):
        """Raise FlinkConfigError once every URL's host failed to resolve past its grace."""
        now = self.deadline.now()
        for u in self.urls:
            entry = self._unresolved.get(u)
            if entry is None:
                return
            if entry['failures'] < self.DNS_GRACE_ATTEMPTS and now - entry['first'] < self.DNS_GRACE_SECONDS:
                return
        seen = []
        for u in self.urls:
            if u not in seen:
                seen.append(u)
        msg = ' '.join('Cannot resolve host %s of url %s: %s.' % (self._unresolved[u]['host'], u,
                                                                  self._unresolved[u]['reason']) for u in seen)
        raise FlinkConfigError(msg + ' Check the url option.', url=self.url)

    # Convenience wrappers -------------------------------------------------

    def get(self, path, what, **kwargs):
        return self.request('GET', path, what, **kwargs)

    def upload(self, path, upload_name=None, what=None, retry_lost=False, timeout=None,
               field='jarfile', content_type='application/x-java-archive'):
        """Upload the file at ``path`` with ``POST /jars/upload``; return Flink's parsed JSON answer.

        Flink answers ``{"filename": ".../<uuid>_<upload_name>", "status": "success"}``;
        the jar id is the last path element of ``filename``. ``upload_name`` is the
        file name Flink is told (it must end in ``.jar``; default: the base name of
        ``path``), ``what`` the action for error messages (default "upload jar PATH").

        The body is streamed from disk (``_multipart.MultipartFileBody``): memory
        use does not depend on the jar's size, and every attempt reopens the file
        and sends it from the start.

        ``retry_lost`` defaults to False: every upload stores a new copy in Flink,
        so when the answer is lost after the body may have arrived (connection
        broke, read timeout, 502/504 from a proxy) this raises FlinkLostAnswer and
        the caller can look for the copy in ``GET /jars`` before uploading again.
        Connection refused, unresolvable hosts (briefly) and "not ready" answers
        are retried as for every request. ``timeout`` as in ``request()``: the wait
        for Flink's answer once the body is sent (it writes the jar to disk first).
        A missing or unreadable file raises FlinkError before anything is sent; a
        file that changes size during the upload raises FlinkError.
        """
        if upload_name is None:
            upload_name = os.path.basename(path)
        if what is None:
            what = 'upload jar %s' % path

        def body_factory():
            body = MultipartFileBody(path, filename=upload_name, field=field, content_type=content_type)
            return body, body.content_type

        return self.request('POST', '/jars/upload', what, body_factory=body_factory, retry_lost=retry_lost,
                            timeout=timeout)


def _parse_json(resp, what, base):
    if not resp.content:
        return {}
    try:
        return resp.json()
    except ValueError:
        raise FlinkApiError('Could not %s: %s answered with something that is not JSON (%s...); is url a Flink '
                            'REST endpoint?' % (what, base, resp.text[:80].strip()), status=resp.status_code, url=base)


def _short(exc):
    """A one-line reason from a transport exception (``_http``)."""
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] [^'\")]*", r"\[SSL: [^\]]*\] [^'\"(]*", r"[A-Za-z]*Error\([^()]*\)"):
        m = re.search(pattern, text)
        if m:
            return m.group(0).strip()
    return text[:200]


_NAME_RESOLUTION_MARKERS = (
    'nameresolutionerror',
    'failed to resolve',
    'name or service not known',
    'nodename nor servname',
    'temporary failure in name resolution',
    'no address associated with hostname',
    'getaddrinfo failed',
)


def _name_resolution_failure(exc):
    """A one-line reason when ``exc`` says a host name could not be resolved, else None."""
    text = str(exc).lower()
    if any(m in text for m in _NAME_RESOLUTION_MARKERS):
        return _short(exc)
    return None


def _host(url):
    return urlsplit(url).hostname


def _is_refused(exc):
    text = str(exc).lower()
    return ('refused' in text or 'no route to host' in text or 'failed to establish a new connection' in text
            or 'network is unreachable' in text)
