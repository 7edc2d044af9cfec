"""The one error type a user can act on.

Every problem caused by the user's input (a file, a column, a setting) is raised
as :class:`ScalodiffError`. Its message names the file, column or setting, the bad
value, and what to do. The scripts print it on one line and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable


class ScalodiffError(Exception):
    """A problem with the user's input, with a message that says how to fix it."""


EXIT_USER_ERROR = 2


def run_script(
    body: Callable[[list[str] | None], int], argv: list[str] | None, disk_hint: str
) -> int:
    """Run a script's body; print user errors (ours, or a full disk) as one line and return 2.

    ``disk_hint`` says where the user can put the output instead.
    """
    try:
        return body(argv)
    except ScalodiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"error: out of disk space writing {exc.filename or 'a file'}; {disk_hint}",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
