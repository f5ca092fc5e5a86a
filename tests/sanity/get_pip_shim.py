"""Stand-in for pypa's get-pip.py, which ansible-test downloads from a host this machine cannot reach.

ansible-test creates each sanity venv without pip and runs ``python get_pip.py <pip install options>``
to bootstrap it (ansible_test/_util/target/setup/requirements.py: ``bootstrap``). We do the same with
the interpreter's own ``ensurepip`` and then ``pip install`` what was asked for, from PyPI.
"""

from __future__ import annotations

import subprocess
import sys

# Options only get-pip.py understands; pip would reject them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *pip_args]))
