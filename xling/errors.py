"""The one error type for mistakes a user can fix: what was wrong, where (file:line), and the fix.

``xling.cli.main`` turns it (and the stages' own error types) into one line on stderr with exit
code 2; anything else is a bug and gets one line saying where its traceback was written.
"""

from __future__ import annotations


class XlingError(ValueError):
    """A problem the user can fix. ``str()`` is the whole message: ``where: problem. Fix: fix``."""

    def __init__(self, problem: str, fix: str, where: str | None = None):
        super().__init__(f"{where + ': ' if where else ''}{problem}. Fix: {fix}")
        self.problem, self.fix, self.where = problem, fix, where
