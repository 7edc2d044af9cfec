"""The one error type a user can act on.

Every problem caused by the user's input (a file, a column, a setting) is raised
as :class:`ScalodiffError`. Its message names the file, column or setting, the bad
value, and what to do. The scripts print it on one line and exit with status 2,
without a traceback.
"""

from __future__ import annotations


class ScalodiffError(Exception):
    """A problem with the user's input, with a message that says how to fix it."""


EXIT_USER_ERROR = 2
