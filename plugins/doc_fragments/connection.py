# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the Flink REST API of the JobManager, for example C(http://flink-jobmanager:8081).
      - A list of URLs names several JobManagers' REST endpoints of one cluster. They are tried in order; a
        connection failure moves on to the next, so the module keeps working while one JobManager is down.
      - A URL may carry a path prefix, for a REST API behind a reverse proxy, an ingress path or the YARN
        ResourceManager proxy, for example C(https://gateway.example.com/flink/orders/). Requests go to
        C(<url>/<REST path>).
      - If not set, the value of the E(FLINK_URL) environment variable is used (several URLs separated by commas).
    type: list
    elements: str
    required: false
  validate_certs:
    description:
      - Verify the server's TLS certificate for C(https) URLs.
      - If not set, the value of the E(FLINK_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the certificate authority (or the server certificate) to verify C(https) URLs against.
      - If not set, the value of the E(FLINK_CA_PATH) environment variable is used.
    type: path
  client_cert:
    description:
      - PEM file with the client certificate, for Flink's REST mutual TLS (C(security.ssl.rest.authentication-enabled))
        or a proxy that requires one. May also contain the private key.
      - If not set, the value of the E(FLINK_CLIENT_CERT) environment variable is used.
    type: path
  client_key:
    description:
      - PEM file with the private key of O(client_cert), when it is not in the same file.
      - If not set, the value of the E(FLINK_CLIENT_KEY) environment variable is used.
    type: path
  url_username:
    description:
      - User name for HTTP basic authentication, for a reverse proxy in front of Flink.
      - If not set, the value of the E(FLINK_USERNAME) environment variable is used.
    type: str
    aliases: [username]
  url_password:
    description:
      - Password for HTTP basic authentication. Never logged.
      - If not set, the value of the E(FLINK_PASSWORD) environment variable is used.
    type: str
    aliases: [password]
  headers:
    description:
      - Extra HTTP headers sent with every request, for example a bearer token for a proxy. Never logged.
    type: dict
  request_timeout:
    description:
      - Seconds one HTTP request may take before it counts as lost and is retried (within O(wait_timeout)).
      - Keep it short, because a standby JobManager that cannot reach the leader holds requests for up to Flink's
        C(web.timeout).
    type: float
    default: 10
  wait_timeout:
    description:
      - Upper bound in seconds for everything the module does, including waiting for an unreachable cluster,
        a leader election, a job to reach its state and pass the health gate, or a savepoint.
      - One exception, in P(flinkops.flink.flink_job#module) only. A stop-with-savepoint that Flink has begun cannot
        be called back, so it is followed to its end (see that module's O(flinkops.flink.flink_job#module:rollback_timeout)).
    type: int
    default: 120
notes:
  - Connection errors, HTTP 503 (leader election), HTTP 502/504 from a proxy, and HTTP 500 answers whose cause is an
    unreachable or changing leader mean "not ready yet". The module waits with backoff and asks again until
    O(wait_timeout) runs out. It never takes such an answer for "no jobs". Any other error fails at once with Flink's
    root cause.
  - C(HTTP_PROXY), C(HTTPS_PROXY), C(ALL_PROXY) and C(NO_PROXY) in the environment of the module are honoured
    (C(http://) proxies; HTTPS goes through C(CONNECT)). Without O(ca_path), certificates are checked against the
    system's CA certificates (or E(SSL_CERT_FILE)).
  - Supports Flink 1.18 to 2.3 (session clusters; the README's support table says what was run on each line). The
    module reads the Flink version (C(GET /config)) before anything else and fails on an older cluster with a
    message naming the supported versions, having changed nothing.
requirements:
  - Python 3.8 or newer on the host that runs the module. Only Python's standard library is used (the
    C(requests) library is no longer needed).
'''
