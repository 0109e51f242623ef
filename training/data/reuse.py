"""Keeping the GPU fed when rendering is slower than training: fetch in the background, reuse on the device.

Rendering a 16-frame clip with its pose maps costs about 100 ms of one CPU core (see
:mod:`training.data.throughput`), so 14 loader workers deliver about 130 clips/s, about what one GPU
trains the teacher on; a slow worker stalls the DataLoader (it returns batches in order). Two pieces
decouple the training loop from that:

* :class:`BackgroundBatches` pulls batches from a DataLoader in a thread, so a batch that is ready is
  taken without waiting and the loop can ask "is there one?" without blocking;
* :class:`ReuseBuffer` keeps the last ``capacity`` clips on the device, already prepared (encoded to
  latents), and draws each step's batch from them at random, so every rendered clip is trained on about
  ``reuse`` times, each time with fresh noise and a fresh time. On an endless synthetic set, a few
  reuses cost almost nothing in quality and remove the loader stalls.

With ``reuse = 1`` the loop trains on each fresh batch exactly once, in loader order (deterministic).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

_END = object()


class BackgroundBatches:
    """Batches of ``loader`` fetched by a daemon thread into a queue of ``depth`` batches.

    Args:
        loader: any iterable of batches (a DataLoader).
        depth: batches held ready.
    """

    def __init__(self, loader: Iterable[Any], depth: int = 4) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(iter(loader),), name="podium-batches", daemon=True)
        self._thread.start()

    def _run(self, batches: Iterator[Any]) -> None:
        try:
            for batch in batches:
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the training thread by get()
            self._error = exc
        while not self._stop.is_set():
            try:
                self._queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self, block: bool = True) -> Any | None:
        """The next batch; None if ``block`` is False and none is ready.

        Raises:
            StopIteration: the loader is exhausted.
            Exception: whatever the loader raised (a worker's error), in the caller's thread.
        """
        try:
            batch = self._queue.get(block=block)
        except queue.Empty:
            return None
        if batch is _END:
            self._queue.put(_END)
            if self._error is not None:
                raise self._error
            raise StopIteration
        return batch

    def close(self, timeout: float = 60.0) -> None:
        """Stop fetching and wait up to ``timeout`` seconds for the thread to end after its current batch.

        Waiting matters: a daemon thread still inside the loader's C++ code when the interpreter exits aborts the
        process ("terminate called without an active exception") after its work was saved.
        """
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)


class ReuseBuffer:
    """The last ``capacity`` prepared clips, kept where they were put (the GPU), sampled for each step.

    Args:
        capacity: clips kept (a ring: the oldest are overwritten).
        reuse: average number of times a clip is trained on (≥ 1); :meth:`needs_fresh` enforces it.
        generator: random draws of the clips of each batch.
    """

    def __init__(self, capacity: int, reuse: float, generator: torch.Generator | None = None) -> None:
        if capacity < 1 or reuse < 1:
            raise ValueError(f"need capacity ≥ 1 and reuse ≥ 1, got {capacity} and {reuse}")
        self.capacity = int(capacity)
        self.reuse = float(reuse)
        self.generator = generator
        self.fresh_clips = 0
        self.trained_clips = 0
        self._store: dict[str, torch.Tensor] = {}
        self._next = 0
        self._filled = 0

    def __len__(self) -> int:
        return self._filled

    def add(self, clips: dict[str, torch.Tensor]) -> None:
        """Add a batch of clips: tensors sharing their first dimension (clips), on any one device."""
        count = len(next(iter(clips.values())))
        if not self._store:
            self._store = {k: v.new_empty((self.capacity, *v.shape[1:])) for k, v in clips.items()}
        rows = (torch.arange(count) + self._next) % self.capacity
        rows = rows.to(next(iter(self._store.values())).device)
        for key, value in clips.items():
            self._store[key][rows] = value
        self._next = (self._next + count) % self.capacity
        self._filled = min(self.capacity, self._filled + count)
        self.fresh_clips += count

    def needs_fresh(self, batch: int) -> bool:
        """Whether training on ``batch`` more clips would reuse clips more than ``reuse`` times on average."""
        return self.trained_clips + batch > self.reuse * self.fresh_clips or self._filled < batch

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        """``batch`` distinct clips drawn at random from those kept."""
        if self._filled < batch:
            raise ValueError(f"the buffer holds {self._filled} clips, fewer than a batch of {batch}")
        rows = torch.randperm(self._filled, generator=self.generator)[:batch]
        rows = rows.to(next(iter(self._store.values())).device)
        self.trained_clips += batch
        return {k: v[rows] for k, v in self._store.items()}
