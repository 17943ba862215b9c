"""The one kind of error a user can act on.

Bad input (a missing folder, a corrupt image or checkpoint, a flag that makes no sense) and faults of a run (a NaN
loss, a full disk, an interrupt) raise a subclass of `UserError` whose message is one line saying what is wrong
and what to do. The command line prints that line and exits with code 2; anything else is a bug and a traceback.
A flag absl cannot parse (unknown, or a value of the wrong type) ends the same way.
"""
import sys


def fail(message):
    """One line on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class UserError(Exception):
    """Bad input or a fault the user can act on; the message is one line that says what to do."""


def can_become_folder(path):
    """Whether this process can write into `path` or make it (a folder can be made in its nearest existing ancestor)."""
    import os
    import pathlib
    import tempfile
    existing = pathlib.Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing))   # a real write: root's os.access says yes to /proc too
        return True
    except OSError:
        return False


def writable_folder_flag(name):
    """Refuse `--name` when the flags are parsed, unless it names a folder this process can write into or make: not
    after hours of work."""
    from absl import flags
    flags.register_validator(name, lambda path: path is None or can_become_folder(path),
                             "not a folder this process can write to")


def writable_file_flag(name):
    """Refuse `--name` when the flags are parsed, unless it names a file in a folder this process can write into or
    make."""
    import pathlib
    from absl import flags
    flags.register_validator(name, lambda path: path is None or (not pathlib.Path(path).is_dir()
                                                                 and can_become_folder(pathlib.Path(path).parent)),
                             "not a file this process can write")


def exits_2_on_user_error(main):
    """main(argv) for absl's app.run, with a UserError printed as one line on stderr and exit code 2."""
    def run(argv):
        try:
            return main(argv)
        except UserError as e:
            fail(e)
    return run


def parse_flags(argv):
    """absl's parsing of the command line, a flag it cannot parse one line and exit code 2 (absl's own is two
    lines and exit code 1)."""
    from absl import flags
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        spec = getattr(sys.modules["__main__"], "__spec__", None)   # set for python -m replica....
        fail(f"{e}; python {f'-m {spec.name}' if spec else argv[0]} --helpfull lists the flags")


def run_main(main):
    """absl's app.run of main(argv), a UserError or a flag that cannot be parsed ending it as one line and exit code
    2: every command line's end."""
    from absl import app
    app.run(exits_2_on_user_error(main), flags_parser=parse_flags)
