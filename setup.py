"""Package list only (everything else is in pyproject.toml).

``plugins/`` and ``tasks/`` are mapped to importable packages by ``package-dir``; ``find_packages`` cannot
discover renamed directories, so they are added here next to the automatically found core packages.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["mmbench", "mmbench.*"]) + ["mmbench_plugins", "mmbench_tasks"])
