from __future__ import absolute_import, division, print_function

__metaclass__ = type

import zipfile

import pytest


@pytest.fixture
def jar(tmp_path):
    """A minimal jar file (a zip with a manifest)."""
    p = tmp_path / 'job.jar'
    with zipfile.ZipFile(str(p), 'w') as z:
        z.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\nMain-Class: org.example.Job\n')
    return str(p)
