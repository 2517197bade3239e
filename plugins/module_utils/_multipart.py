# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""A multipart/form-data body with one file field, streamed from disk.

``requests`` builds a ``files=`` body in memory (the whole jar, plus a copy while
it joins the parts), and again on every retry. ``MultipartFileBody`` is what
``requests`` calls a streamed body instead: it has ``__iter__``, ``read(n)`` and
``__len__``, so ``requests`` sends a ``Content-Length`` (from ``__len__``) and
urllib3 sends the body by calling ``read(blocksize)`` until it is empty. At no
point does more than one block of the file sit in memory, whatever the file's
size.

The body is::

    --BOUNDARY\\r\\n
    Content-Disposition: form-data; name="FIELD"; filename="NAME"\\r\\n
    Content-Type: TYPE\\r\\n
    \\r\\n
    <the file's bytes>\\r\\n
    --BOUNDARY--\\r\\n

Names are quoted the way RFC 7578 (section 4.2) and the HTML standard's
multipart/form-data encoder do it: UTF-8 bytes as they are, ``"``, CR and LF
percent-encoded, no ``filename*=`` parameter (RFC 7578 forbids it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import os

DEFAULT_CHUNK = 64 * 1024


class SourceChanged(Exception):
    """The file's size changed while its body was being sent.

    Deliberately not an ``OSError``: urllib3 would take an ``OSError`` raised while
    sending for a broken connection and retry or report it as one.
    """


def quote_param(value):
    """A Content-Disposition parameter value (without the surrounding quotes), as bytes."""
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    value = value.replace('"', '%22').replace('\r', '%0D').replace('\n', '%0A')
    return value.encode('utf-8')


def new_boundary():
    # 32 random hex digits: cannot plausibly occur in the file, and only tokens
    # that need no quoting in the Content-Type header.
    return 'flinkops-' + binascii.hexlify(os.urandom(16)).decode('ascii')


class MultipartFileBody(object):
    """A multipart/form-data request body for one file field, read from ``path`` on demand.

    The file is opened when the object is created (so a missing or unreadable
    file fails there, before any request), its size is fixed then and sent as
    ``Content-Length``. Use one object per attempt: it is read once, front to
    back; ``close()`` (or ``with``) closes the file.
    """

    def __init__(self, path, filename=None, field='jarfile', content_type='application/octet-stream',
                 boundary=None, chunk_size=DEFAULT_CHUNK):
        self.path = path
        self.filename = os.path.basename(path) if filename is None else filename
        self.field = field
        self.boundary = boundary or new_boundary()
        self.chunk_size = int(chunk_size)
        self._fh = open(path, 'rb')
        try:
            self.file_size = os.fstat(self._fh.fileno()).st_size
        except Exception:
            self._fh.close()
            raise
        boundary_b = self.boundary.encode('ascii')
        self._head = b''.join([
            b'--', boundary_b, b'\r\n',
            b'Content-Disposition: form-data; name="', quote_param(field), b'"; filename="',
            quote_param(self.filename), b'"\r\n',
            b'Content-Type: ', content_type.encode('ascii'), b'\r\n',
            b'\r\n',
        ])
        self._tail = b'\r\n--' + boundary_b + b'--\r\n'
        self._length = len(self._head) + self.file_size + len(self._tail)
        # Reading state: which part (0 head, 1 file, 2 tail, 3 done) and the offset in it.
        self._part = 0
        self._offset = 0
        self.bytes_read = 0

    @property
    def content_type(self):
        """The request's Content-Type header value."""
        return 'multipart/form-data; boundary=%s' % self.boundary

    def __len__(self):
        return self._length

    def read(self, n=-1):
        """Up to ``n`` bytes of the body (``b''`` at the end); ``n < 0`` reads the rest.

        Never returns more than ``n`` bytes, and only ever holds what it returns.
        """
        if n is None or n < 0:
            n = self._length
        out = []
        want = n
        while want > 0 and self._part < 3:
            if self._part == 0:
                piece = self._head[self._offset:self._offset + want]
                limit = len(self._head)
            elif self._part == 1:
                piece = self._fh.read(min(want, self.file_size - self._offset))
                limit = self.file_size
                if not piece and self._offset < self.file_size:
                    raise SourceChanged('%s shrank from %d to %d bytes while it was being uploaded'
                                        % (self.path, self.file_size, self._offset))
            else:
                piece = self._tail[self._offset:self._offset + want]
                limit = len(self._tail)
            self._offset += len(piece)
            want -= len(piece)
            if piece:
                out.append(piece)
            if self._offset >= limit:
                if self._part == 1:
                    self._check_not_grown()
                self._part += 1
                self._offset = 0
        data = b''.join(out) if len(out) != 1 else out[0]
        self.bytes_read += len(data)
        return data

    def _check_not_grown(self):
        try:
            size = os.fstat(self._fh.fileno()).st_size
        except OSError:
            return
        if size != self.file_size:
            raise SourceChanged('%s changed size from %d to %d bytes while it was being uploaded'
                                % (self.path, self.file_size, size))

    def __iter__(self):
        while True:
            block = self.read(self.chunk_size)
            if not block:
                return
            yield block

    def close(self):
        if self._fh is not None:
            self._fh.close()

    @property
    def closed(self):
        return self._fh is None or self._fh.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
