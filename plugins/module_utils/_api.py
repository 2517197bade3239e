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
import re
import time

try:
    import requests
    from requests import exceptions as rex
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised through missing_required_lib
    requests = None
    rex = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity quiet
    from urlparse import urlsplit


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
        return causes[-1]
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
    """One time budget for a whole module run (``wait_timeout``)."""

    def __init__(self, timeout, clock=time.monotonic):
        self.timeout = float(timeout)
        self._clock = clock
        self._end = clock() + self.timeout

    def remaining(self):
        return max(0.0, self._end - self._clock())

    def expired(self):
        return self.remaining() <= 0.0


class FlinkClient(object):
    """Talks to one Flink cluster through one or more REST endpoints.

    ``urls`` are tried in order; a connection failure moves on to the next one, so
    a list of JobManagers survives a dead one. All waiting is bounded by
    ``deadline``.
    """

    MIN_BACKOFF = 0.25
    MAX_BACKOFF = 3.0

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
        self.requests_made = 0
        self.log = []  # (method, path, status or error) for debugging and tests
        self.session = session if session is not None else requests.Session()
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

    def _rotate(self):
        self._current = (self._current + 1) % len(self.urls)

    def request(self, method, path, what, json_body=None, files=None, params=None,
                allow_404=False, retry_lost=True, ok_statuses=(200, 201, 202)):
        """Send one logical request; return parsed JSON (``{}`` when empty).

        ``what`` says what the module was doing, for error messages
        ("list jobs", "start job 'orders'").
        404 returns ``None`` when ``allow_404``. "Not ready" answers and
        connection failures are retried until the deadline; with
        ``retry_lost=False`` an answer lost after the request may have been
        delivered raises FlinkLostAnswer instead of being retried.
        Other errors raise FlinkApiError carrying Flink's root cause.
        """
        backoff = self.MIN_BACKOFF
        tried_in_round = 0
        last_problem = None
        while True:
            base = self.url
            timeout = min(self.request_timeout, max(self.deadline.remaining(), 0.5))
            if files is not None:
                for f in files.values():
                    if hasattr(f[1], 'seek'):
                        f[1].seek(0)
            self.requests_made += 1
            try:
                # verify and cert go with every request: a Session's own settings lose against
                # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment, a request's do not.
                resp = self.session.request(method, base + path, json=json_body, files=files,
                                            params=params, timeout=timeout, allow_redirects=False,
                                            verify=self.session.verify, cert=self.session.cert)
            except rex.SSLError as exc:
                raise FlinkConfigError(
                    'TLS handshake with %s failed while trying to %s: %s. Check ca_path, client_cert/client_key '
                    'and validate_certs, and that the endpoint really speaks https.' % (base, what, _short(exc)),
                    url=base)
            except (rex.ConnectTimeout, rex.InvalidURL, rex.InvalidSchema, rex.MissingSchema) as exc:
                if isinstance(exc, (rex.InvalidURL, rex.InvalidSchema, rex.MissingSchema)):
                    raise FlinkConfigError('Malformed Flink URL %s: %s' % (base, _short(exc)), url=base)
                last_problem = 'connection to %s timed out' % base
                self.log.append((method, path, 'connect-timeout'))
            except rex.ConnectionError as exc:
                if _is_refused(exc):
                    last_problem = 'connection to %s refused (%s)' % (base, _short(exc))
                    self.log.append((method, path, 'refused'))
                else:
                    last_problem = 'connection to %s broke: %s' % (base, _short(exc))
                    self.log.append((method, path, 'broken'))
                    if not retry_lost:
                        raise FlinkLostAnswer('the answer to %s was lost (%s)' % (what, last_problem), url=base)
            except rex.Timeout as exc:
                last_problem = 'no answer from %s within %.0f s' % (base, timeout)
                self.log.append((method, path, 'read-timeout'))
                if not retry_lost:
                    raise FlinkLostAnswer('the answer to %s was lost (%s)' % (what, last_problem), url=base)
            except rex.RequestException as exc:
                raise FlinkApiError('Could not %s at %s: %s' % (what, base, _short(exc)), url=base)
            else:
                self.log.append((method, path, resp.status_code))
                status = resp.status_code
                if status in ok_statuses:
                    return _parse_json(resp, what, base)
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
            # Not ready: try the next endpoint at once, then back off after a full round.
            tried_in_round += 1
            self._rotate()
            if self.deadline.expired():
                raise FlinkNotReadyTimeout(
                    'Flink was not ready to %s within wait_timeout=%.0f s; last problem: %s'
                    % (what, self.deadline.timeout, last_problem), url=base)
            if tried_in_round >= len(self.urls):
                tried_in_round = 0
                self._sleep(min(backoff, self.deadline.remaining()))
                backoff = min(backoff * 1.6, self.MAX_BACKOFF)

    # Convenience wrappers -------------------------------------------------

    def get(self, path, what, **kwargs):
        return self.request('GET', path, what, **kwargs)


def _parse_json(resp, what, base):
    if not resp.content:
        return {}
    try:
        return resp.json()
    except ValueError:
        raise FlinkApiError('Could not %s: %s answered with something that is not JSON (%s...); is url a Flink '
                            'REST endpoint?' % (what, base, resp.text[:80].strip()), status=resp.status_code, url=base)


def _short(exc):
    """A one-line reason from a requests/urllib3 exception chain."""
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] [^'\")]*", r"\[SSL: [^\]]*\] [^'\"(]*", r"[A-Za-z]*Error\([^()]*\)"):
        m = re.search(pattern, text)
        if m:
            return m.group(0).strip()
    return text[:200]


def _is_refused(exc):
    text = str(exc).lower()
    return ('refused' in text or 'name or service not known' in text or 'nodename nor servname' in text
            or 'no route to host' in text or 'failed to establish a new connection' in text
            or 'network is unreachable' in text or 'temporary failure in name resolution' in text)
