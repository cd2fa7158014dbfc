"""The one exception every command raises for a user's mistake.

A leaf module (it imports nothing of the package) so that each area's ``cli``
can raise it without importing the top-level ``cli``, which loads the areas:
the import graph then shows every edge there is.
"""

from __future__ import annotations


class CommandError(Exception):
    """A user-facing failure: printed as one clear line, exit status 2."""
