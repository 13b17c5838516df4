"""A local Milvus standalone server from the PyPI ``milvus`` wheel, reachable on loopback only.

Milvus 2.3's gRPC servers listen on every interface whatever the ``ip``
settings say.  So the server runs in a private network namespace whose only
interface is loopback, and ``127.0.0.1:PORT`` in the caller's namespace is
relayed to it through a Unix socket: nothing outside this machine can reach
it.  Linux only (``unshare``).

    with LocalMilvusServer("/tmp/milvus") as server:
        memory = MilvusMemory(server.uri, "demo", dim=512)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__:  # imported as memory.milvus._server
    from .._errors import MilvusServerError
else:  # run as a script inside the server's network namespace, where only _inner() runs
    MilvusServerError = RuntimeError

__all__ = ["LocalMilvusServer"]

_BUFFER = 1 << 16


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(_BUFFER)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


def _relay(listener: socket.socket, connect: Any, stop: threading.Event) -> None:
    """Accept on ``listener``; join each connection to ``connect()`` in both directions."""
    listener.settimeout(0.5)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: deliver ``sig`` to this process when its parent dies (no orphaned servers)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (SIOCSIFFLAGS)."""
    import fcntl
    import struct

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, ifr))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))
    finally:
        s.close()


def _inner(base_dir: str, sock_path: str, port: int) -> int:
    """Run inside the namespace: loopback up, relay the Unix socket to the proxy port, run Milvus."""
    _loopback_up()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(64)
    stop = threading.Event()
    threading.Thread(target=_relay, daemon=True, args=(
        listener, lambda: socket.create_connection(("127.0.0.1", port)), stop)).start()
    exe = os.path.join(base_dir, "bin", "milvus")
    env = dict(os.environ, DEPLOY_MODE="STANDALONE", METRICS_PORT="9091",
               MILVUS_RUN_DIR=os.path.join(base_dir, "run"),
               LD_LIBRARY_PATH=os.pathsep.join([os.path.dirname(exe), os.environ.get("LD_LIBRARY_PATH", "")]))
    logs = Path(base_dir, "logs")
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "milvus-stdout.log", "w") as out, open(logs / "milvus-stderr.log", "w") as err:
        proc = subprocess.Popen([exe, "run", "standalone"], cwd=base_dir, env=env, stdout=out, stderr=err,
                                preexec_fn=lambda: _die_with_parent(signal.SIGKILL))

        def forward(signum: int, _: Any) -> None:
            proc.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = proc.wait()
    stop.set()
    return code


class LocalMilvusServer:
    """Start and stop a Milvus standalone server on ``127.0.0.1`` only.

    Parameters
    ----------
    data_dir : path, optional
        Where Milvus keeps its binaries, configuration, logs and data; a
        temporary directory (removed on :meth:`stop`) when omitted.
    port : int, optional
        Loopback port of the relay; a free one when omitted.
    timeout : float, default 180
        Seconds to wait for the server to answer.
    """

    def __init__(self, data_dir: Any = None, port: int | None = None, timeout: float = 180.0) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="supersub-milvus-")).resolve()
        self.port = port
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._sock_dir: str | None = None
        self.inner_port: int | None = None  # the proxy's port inside the private namespace

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:PORT``, what a Milvus client connects to."""
        return f"http://127.0.0.1:{self.port}"

    def _configure(self) -> int:
        try:
            from milvus import MilvusServerConfig, _initialize_data_files
        except ImportError as exc:
            raise MilvusServerError(
                "the local Milvus server needs the 'milvus' wheel: pip install 'supersub[milvus]'"
            ) from exc
        config = MilvusServerConfig()
        config.update(data_dir=str(self.data_dir))
        config.resolve()
        _initialize_data_files(config.base_data_dir)
        return int(config.get("proxy_port"))

    def start(self) -> LocalMilvusServer:
        """Start the server and wait until it answers; raises :class:`MilvusServerError`."""
        if sys.platform != "linux" or shutil.which("unshare") is None:
            raise MilvusServerError("the loopback-only Milvus server needs Linux and unshare (util-linux)")
        inner_port = self.inner_port = self._configure()
        self._sock_dir = tempfile.mkdtemp(prefix="ssm-")
        sock_path = os.path.join(self._sock_dir, "proxy.sock")
        flags = ["-n"] if os.geteuid() == 0 else ["-r", "-n"]
        self._proc = subprocess.Popen(
            ["unshare", *flags, sys.executable, str(Path(__file__).resolve()), str(self.data_dir), sock_path,
             str(inner_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", self.port or 0))
        except OSError as exc:
            self.stop()
            raise MilvusServerError(f"cannot listen on 127.0.0.1:{self.port}: {exc}; choose another port") from exc
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]

        def connect() -> socket.socket:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock_path)
            return s

        threading.Thread(target=_relay, args=(self._listener, connect, self._stop), daemon=True).start()
        self._wait()
        return self

    def _wait(self) -> None:
        from ._client import milvus_client

        deadline = time.monotonic() + self.timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise MilvusServerError(
                    f"the Milvus server exited with status {self._proc.returncode}: {err.strip()[-500:]}; "
                    f"logs in {self.data_dir / 'logs'}")
            try:
                client = milvus_client(self.uri, timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(1.0)
        self.stop()
        raise MilvusServerError(f"Milvus did not answer on {self.uri} within {self.timeout:.0f} s ({last}); "
                                f"logs in {self.data_dir / 'logs'}")

    def stop(self) -> None:
        """Stop the server (and remove its directory if it was temporary)."""
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._sock_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalMilvusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # inside the network namespace
    sys.exit(_inner(sys.argv[1], sys.argv[2], int(sys.argv[3])))
