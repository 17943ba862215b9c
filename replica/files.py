"""Files written whole or not at all: the content goes to a temporary file beside its path, which a rename then puts
in place, so a kill or a full disk never leaves half a file under the path (run files, caches, manifests, records);
and the one way to read back a JSON file that a fault outside the replica may have damaged.
"""
import json
import os
import pathlib


def write_whole(path, save):
    """`save(temporary path)`, then the rename to `path`. The temporary file is named for this process (processes
    sharing a folder never share one) and removed when the write fails; the error goes on to the caller."""
    path = pathlib.Path(path)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_whole(path, text):
    write_whole(path, lambda tmp: tmp.write_text(text))


def write_whole_or_raise(error, path, save, remedy):
    """`write_whole`; a write that fails (a full disk) leaves the old file and raises `error`, one line naming the
    file, what went wrong and `remedy`, what to do."""
    try:
        write_whole(path, save)
    except OSError as e:
        raise error(f"could not write {path} ({failure_reason(e)}); {remedy}") from None


def read_json(path, error, remedy):
    """The JSON in `path`; a file that cannot be read or parsed (damaged outside the replica: every writer here
    replaces its file whole) raises `error` naming it, with `remedy`, what to do: one line, the files beside it kept."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
        raise error(f"{path} is not readable ({getattr(e, 'strerror', None) or e}); {remedy}") from None


def failure_reason(error):
    """What an OSError or a TensorFlow write error says went wrong ("No space left on device"), without its path."""
    return getattr(error, "strerror", None) or str(error).splitlines()[0].rsplit("; ", 1)[-1]


def remove_leftovers(folder):
    """Delete the temporary files that killed writes left in `folder` (one writer at a time: a run folder under its
    lock, prepare's output); return their names."""
    folder = pathlib.Path(folder)
    stale = sorted({*folder.glob("*.tmp"), *folder.glob("*.tmp.*")}) if folder.is_dir() else []
    for path in stale:
        path.unlink()
    return [path.name for path in stale]
