# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""A SQL job's statements: split, stripped of comments, and checked before anything is sent.

A SQL job is a script: statements that prepare the session (``CREATE TABLE``,
``CREATE FUNCTION``, ``USE``, ...) and, last, exactly one statement that
starts the job: an ``INSERT`` or a statement set (``EXECUTE STATEMENT SET
BEGIN ... END``). The runner (``_sql_runner``) executes them in order in one
TableEnvironment. Each ``INSERT`` executed on its own would start a job of its
own under the same job id, and a ``SELECT`` would start a job that collects to
the client, so both are refused anywhere but as the last statement, and the
last statement must start exactly one job.

Comments are dropped (a comment is not part of what the job runs, so editing
one does not upgrade a job); everything else is kept as written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class SqlError(ValueError):
    pass


# Statements that prepare the session: run before the job's statement.
PREPARE = ('CREATE', 'DROP', 'ALTER', 'USE', 'LOAD', 'UNLOAD', 'ADD', 'REMOVE')
_WORD = re.compile(r'[A-Za-z_]+')


def _strip_and_split(text):
    """Split ``text`` at semicolons outside quotes and comments; drop comments. Returns the raw pieces."""
    pieces = []
    cur = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in ('\'', '"', '`'):
            j = i + 1
            while True:
                if j >= n:
                    raise SqlError('a %s opened at character %d is never closed'
                                   % ('string' if ch == '\'' else 'quoted identifier', i + 1))
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:     # doubled quote: an escaped quote
                        j += 2
                        continue
                    break
                j += 1
            cur.append(text[i:j + 1])
            i = j + 1
        elif text.startswith('--', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
            cur.append(' ')
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            if j < 0:
                raise SqlError('a comment opened at character %d is never closed' % (i + 1))
            i = j + 2
            cur.append(' ')
        elif ch == ';':
            pieces.append(''.join(cur))
            cur = []
            i += 1
        else:
            cur.append(ch)
            i += 1
    pieces.append(''.join(cur))
    return pieces


def _words(statement, count=3):
    return [w.upper() for w in _WORD.findall(statement)[:count]]


def _starts_job(words):
    return words[:1] == ['INSERT'] or words[:3] == ['EXECUTE', 'STATEMENT', 'SET'] or \
        words[:2] == ['STATEMENT', 'SET'] or words[:2] == ['EXECUTE', 'INSERT']


def split_statements(text):
    """The statements of a SQL script, comments removed, each trimmed, without the final semicolon.

    A statement set (``EXECUTE STATEMENT SET BEGIN ... END``) is one statement: its inner
    ``INSERT``s and their semicolons stay in it.
    """
    statements = []
    group = None
    for piece in _strip_and_split(text or ''):
        stripped = piece.strip()
        if group is not None:
            if not stripped:
                continue
            group.append(stripped)
            if _words(stripped, 2) == ['END']:
                statements.append(';\n'.join(group[:-1]) + ';\n' + group[-1])
                group = None
            continue
        if not stripped:
            continue
        words = _words(stripped, 4)
        if _starts_job(words) and words[:1] != ['INSERT'] and 'BEGIN' in words:
            group = [stripped]
            continue
        statements.append(stripped)
    if group is not None:
        raise SqlError('the statement set that starts with %r has no END' % _head(group[0]))
    return statements


def _head(statement, size=60):
    flat = ' '.join(statement.split())
    return flat if len(flat) <= size else flat[:size - 3] + '...'


def check_statements(statements):
    """Raise SqlError unless the statements prepare a session and then start exactly one job."""
    if not statements:
        raise SqlError('there are no statements: a SQL job needs at least one INSERT (or a statement set)')
    prepare, last = statements[:-1], statements[-1]
    for number, statement in enumerate(prepare, 1):
        words = _words(statement)
        if _starts_job(words) or words[:1] in (['SELECT'], ['WITH'], ['VALUES'], ['TABLE'], ['EXECUTE']):
            raise SqlError(
                'statement %d (%r) starts a job, but only the last statement may: a SQL job is one Flink job, so '
                'put every INSERT into one statement set (EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; '
                'END) as the last statement' % (number, _head(statement)))
        if words[:1] == ['SET'] or words[:1] == ['RESET']:
            raise SqlError('statement %d (%r): set Flink options with the config option of the job, not with SET '
                           '(config is part of the job\'s spec and shown in the diff)' % (number, _head(statement)))
        if not words or words[0] not in PREPARE:
            raise SqlError('statement %d (%r) is neither a statement that prepares the session (%s) nor the '
                           'job\'s INSERT' % (number, _head(statement), ', '.join(PREPARE)))
    words = _words(last)
    if not _starts_job(words):
        raise SqlError('the last statement (%r) does not start a job: a SQL job ends with one INSERT or one statement '
                       'set (EXECUTE STATEMENT SET BEGIN ... END); a SELECT is refused, since it would start a job '
                       'that collects its rows to the submitting client' % _head(last))
    return statements


def parse(text):
    """The checked statements of a SQL script (SqlError on a script that is not one SQL job)."""
    return check_statements(split_statements(text))
