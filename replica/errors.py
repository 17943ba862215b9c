"""The one kind of error a user can act on.

Bad input (a missing folder, a corrupt image or checkpoint, a flag that makes no sense) and faults of a run (a NaN
loss, a full disk, an interrupt) raise a subclass of `UserError` whose message is one line saying what is wrong
and what to do. The command line prints that line and exits with code 2; anything else is a bug and a traceback.
"""
import sys


class UserError(Exception):
    """Bad input or a fault the user can act on; the message is one line that says what to do."""


def exits_2_on_user_error(main):
    """main(argv) for absl's app.run, with a UserError printed as one line on stderr and exit code 2."""
    def run(argv):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run


def run_main(main):
    """absl's app.run of main(argv), a UserError ending it as one line and exit code 2: every command line's end."""
    from absl import app
    app.run(exits_2_on_user_error(main))
