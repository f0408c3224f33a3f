"""Start, watch and stop the local services as detached processes tracked by pid files."""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started or did not become ready."""


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return True


def start_detached(
    name: str,
    argv: Sequence[str],
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` in its own session, output appended to ``log_file``; record its pid."""
    existing = read_pid(pid_file)
    if existing:
        log.info("%s already running (pid %s)", name, existing)
        return existing
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    log.info("started %s (pid %s), log: %s", name, proc.pid, log_file)
    return proc.pid


def stop_pid_file(name: str, pid_file: Path, timeout: float = 30.0) -> bool:
    """Stop the process group recorded in ``pid_file``: SIGTERM, then SIGKILL after ``timeout``."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    log.info("stopping %s (pid %s)", name, pid)
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.3)
    if pid_alive(pid):
        log.warning("%s did not stop within %.0fs; killing it", name, timeout)
        _signal_group(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def wait_until(
    name: str,
    check: Callable[[], bool],
    timeout: float,
    pid_file: Path | None = None,
    log_file: Path | None = None,
    interval: float = 1.0,
) -> None:
    """Poll ``check`` until it is true; fail early, with the log's tail, if the process died."""
    deadline = time.monotonic() + timeout
    last_note = time.monotonic()
    while True:
        try:
            if check():
                return
        except Exception as exc:  # a not-yet-ready service raises all sorts of client errors
            log.debug("%s not ready: %s", name, exc)
        if pid_file is not None and read_pid(pid_file) is None:
            raise ServiceError(f"{name} exited during start-up. Last lines of {log_file}:\n"
                               f"{tail(log_file) if log_file else ''}")
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{name} did not answer within {timeout:.0f}s. Last lines of {log_file}:\n"
                f"{tail(log_file) if log_file else ''}"
            )
        if time.monotonic() - last_note > 15:
            log.info("still waiting for %s ...", name)
            last_note = time.monotonic()
        time.sleep(interval)


def ensure_port_free(name: str, host: str, port: int) -> None:
    if port_open(host, port):
        raise ServiceError(
            f"port {host}:{port}, needed by {name}, is already taken by another process. "
            f"Stop that process or choose another port with the matching PARALLAX_* setting."
        )


class CliProcess:
    """One `parallax ...` subcommand run as a child process in a session of its own (so a
    stop reaches its JVM too), its output appended to ``log_path``."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.name, self.args, self.log_path = name, list(args), log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> CliProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli", *self.args], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)
        log.info("started %s (pid %d), log: %s", self.name, self.proc.pid, self.log_path)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Raise, with the log's tail, if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(f"{self.name} exited ({self.proc.returncode}). Last lines of {self.log_path}:\n"
                               f"{tail(self.log_path)}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int | None:
        """Signal the process; SIGKILL its group if it has not ended after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            # A polite signal goes to the process alone, so that it can stop its JVM child
            # cleanly (PySpark's JVM dies at once on SIGTERM); SIGKILL takes the whole group.
            if sig == signal.SIGKILL:
                _signal_group(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
            log.info("stopped %s", self.name)
        return self.proc.returncode

    def log_tail(self, n: int = 60) -> str:
        return tail(self.log_path, n)
