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
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

WATCHDOG = r"""
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])
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
        sys.exit(0)
    time.sleep(0.2)
try:
    os.kill(server, signal.SIGTERM)
except ProcessLookupError:
    sys.exit(0)
deadline = time.monotonic() + 5
while time.monotonic() < deadline and alive(server):
    time.sleep(0.1)
if alive(server):
    os.kill(server, signal.SIGKILL)
"""


def start_watchdog(server_pid: int) -> subprocess.Popen[bytes]:
    """A process that stops ``server_pid`` once this process is gone (its parent changes).

    In its own session (Ctrl-C in the terminal does not reach it) with no inherited output
    (a caller reading this command's output is never held open by it).
    """
    return subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(server_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def guard_temporary_server() -> None:
    """Give every temporary Prefect server this process starts a watchdog, and make SIGTERM
    a clean exit. Idempotent; call before the first flow runs."""
    from prefect.server.api import server as prefect_server

    cls = prefect_server.SubprocessASGIServer
    if not getattr(cls._run_uvicorn_command, "_aitokens_guarded", False):
        original = cls._run_uvicorn_command

        def run_guarded(self: Any) -> subprocess.Popen[Any]:
            process = original(self)
            start_watchdog(process.pid)
            return process

        run_guarded._aitokens_guarded = True  # type: ignore[attr-defined]
        cls._run_uvicorn_command = run_guarded  # type: ignore[method-assign]
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
