"""What may enter cofi from the file system: names, symlinks and secret files.

One rule set for every entry point — the watcher and its start-up scan, StartBatch,
`cofid run-batch`, and the audio and CSV files inside a batch:

1. Names. A name that is not valid UTF-8 (Python holds such bytes as surrogate escapes)
   or that holds a control character (C0, DEL, C1, the Unicode line and paragraph
   separators, bidirectional and other format controls) is refused: it could never be
   named again (a reaudit, a query, the database's utf8mb4 column) and could forge lines
   or reorder text wherever it is shown. Messages show names through :func:`shown`
   (backslash escapes), never raw.
2. Symlinks. A symlink is followed only when its resolved target stays inside its
   container: the batch directory for a file of a batch, the watched root for a batch
   directory in it. "Inside" compares resolved paths (Path.resolve, is_relative_to),
   never string prefixes. Anything else is refused with a message naming the entry (not
   its target, which may name something private).
3. Secrets. A file that is the daemon's own configuration, a token file, the TLS key or
   the SQLite database — the same device and inode, so a hard link or a bind mount counts
   too — is never read as batch input.
4. Kinds. Only regular files are files of a batch: a directory or FIFO named like an
   input (``callMetadata.csv/``) is refused, not read or skipped.
5. Roots. A batch directory is strictly inside a root; the root itself is not a batch.

Messages name the entry and the problem; they never quote the content of a file.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from cofid.config import Config
from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType, Stage

# Unicode categories refused in names: controls, format characters (bidi overrides,
# zero-width joiners), line/paragraph separators, and lone surrogates (undecodable bytes).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
SHOWN_LIMIT = 160  # characters of a name in a message


def shown(name: str, limit: int = SHOWN_LIMIT) -> str:
    """`name` safe for a message, a log line or an event: undecodable bytes as \\xNN,
    control and format characters as \\xNN / \\uNNNN, backslashes doubled; cut at
    `limit` characters."""
    out: list[str] = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in _REFUSED_CATEGORIES:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "…"


def name_problem(name: str) -> str | None:
    """Rule 1: why `name` cannot enter cofi, or None."""
    if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in name):
        return f"name '{shown(name)}' is not valid UTF-8"
    bad = next((ch for ch in name if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        return f"name '{shown(name)}' contains the control character '{shown(bad)}'"
    return None


def resolved(path: Path) -> Path | None:
    """`path` with every symlink resolved, or None for a symlink loop (Python 3.11
    raises RuntimeError for one, later ones OSError)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError, ValueError):  # ValueError: an embedded NUL
        return None


def is_inside(path: Path, container: Path) -> bool:
    """Rule 2: `path`, resolved, is `container` (resolved) or below it."""
    target, home = resolved(path), resolved(container)
    return target is not None and home is not None and target.is_relative_to(home)


# ---- secret files (rule 3) -----------------------------------------------------------------

Identity = tuple[int, int]  # (st_dev, st_ino)


def secret_paths(cfg: Config) -> list[str]:
    """The files of this daemon that must never be read as input."""
    paths = [t.token_file for t in cfg.grpc.tokens if t.token_file]
    paths += [p for p in (cfg.grpc.tls.key_file, cfg.grpc.tls.cert_file) if p]
    if not cfg.source.startswith("<"):
        paths.append(cfg.source)
    url = cfg.database_url
    if url.startswith("sqlite:///"):
        db = url.removeprefix("sqlite:///")
        paths += [db, db + "-wal", db + "-shm"]
    return paths


def identities(paths: Iterable[str]) -> frozenset[Identity]:
    """(device, inode) of each path that exists."""
    out = set()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return frozenset(out)


# ---- files of a batch (rules 1-4) ---------------------------------------------------------


def file_problem(directory: Path, path: Path) -> str | None:
    """Why `path` (an entry of batch `directory`) is not a file of the batch, or None.
    The secret check needs the opened file: see :func:`read_input`."""
    problem = name_problem(path.name)
    if problem is not None:
        return problem
    try:
        st = path.lstat()
    except OSError as e:
        return f"{shown(path.name)} cannot be read ({e.strerror or e})"
    if stat.S_ISLNK(st.st_mode):
        if resolved(path) is None:
            return f"{shown(path.name)} is a symlink loop"
        if not is_inside(path, directory):
            return (
                f"{shown(path.name)} is a symlink that leads outside the batch "
                f"directory (only links to files inside it are followed)"
            )
        try:
            st = path.stat()
        except OSError:
            return f"{shown(path.name)} is a symlink to nothing"
    if stat.S_ISDIR(st.st_mode):
        return f"{shown(path.name)} is a directory, not a file"
    if not stat.S_ISREG(st.st_mode):
        return f"{shown(path.name)} is not a regular file"
    return None


def read_input(directory: Path, path: Path, secrets: frozenset[Identity]) -> bytes:
    """The bytes of a checked input file (a CSV, batch.toml): opened without following
    a last symlink of its resolved path and without blocking (a FIFO swapped in after
    the check), checked again as opened. OSError says why it cannot be read; an
    :class:`InputRefused` says why it must not be."""
    problem = file_problem(directory, path)
    if problem is not None:
        raise InputRefused(problem)
    fd = os.open(path.resolve(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputRefused(f"{shown(path.name)} is not a regular file")
        if (st.st_dev, st.st_ino) in secrets:
            raise InputRefused(_SECRET.format(shown(path.name)))
        return f.read()


def is_secret(path: Path, secrets: frozenset[Identity]) -> bool:
    """Rule 3 for a file that is not read here (audio: the stages open it later)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in secrets


_SECRET = "{} is one of the daemon's own secret files (configuration, token, key, database)"


def secret_message(name: str) -> str:
    return _SECRET.format(shown(name))


class InputRefused(ValueError):
    """An entry of a batch that rules 1-4 refuse; the message names it and why."""


def refused_event(batch_id: int, name: str, reason: str) -> Event:
    """An entry of a batch directory refused at intake (the rest of the batch goes on)."""
    return Event(
        batch_id=batch_id,
        stage=Stage.FILE_DISTRIBUTION,
        event_type=EventType.ERROR,
        status=EventStatus.FAILED,
        file_name=shown(name, 120),
        error_message=f"{reason}; the file is not part of the batch",
    )


# ---- batch directories in roots (rules 1, 2, 5) ------------------------------------------


def root_entry_problem(root: Path, name: str) -> str | None:
    """Why the entry `name` of watched `root` cannot be a batch directory, or None."""
    problem = name_problem(name)
    if problem is not None:
        return problem
    entry = root / name
    if entry.is_symlink():
        target, home = resolved(entry), resolved(root)
        if target is None or home is None or not target.is_relative_to(home) or target == home:
            return (
                f"{shown(name)} is a symlink that leads outside the batch root "
                f"(only links to directories inside it are followed)"
            )
    return None


def directory_problem(directory: str, roots: Iterable[str]) -> str | None:
    """StartBatch's directory (absolute, normalised) against the roots, by resolved
    paths; None when it may be a batch. With no roots configured any directory may."""
    problem = name_problem(directory)
    if problem is not None:
        return f"directory {problem.removeprefix('name ')}"
    resolved_roots = [Path(r).resolve() for r in roots]
    if not resolved_roots:
        return None
    target = resolved(Path(directory))
    if target is None:
        return f"directory '{shown(directory)}' is a symlink loop"
    if target in resolved_roots:
        return (
            f"directory '{shown(directory)}' is a batch root itself; name a batch "
            f"directory inside it"
        )
    if not any(target.is_relative_to(r) for r in resolved_roots):
        shown_roots = ", ".join(shown(str(r)) for r in roots)
        return f"directory '{shown(directory)}' is outside the batch roots ({shown_roots})" + (
            " once its symlinks are resolved" if str(target) != directory else ""
        )
    return None


def refused_directory_event(directory: Path, message: str) -> Event:
    """A directory of a watched root that the watcher refused (batch 0: it is none)."""
    return Event(
        batch_id=0,
        stage="watcher",
        event_type=EventType.ERROR,
        status=EventStatus.FAILED,
        file_name=shown(directory.name, 120),
        error_message=message,
    )
