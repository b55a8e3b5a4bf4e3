"""Safe file writes: check every output path before the work, never leave a half-written file,
never replace a user's file without being told to.

* :func:`check_writable` / :func:`check_writable_dir` — before any work, prove (by creating and
  removing a probe) that a file or folder can be written; a path under ``/proc``, a parent that is
  a regular file, a read-only folder each fail as one line (:class:`OutputPathError`).
* :func:`atomic_path` — every writer writes a temporary file beside the target, flushes it to
  disk and renames it onto the target; a failed write (a full disk, say) leaves the previous file
  as it was and says so in one line.
* :func:`move_aside` — keeps an old file under a new, unused name (``--retrain``).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from dni.errors import DniError, OutputPathError


def _first_file_on_the_way(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path``'s parent itself) that is not a directory."""
    for ancestor in reversed([path.parent, *path.parent.parents]):
        if ancestor.exists() and not ancestor.is_dir():
            return ancestor
    return None


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe(folder: Path, what: Path, make_dir: bool = False) -> None:
    """Create and remove a probe file (or folder) in ``folder``, the way the real write will."""
    try:
        if make_dir:
            os.rmdir(tempfile.mkdtemp(prefix=".dni-probe-", dir=folder))
        else:
            fd, probe = tempfile.mkstemp(prefix=".dni-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        reason = {30: "read-only", 1: "no write permission", 13: "no write permission", 2: "files cannot be created there",
                  28: "no space left"}.get(err.errno, err.strerror or type(err).__name__)
        raise OutputPathError(f"cannot write {what}: {folder} is not writable ({reason}); choose another path") from None


def check_writable(path: str | Path) -> Path:
    """Fail early, with :class:`OutputPathError`, if the file ``path`` cannot be created or replaced."""
    path = Path(path).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputPathError(f"output path {path} is a directory; give a file name")
    if (blocker := _first_file_on_the_way(path)) is not None:
        raise OutputPathError(f"cannot write {path}: {blocker} is a file, not a directory")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {path}: directory {parent} does not exist; create it first")
    _probe(parent, path)
    return path


def check_writable_dir(path: str | Path) -> Path:
    """Fail early if the folder ``path`` cannot be created (it is not created) or written into."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"cannot use {path} as a folder: {path} is a file, not a directory")
    if (blocker := _first_file_on_the_way(path)) is not None:
        raise OutputPathError(f"cannot create folder {path}: {blocker} is a file, not a directory")
    if path.is_dir():
        _probe(path, path)
    else:
        _probe(_nearest_existing(path), path, make_dir=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; on success flush it to disk and rename it onto
    ``path``, else delete it. A failed write raises :class:`OutputPathError` (one line) and leaves
    the file that was at ``path`` untouched."""
    path = check_writable(path)
    existed = path.exists()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        _fsync(tmp)  # the data is on disk before the rename makes it the file: a crash leaves old or new, never a stub
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        reason = _write_failure(err, path.parent)
        if reason is not None:
            kept = "the previous file is unchanged" if existed else "nothing was written"
            raise OutputPathError(f"could not write {path} ({reason}); {kept}") from None
        raise


def _fsync(file: str) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_failure(err: BaseException, folder: Path) -> str | None:
    """The reason, in a few words, if ``err`` is a failed write (not a bug, not Ctrl-C); else None.

    Libraries wrap the OS's error in their own words: h5py names the errno in a long message, and
    torch's zip writer raises a RuntimeError ("unexpected pos") on a full disk.
    """
    if isinstance(err, DniError) or not isinstance(err, (OSError, RuntimeError)):
        return None
    if match := re.search(r"errno = (\d+)", str(err)):
        return os.strerror(int(match.group(1)))
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.splitlines()[0]
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < 1 << 20:
            return os.strerror(errno.ENOSPC)
    if isinstance(err, OSError):
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None  # a RuntimeError that is not about the disk: a bug to see whole


def move_aside(path: str | Path) -> Path:
    """Rename ``path`` to an unused ``<name>.bak-<YYYYmmdd-HHMMSS>[-n]`` beside it and return that name."""
    path = Path(path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    os.rename(path, backup)
    return backup
