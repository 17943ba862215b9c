"""The one kind of error a user can act on.

Bad input (a missing folder, a corrupt image or checkpoint, a flag that makes no sense) and faults of a run (a NaN
loss, a full disk, an interrupt) raise a subclass of `UserError` whose message is one line saying what is wrong
and what to do. The command line prints that line and exits with code 2; anything else is a bug and a traceback.
"""


class UserError(Exception):
    """Bad input or a fault the user can act on; the message is one line that says what to do."""
