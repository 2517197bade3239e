"""Stand-in for the get-pip.py that ansible-test downloads from a host this machine cannot reach.

ansible-test runs it inside each fresh virtual environment it creates, with pip's
options and the packages to install as arguments. ensurepip runs in a child
process: in-process it sets PIP_CONFIG_FILE=/dev/null, which would hide the
machine's pip configuration (its CA bundle and index settings) from every later
install.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
