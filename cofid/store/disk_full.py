"""A full disk under the database, told apart from a wrong statement.

A write refused for lack of space is retryable: nothing of its transaction was committed
(SQLite rolls it back, MySQL/MariaDB refuse the statement), and space comes back when an
operator frees some. So :meth:`cofid.store.db.Database.run` waits for space instead of
failing the write — which would fail files for a reason that is not theirs, or make the
daemon exit and systemd restart it into the same full disk.

What counts as "full":
- SQLite: SQLITE_FULL ("database or disk is full"), and an I/O error whose cause was
  ENOSPC or EDQUOT;
- MySQL/MariaDB: ER_DISK_FULL (1021), ER_RECORD_FILE_FULL (1114, "The table is full"),
  ER_ERROR_ON_WRITE (3) and ER_GET_ERRNO (1030) when the
  errno they carry is 28 (ENOSPC) or 122 (EDQUOT);
- an OSError with errno ENOSPC or EDQUOT (a temporary file, the WAL).
"""

from __future__ import annotations

import errno
import re
import sqlite3

_MYSQL_FULL = {1021, 1114}
_MYSQL_WITH_ERRNO = {3, 1030}
_ERRNO_IN_TEXT = re.compile(r"errno:? (28|122)\b|Errcode: (28|122)\b", re.IGNORECASE)
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc` (an SQLAlchemy error, its DB-API cause, or an OSError) says the
    database's storage has no room left."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, OSError):
        return orig.errno in _NO_SPACE
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        return "disk is full" in str(orig) or "No space left" in str(orig)
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in _MYSQL_FULL:
        return True
    if code in _MYSQL_WITH_ERRNO:
        return bool(_ERRNO_IN_TEXT.search(" ".join(str(a) for a in args[1:])))
    return False


def reason(exc: BaseException) -> str:
    """The database's own words for it, one line."""
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split())[:300]
