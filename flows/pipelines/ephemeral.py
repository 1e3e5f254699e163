"""Temporary Prefect servers stop with the command that started them, however it ends.

Without ``PREFECT_API_URL`` Prefect starts a temporary API server (a ``uvicorn`` child process)
and stops it from an ``atexit`` hook. That hook never runs when the command is killed (SIGKILL,
an OOM kill) and, by Python's default, not on SIGTERM either: the server was left running,
holding its port, for every later run to trip over. Two guards:

- each temporary server gets a watchdog: a tiny separate process that polls its parent (the
  command) and stops the server (SIGTERM, then SIGKILL after 5 s) as soon as the parent is
  gone, whatever killed it;
- SIGTERM raises ``SystemExit`` in the command, so the normal shutdown (``atexit``) runs.

Ctrl-C already ends in ``KeyboardInterrupt`` and the ``atexit`` hook.

Two commands started together must both work. Each temporary server picks a free port of its
own, but by default every one of them opens the same SQLite file (``~/.prefect/prefect.db``):
two starting at once both migrate and write it, and a server slowed by the other's lock misses
Prefect's 20 s start-up deadline ("Timed out while attempting to connect to ephemeral Prefect
API server"). So a server this command starts gets a database of its own in a temporary folder
(removed when the command ends, by the watchdog if the command is killed), unless the user
configured one (``PREFECT_SERVER_DATABASE_CONNECTION_URL`` or a profile); and the start-up
deadline is raised to :data:`STARTUP_TIMEOUT_S` (a busy 2-core machine needs more than 20 s).
A new database costs its migrations (5-15 s more on a busy 2-core machine), so the first
server's freshly migrated, empty database is kept in ``~/.cache/aitokens/`` (per Prefect
version) and copied for the next ones, which then start as fast as on the shared file.
Its run history goes with it, as the commands say: point ``PREFECT_API_URL`` at
``prefect server start`` to keep it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

STARTUP_TIMEOUT_S = 120
_DB_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
_private_folders: list[str] = []
_private_urls: list[str] = []  # the private database's URL, handed to the server's settings

WATCHDOG = r"""
import os, shutil, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])
def cleanup():  # the server's private database folder, when it has one
    for folder in sys.argv[3:]:
        shutil.rmtree(folder, ignore_errors=True)
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
while os.getppid() == parent:
    if not alive(server):
        sys.exit(0)  # stopped by its command, which removes the folder itself
    time.sleep(0.2)
try:
    os.kill(server, signal.SIGTERM)
except ProcessLookupError:
    cleanup()
    sys.exit(0)
deadline = time.monotonic() + 5
while time.monotonic() < deadline and alive(server):
    time.sleep(0.1)
if alive(server):
    os.kill(server, signal.SIGKILL)
    time.sleep(0.2)
cleanup()
"""


def start_watchdog(server_pid: int, cleanup: list[str] | None = None) -> subprocess.Popen[bytes]:
    """A process that stops ``server_pid`` once this process is gone (its parent changes),
    then removes the ``cleanup`` folders.

    In its own session (Ctrl-C in the terminal does not reach it) with no inherited output
    (a caller reading this command's output is never held open by it).
    """
    return subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(server_pid), *(cleanup or [])],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _private_database() -> list[str]:
    """Point the next temporary server at a database of its own (see the module docstring);
    return the folder to remove with it, or nothing when the user configured a database."""
    from prefect.settings import get_current_settings

    if _private_urls and _private_folders:
        return list(_private_folders)  # the same server restarted on another port
    configured = "connection_url" in get_current_settings().server.database.model_fields_set
    if (
        configured
        or os.environ.get(_DB_ENV)
        or os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
    ):
        return []
    folder = tempfile.mkdtemp(prefix="aitokens-prefect-")
    _private_folders.append(folder)
    atexit.register(shutil.rmtree, folder, True)  # registered first: runs after the server stops
    database = os.path.join(folder, "prefect.db")
    template = _template_path()
    if template is not None and os.path.isfile(template):
        # A database already migrated by this Prefect version: the server skips the ~5-15 s of
        # migrations a new file costs (measured on a busy 2-core machine).
        with contextlib.suppress(OSError):
            shutil.copyfile(template, database)
    _private_urls.append(f"sqlite+aiosqlite:///{database}")
    return [folder]


def _server_settings() -> contextlib.AbstractContextManager[Any]:
    """Prefect settings for the server process about to start, without writing
    ``os.environ``: Prefect builds the server's environment from the current settings
    (``to_environment_variables``), so a :func:`prefect.settings.temporary_settings` around
    the start hands the private database to that server only."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    if not _private_urls:
        return contextlib.nullcontext()
    return temporary_settings(updates={PREFECT_SERVER_DATABASE_CONNECTION_URL: _private_urls[0]})


def _startup_timeout(timeout: int | None) -> int:
    """The start-up deadline: the caller's, else the user's setting, else ours."""
    from prefect.settings import get_current_settings

    if timeout:
        return timeout
    ephemeral = get_current_settings().server.ephemeral
    if "startup_timeout_seconds" in ephemeral.model_fields_set:
        return int(ephemeral.startup_timeout_seconds)
    return STARTUP_TIMEOUT_S


def _template_path() -> str | None:
    """Where a migrated, empty Prefect database of this Prefect version is kept for reuse."""
    try:
        import prefect

        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        name = f"prefect-{prefect.__version__}-empty.db"
        return os.path.join(base, "aitokens", name)
    except (ImportError, RuntimeError):  # no home folder: no template
        return None


def _keep_template() -> None:
    """Once a private server is up, keep a copy of its freshly migrated database (SQLite's
    online backup: consistent while the server runs) for the next command's server."""
    template = _template_path()
    if template is None or os.path.isfile(template) or not _private_folders:
        return
    import sqlite3

    source_file = os.path.join(_private_folders[0], "prefect.db")
    tmp = f"{template}.tmp-{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(template), exist_ok=True)
        src = sqlite3.connect(f"file:{source_file}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(tmp, template)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            os.remove(tmp)


def guard_temporary_server() -> None:
    """Give every temporary Prefect server this process starts a watchdog and a database of
    its own, allow it :data:`STARTUP_TIMEOUT_S` to start, and make SIGTERM a clean exit.
    Idempotent; call before Prefect is first imported (its settings are read at import)."""
    from prefect.server.api import server as prefect_server

    cls = prefect_server.SubprocessASGIServer
    if not getattr(cls._run_uvicorn_command, "_aitokens_guarded", False):
        original = cls._run_uvicorn_command

        def run_guarded(self: Any) -> subprocess.Popen[Any]:
            folders = _private_database()
            with _server_settings():
                process = original(self)
            start_watchdog(process.pid, folders)
            return process

        run_guarded._aitokens_guarded = True  # type: ignore[attr-defined]
        cls._run_uvicorn_command = run_guarded  # type: ignore[method-assign]
        original_start = cls.start

        def start_and_keep_template(self: Any, timeout: int | None = None) -> None:
            original_start(self, _startup_timeout(timeout))
            _keep_template()

        cls.start = start_and_keep_template  # type: ignore[method-assign]
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
