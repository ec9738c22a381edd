"""The JupyterHub tests' fixture (hubtools.py: accounts, git daemon, hub and proxy, all removed afterwards)."""

from hubtools import hub  # noqa: F401 (the fixture)
