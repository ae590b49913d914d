"""The one error type for a user's mistake.

A bad choice, a malformed file or an out-of-range number raises
:class:`TsizeError`, whose message is one line naming the bad value and the
valid choices. The command line prints exactly these as ``tsize: error: ...``
and exits with status 2; any other exception is a bug and keeps its traceback.
"""


class TsizeError(ValueError):
    """A user's mistake: bad input, a malformed file, an unknown name."""
