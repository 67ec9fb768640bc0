"""The question bank travels inside the package: prompts/ (kept at the top of the repository, where
contributors edit it) is copied to xling/_bank in every built wheel. Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithBank(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads prompts/ in place
        bank = Path(__file__).resolve().parent / "prompts"
        target = Path(self.build_lib) / "xling" / "_bank"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(bank, target, ignore=shutil.ignore_patterns("*~", ".*"))


setup(cmdclass={"build_py": BuildPyWithBank})
