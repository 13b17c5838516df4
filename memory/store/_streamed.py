"""Files written in one pass: hashed and flushed to disk while their bytes arrive.

A save must write each file, flush it to disk and record its sha256 in the
snapshot's manifest.  Done one after the other, a 512 MB index is written,
then read back to be hashed, while the disk sits idle until the final
``fsync``.  :func:`write_streamed` does the three at once: the calling
thread writes each chunk, a second thread hashes it (``hashlib`` releases
the GIL on large buffers) and a third asks the disk to write back every
``sync_every`` bytes, so the closing ``fsync`` has little left to do.

Inside :func:`memory.store.snapshot_writer`, a file written this way is not
synced or hashed again: the writer records its digest with the file's size
and modification time, and the snapshot uses the digest only while both
still match (:func:`streamed_digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["write_streamed"]

CHUNK = 1 << 20  # bytes a producer should hand over at a time
SYNC_EVERY = 64 << 20  # bytes written between write-back requests

# Open snapshots (their temporary directories) -> {file path: (sha256, size, mtime_ns)}.
_tracked: dict[str, dict[str, tuple[str, int, int]]] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def tracking(directory: Path) -> Iterator[None]:
    """Record the digests of files streamed under ``directory`` while the block runs."""
    key = os.path.realpath(directory)
    with _guard:
        _tracked[key] = {}
    try:
        yield
    finally:
        with _guard:
            _tracked.pop(key, None)


def streamed_digest(path: Path) -> str | None:
    """The sha256 recorded when ``path`` was streamed into a tracked directory and synced, if
    the file is unchanged since (same size and modification time); otherwise None."""
    real = os.path.realpath(path)
    with _guard:
        record = next((files.get(real) for d, files in _tracked.items() if real.startswith(d + os.sep)), None)
    if record is None:
        return None
    st = os.stat(real)
    return record[0] if (st.st_size, st.st_mtime_ns) == record[1:] else None


def write_streamed(path: str | os.PathLike[str], produce: Callable[[Callable[[bytes], None]], object], *,
                   sync_every: int = SYNC_EVERY) -> str:
    """Create the file ``path`` from the chunks ``produce`` hands to its sink; return its sha256.

    ``produce(sink)`` calls ``sink(chunk)`` with the file's bytes in order
    (any bytes-like object; a chunk is copied unless it is ``bytes``, so a
    producer may reuse its buffer).  The chunks are hashed on one thread and
    written back to disk on another while the caller writes, and the file is
    ``fsync``-ed before this returns.  An error from the producer, the
    write, the hash or a sync is raised here; the partial file is left for
    the caller to remove.

    Parameters
    ----------
    path : path-like
        A new file (an existing one is truncated).
    produce : callable
        Called once with the sink.
    sync_every : int
        Bytes written between write-back requests (``os.fdatasync``).

    Returns
    -------
    str
        The hex sha256 of the bytes written.
    """
    digest = hashlib.sha256()
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=32)  # at most ~32 MB in flight
    syncs: queue.Queue[bool | None] = queue.Queue()
    errors: list[BaseException] = []

    with open(path, "wb", buffering=0) as fh:
        fd = fh.fileno()

        def hasher() -> None:  # drains the queue to the end, so the writer never waits on it forever
            while (chunk := chunks.get()) is not None:
                if not errors:
                    try:
                        digest.update(chunk)
                    except BaseException as exc:  # noqa: BLE001 - raised by the writing thread
                        errors.append(exc)

        def syncer() -> None:
            while syncs.get() is not None:
                try:
                    os.fdatasync(fd)
                except BaseException as exc:  # noqa: BLE001 - raised by the writing thread
                    errors.append(exc)

        workers = [threading.Thread(target=hasher, daemon=True), threading.Thread(target=syncer, daemon=True)]
        for w in workers:
            w.start()
        written = [0, 0]  # bytes written, and at the last write-back request

        def sink(chunk: bytes) -> None:
            if errors:
                raise errors[0]
            data = chunk if isinstance(chunk, bytes) else bytes(chunk)
            view = memoryview(data)
            while view:  # an unbuffered write may take part of it
                view = view[fh.write(view):]
            chunks.put(data)
            written[0] += len(data)
            if written[0] - written[1] >= sync_every:
                written[1] = written[0]
                syncs.put(True)

        try:
            produce(sink)
        except BaseException:
            if errors:  # the sink raised on a worker's error: raise that, whatever the producer made of it
                raise errors[0]
            raise
        finally:
            chunks.put(None)
            syncs.put(None)
            for w in workers:
                w.join()
        if errors:
            raise errors[0]
        os.fsync(fd)
    hex_digest = digest.hexdigest()
    real = os.path.realpath(path)
    st = os.stat(real)
    with _guard:
        for d, files in _tracked.items():
            if real.startswith(d + os.sep):
                files[real] = (hex_digest, st.st_size, st.st_mtime_ns)
    return hex_digest
