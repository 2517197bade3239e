"""The comparison tables of the last ``bench.compare`` run, as markdown; optionally into the README.

    .venv/bin/python -m bench.report                      # print build/bench/last.md's text again
    .venv/bin/python -m bench.report --readme README.md   # replace the block between the bench markers

The README block lies between ``<!-- bench:start -->`` and ``<!-- bench:end -->``; nothing outside the markers
is touched, and a README without them is an error (the markers are placed by hand, once).
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = '<!-- bench:start -->'
END = '<!-- bench:end -->'
ORDER = ('noop', 'first', 'upgrade', 'fleet', 'set', 'upload')


def _t(st, p90=True, unit='s'):
    """'2.91 s (p90 3.10)' from a stats dict."""
    if not st or not st.get('n'):
        return '-'
    fmt = '%.2f' if unit == 's' else '%.1f'
    text = (fmt + ' %s') % (st['median'], unit)
    if p90 and st['n'] >= 5:
        text += (' (p90 ' + fmt + ')') % st['p90']
    return text


def _ratio(r):
    return '-' if r is None else '%.2fx' % r


def main_rows(items):
    rows = []
    for key in ORDER:
        if key in items and items[key].get('error'):
            rows.append((key, 'failed: %s' % items[key]['error'].splitlines()[0][:300].replace('|', '/'),
                         '-', '-', '-', '-', 'ERROR'))
    items = dict((k, v) for k, v in items.items() if not v.get('error'))
    it = items.get('noop')
    if it:
        rows.append(('1', 'no-op `flink_job` play (job running) vs a play with one `uri` GET `/jobs/overview`',
                     _t(it['variants'][it['ours']]), _t(it['variants'][it['theirs']]), _ratio(it['ratio']),
                     '<= %.1fx' % it['target'], it['verdict']))
    it = items.get('first')
    if it:
        rows.append(('2', 'first submission: `flink_job` (`wait`, `healthy_for: 0`, jar not yet on the cluster) vs '
                          'a play running `flink run -d`',
                     _t(it['variants'][it['ours']]), _t(it['variants'][it['theirs']]), _ratio(it['ratio']), '-', '-'))
    it = items.get('upgrade')
    if it:
        rows.append(('3', 'upgrade: `flink_job state: upgraded` (`healthy_for: 0`) minus the floor (uri play, same '
                          'round) vs stop-with-savepoint + run + RUNNING by hand over REST',
                     _t(it['variants'][it['ours']]), _t(it['variants'][it['theirs']]), _ratio(it['ratio']), '-', '-'))
    it = items.get('fleet')
    if it:
        n = it['jobs']
        rows.append(('4', '%d running jobs: `flinkops.flink.flink_jobs` role, %d items, vs a play with one `uri` task'
                     % (n, n), _t(it['variants'][it['ours']]), _t(it['variants'][it['theirs']]),
                     _ratio(it['ratio']), '<= %.1fx' % it['target'], it['verdict']))
        rows.append(('4b', 'the same role play vs a play with a `uri` loop of %d (`GET /jobs/<id>`)' % n,
                     _t(it['variants'][it['ours']]), _t(it['variants'][it['also']['theirs']]),
                     _ratio(it['also']['ratio']), '-', '-'))
    it = items.get('set')
    if it:
        m = it['jobs']
        rows.append(('5', '%d upgrades: one `flink_job_set` run (`max_parallel: %d`, `healthy_for: 0`) vs %d '
                          '`flink_job` tasks in one play' % (m, it['max_parallel'], m),
                     _t(it['variants'][it['ours']]), _t(it['variants'][it['theirs']]), _ratio(it['ratio']),
                     '<= %.1fx' % it['target'], it['verdict']))
    it = items.get('upload')
    if it:
        mib = it['jar_bytes'] / 1048576.0
        ours = it['variants'][it['ours']]
        theirs = it['variants'][it['theirs']]
        rows.append(('6', 'peak memory (process VmHWM) uploading a %.0f MiB jar: streamed as `flink_job` does vs '
                          'requests `files=`; worst of %d' % (mib, ours['n']),
                     '%.1f MiB' % ours['max'], '%.1f MiB' % theirs['max'], _ratio(it['ratio']),
                     '< %d MiB' % it['target_mib'], it['verdict']))
    return rows


def detail_rows(items):
    rows = []
    for key in ORDER:
        it = items.get(key)
        if not it or it.get('error'):
            continue
        unit = it.get('unit', 's')
        for name, st in it['variants'].items():
            sp = (it.get('splits') or {}).get(name) or {}
            u = 'MiB' if 'MiB' in name else unit if unit != 'MiB' else 's'
            split = '-'
            if sp.get('startup_s') is not None:
                split = '%.2f / %.2f / %.2f' % (sp['startup_s'], sp['tasks_s'], sp['tail_s'] or 0)
            rows.append((key, name, str(st.get('n', 0)), _t(st, p90=False, unit=u),
                         ('%.2f' if u == 's' else '%.1f') % st['p90'] if st.get('n') else '-',
                         ('%.2f-%.2f' if u == 's' else '%.1f-%.1f') % (st['min'], st['max']) if st.get('n') else '-',
                         split))
    return rows


def table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(' --- ' for _h in header) + '|']
    out.extend('| ' + ' | '.join(r) + ' |' for r in rows)
    return '\n'.join(out)


def profile_lines(items):
    lines = []
    items = dict((k, v) for k, v in items.items() if not v.get('error'))
    it = items.get('noop')
    if it and it.get('profile'):
        p = it['profile']
        sp = it['splits']
        fj = sp.get(it['ours']) or {}
        fl = sp.get(it['theirs']) or {}
        empty = it['variants'].get('play with no task (ansible-playbook start-up)') or {}
        text = ('* No-op: a play with no task takes %.2f s (`ansible-playbook` itself). In the measured runs the '
                '`flink_job` task took %.2f s and the `uri` task %.2f s (medians, from the callback).'
                % (empty.get('median') or 0, (fj.get('task_s') or [0])[0], (fl.get('task_s') or [0])[0]))
        tf, tu = p.get('trace_flink_job'), p.get('trace_uri')
        if tf and tu and tf['tasks'] and tu['tasks']:
            text += (' Traced with ANSIBLE_DEBUG=1 (%d runs each, medians): %s; %s.'
                     % (tf['reps'], _phases('flink_job', tf['tasks'][0]), _phases('uri', tu['tasks'][0])))
        if p.get('flink_job_process_s'):
            text += (' Run as a plain process without Ansible (`python -m <module> args.json`): `flink_job` '
                     '%.2f s, `uri` %.2f s.' % (p['flink_job_process_s']['median'], p['uri_process_s']['median']))
        text += (' Importing flink_job takes %.0f ms%s; its reconciler in-process %.1f ms with %d requests (%s).'
                 % (p['import_flink_job_s']['median'] * 1000,
                    ' (of which `ansible.module_utils.basic`, which every module imports, %.0f ms)'
                    % (p['import_basic_s']['median'] * 1000) if p.get('import_basic_s') else '',
                    p['reconciler_s']['median'] * 1000, len(p['requests']), ', '.join(p['requests'])))
        sizes = p.get('ansiballz_bytes') or {}
        if sizes:
            text += (' AnsiballZ payloads: %s.'
                     % ', '.join('%s %.0f KiB' % (k, v / 1024.0) for k, v in sorted(sizes.items())))
        lines.append(text)
    it = items.get('first')
    if it and it.get('notes'):
        lines.append('* First submission: `flink run -d` returns once Flink accepted the job; the job then needed '
                     'another %.2f s (median, polled every 0.2 s) until every task was RUNNING, which `flink_job` '
                     'waits for before it returns. The CLI\'s time is mostly its JVMs: the launcher script runs '
                     'Java to read the configuration, then the client compiles the job graph and submits it.'
                     % it['notes']['cli_until_running_after_play_s']['median'])
    it = items.get('fleet')
    if it:
        sp = (it.get('splits') or {}).get(it['ours']) or {}
        tasks = sp.get('task_s') or []
        p = it.get('profile') or {}
        names = [(n or '').split(' : ', 1)[-1] for n in (sp.get('task_names') or [''] * len(tasks))]
        names = ['argument spec validation' if n.startswith('Validating arguments') else n[:40] for n in names]
        text = '* %d running jobs: the role play takes %.2f s to its first task; its tasks took %s (median)' % (
            it['jobs'], sp.get('startup_s') or 0,
            ', '.join('%s %.2f s' % (n, t) for n, t in zip(names, tasks)) or '-')
        if p:
            text += ('; `flink_job_set` run as a plain process on the same %d jobs: %.2f s; its reconciler '
                     'in-process: %.0f ms and %s requests (max_parallel %d)'
                     % (it['jobs'], (p.get('flink_job_set_process_s') or {}).get('median') or 0,
                        p['flink_job_set_reconciler_s']['median'] * 1000,
                        '/'.join(str(c) for c in p['requests']), p['max_parallel']))
        tr = p.get('trace_role')
        if tr and tr['tasks']:
            text += '; traced: %s' % '; '.join(_phases(t['action'].rsplit('.', 1)[-1], t) for t in tr['tasks'])
        lines.append(text + '; the first role run, which deployed them (`healthy_for: 0`), took %.1f s.'
                     % it['deploy']['seconds'])
    it = items.get('set')
    if it and it.get('profile'):
        ts, tt = it['profile']['trace_set']['tasks'], it['profile']['trace_tasks']['tasks']
        total = dict((k, sum(t[k] for t in tt)) for k in ('build_s', 'exec_s', 'other_s'))
        lines.append('* %d upgrades (one traced run each): %s; the %d `flink_job` tasks together: %s (module processes '
                     '%s s).' % (it['jobs'], _phases('flink_job_set', ts[0]) if ts else '-', len(tt),
                                 _phases('flink_job', total), ', '.join('%.2f' % t['exec_s'] for t in tt)))
    return lines


def _phases(name, t):
    return ('%s task %.2f s = module process %.2f s + AnsiballZ build %.2f s + other controller work %.2f s'
            % (name, t['build_s'] + t['exec_s'] + t['other_s'], t['exec_s'], t['build_s'], t['other_s']))


def markdown(data):
    m = data['machine']
    items = data['items']
    s = data['settings']
    head = ('Measured %s on %s, %d cores, %s GiB RAM; Flink %s, ansible-core %s, Python %s. One cluster on '
            'loopback (%d slots), %d rounds (no-op comparisons: %d, after one warm-up round), the variants '
            'alternating round by round; load average %s before, %s after; `make bench` comparison run: %.0f min.'
            % (data['measured_at'], m['cpu'], m['cores'], m['ram_gib'], m['flink'], m['ansible_core'], m['python'],
               s['slots'], s['reps'], s['reps_fast'], '/'.join('%.1f' % x for x in data['loadavg_before']),
               '/'.join('%.1f' % x for x in data['loadavg_after']), data['seconds'] / 60.0))
    if s.get('smoke'):
        head = '**Smoke run (tiny sizes), not a measurement.** ' + head
    intro = ('**flinkops.flink against what users do today** (`make bench`, `bench/compare.py`; this block is written '
             'by `python -m bench.report --readme README.md` from the last run\'s `build/bench/last.json`).')
    parts = [intro, '', head, '',
             table(('#', 'comparison', 'flinkops.flink', 'what users do today', 'ratio', 'target', 'result'),
                   main_rows(items)), '',
             'Every variant (times are whole `ansible-playbook` runs unless named otherwise; split = start-up until '
             'the first task / the tasks / exit, medians):', '',
             table(('item', 'variant', 'n', 'median', 'p90', 'min-max', 'split s'), detail_rows(items))]
    prof = profile_lines(items)
    if prof:
        parts += ['', 'Where the time goes:', ''] + prof
    return '\n'.join(parts) + '\n'


def update_readme(path, text):
    with open(path) as f:
        readme = f.read()
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise SystemExit('%s: needs exactly one %s ... %s block' % (path, START, END))
    before, rest = readme.split(START, 1)
    unused, after = rest.split(END, 1)
    new = before + START + '\n' + text.rstrip('\n') + '\n' + END + after
    if new != readme:
        with open(path, 'w') as f:
            f.write(new)
    return new != readme


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--json', default=os.path.join(ROOT, 'build', 'bench', 'last.json'))
    parser.add_argument('--readme', help='README to update between the bench markers')
    args = parser.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    text = markdown(data)
    if args.readme:
        changed = update_readme(args.readme, text)
        print('%s: bench block %s' % (args.readme, 'updated' if changed else 'unchanged'), file=sys.stderr)
    else:
        print(text)


if __name__ == '__main__':
    main()
