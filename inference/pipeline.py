"""The runner: wires source → motion → renderer → sinks on worker threads.

Threads and queues (names as they appear in thread dumps and logs)::

    podium-source ──AudioBlock──▶ [audio_q] ──▶ podium-motion ──KeypointFrame──▶ [pose_q]
         │                                                                        │
         └──AudioBlock──────────────────────────────┐                   podium-render
                                                    ▼                             │
                              [sink queue] ◀──VideoFrame───────────────────────────┘
                                    │
                              podium-sink-<name>   (one thread and one queue per sink)

Every queue is bounded. In ``offline`` mode producers block when a queue is
full, so nothing is lost and the run goes as fast as the slowest stage. In
``live`` mode a full sink queue drops its oldest *video* frame (counted in
:class:`PipelineStats`), never audio, so a slow sink cannot stall the renderer
or the microphone.

An exception in any stage stops the whole pipeline; :meth:`Pipeline.wait`
re-raises it in the caller's thread. :meth:`Pipeline.stop` cancels: offline sinks
are aborted (no half-written output), live sinks are closed normally.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from inference.clock import FrameClock
from inference.errors import PipelineCancelled, PodiumError
from inference.stages import AudioSource, MotionStream, Renderer, Sink
from inference.types import AudioBlock, KeypointFrame, VideoFrame

log = logging.getLogger(__name__)

Mode = Literal["offline", "live"]
_END = object()


class BoundedQueue:
    """A FIFO bounded in *frames*, whose ``put`` either blocks or drops the oldest frame.

    ``put`` adds a bounded item (a video frame, or any item of a blocking queue).
    ``put_unbounded`` adds an item that never counts against the bound and is
    never dropped (audio for sinks, end markers): audio must never be lost, and
    it stays bounded indirectly because the source is throttled by the motion
    queue.
    """

    def __init__(self, maxsize: int, *, drop_when_full: bool) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.drop_when_full = drop_when_full
        self._items: collections.deque[tuple[object, bool]] = collections.deque()
        self._bounded = 0
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: object, stop: threading.Event | None = None) -> bool:
        """Add a bounded item. Returns False if ``stop`` was set while waiting (item not added)."""
        with self._cond:
            while self._bounded >= self.maxsize:
                if self.drop_when_full:
                    self._drop_oldest()
                    break
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(0.05)
            self._items.append((item, True))
            self._bounded += 1
            self._cond.notify_all()
            return True

    def put_unbounded(self, item: object) -> None:
        """Add an item that is never dropped and never blocks."""
        with self._cond:
            self._items.append((item, False))
            self._cond.notify_all()

    def _drop_oldest(self) -> None:
        for i, (_, bounded) in enumerate(self._items):
            if bounded:
                del self._items[i]
                self._bounded -= 1
                self.dropped += 1
                return

    def get(self, stop: threading.Event | None = None, timeout: float = 0.05) -> object | None:
        """Next item, or None if ``stop`` is set while the queue is empty."""
        with self._cond:
            while not self._items:
                if stop is not None and stop.is_set():
                    return None
                self._cond.wait(timeout)
            item, bounded = self._items.popleft()
            if bounded:
                self._bounded -= 1
            self._cond.notify_all()
            return item

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


@dataclass
class PipelineStats:
    """Counters the pipeline keeps while it runs (read them from any thread)."""

    audio_samples: int = 0
    keypoint_frames: int = 0
    rendered_frames: int = 0
    dropped_frames: dict[str, int] = field(default_factory=dict)
    render_seconds: float = 0.0
    #: seconds from the newest audio a frame depends on being captured to the frame leaving the renderer
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=2000))

    @property
    def render_fps(self) -> float:
        return self.rendered_frames / self.render_seconds if self.render_seconds > 0 else 0.0


@dataclass(frozen=True)
class PipelineResult:
    """What a finished run produced."""

    frames: int
    audio_seconds: float
    wall_seconds: float
    dropped_frames: dict[str, int]


class Pipeline:
    """Runs one source → motion → renderer → sinks chain on worker threads.

    Args:
        source: where audio comes from.
        motion: audio → keypoints.
        renderer: keypoints → RGB frames.
        sinks: consumers of frames and audio (each gets its own thread and queue).
        mode: ``"offline"`` (lossless, as fast as possible) or ``"live"`` (paced, drops video under load).
        clock: paces frames in live mode (default: a real-time :class:`FrameClock` at the motion's fps).
        queue_frames: bound of each video queue, in frames.
        on_progress: called from the render thread with (frames done, frames expected or None).
        on_frame: called from the render thread with every rendered frame (e.g. a GUI preview).
    """

    def __init__(
        self,
        source: AudioSource,
        motion: MotionStream,
        renderer: Renderer,
        sinks: Sequence[Sink],
        *,
        mode: Mode = "offline",
        clock: FrameClock | None = None,
        queue_frames: int = 8,
        on_progress: Callable[[int, int | None], None] | None = None,
        on_frame: Callable[[VideoFrame], None] | None = None,
    ) -> None:
        if mode not in ("offline", "live"):
            raise ValueError(f"mode must be 'offline' or 'live', got {mode!r}")
        self.source = source
        self.motion = motion
        self.renderer = renderer
        self.sinks = list(sinks)
        self.mode: Mode = mode
        self.clock = clock if clock is not None else (FrameClock(motion.fps) if mode == "live" else None)
        self.on_progress = on_progress
        self.on_frame = on_frame
        self.stats = PipelineStats()

        drop = mode == "live"
        self._audio_q = BoundedQueue(256, drop_when_full=False)
        self._pose_q = BoundedQueue(max(queue_frames, renderer.chunk_size * 2), drop_when_full=False)
        self._sink_qs = [BoundedQueue(queue_frames, drop_when_full=drop) for _ in self.sinks]
        self._stop = threading.Event()
        self._cancelled = False
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started_at = 0.0
        self._finished_at: float | None = None
        self._sinks_opened: list[Sink] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the sinks and start the worker threads."""
        if self._threads:
            raise RuntimeError("a Pipeline can only be started once")
        sample_rate = self.source.sample_rate
        try:
            for sink in self.sinks:
                sink.open(self.renderer.size, self.motion.fps, sample_rate)
                self._sinks_opened.append(sink)
        except BaseException:
            for sink in self._sinks_opened:
                _quietly(sink.abort)
            raise
        self._started_at = time.monotonic()
        if self.clock is not None and not self.clock.started:
            self.clock.start()
        specs: list[tuple[str, Callable[[], None]]] = [
            ("podium-source", self._run_source),
            ("podium-motion", self._run_motion),
            ("podium-render", self._run_render),
        ]
        for sink, q in zip(self.sinks, self._sink_qs, strict=True):
            specs.append((f"podium-sink-{sink.name}", lambda s=sink, qq=q: self._run_sink(s, qq)))
        for name, target in specs:
            t = threading.Thread(target=self._guard(target), name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Cancel the run from any thread; :meth:`wait` then raises :class:`PipelineCancelled` (offline)."""
        self._cancelled = True
        self._stop.set()
        _quietly(self.source.close)

    def wait(self, timeout: float | None = None) -> PipelineResult:
        """Wait for the run to end; re-raises the first stage error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            t.join(remaining)
            if t.is_alive():
                raise TimeoutError(f"pipeline thread {t.name} still running after {timeout} s")
        self._finished_at = time.monotonic()
        if self._error is not None:
            raise self._error
        if self._cancelled and self.mode == "offline":
            raise PipelineCancelled("The render was cancelled; no output was written.")
        return PipelineResult(
            frames=self.stats.rendered_frames,
            audio_seconds=self.stats.audio_samples / self.source.sample_rate,
            wall_seconds=self._finished_at - self._started_at,
            dropped_frames=self._dropped(),
        )

    def run(self) -> PipelineResult:
        """``start()`` then ``wait()``."""
        self.start()
        return self.wait()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def error(self) -> BaseException | None:
        return self._error

    def _dropped(self) -> dict[str, int]:
        return {s.name: q.dropped for s, q in zip(self.sinks, self._sink_qs, strict=True)}

    # -- workers ---------------------------------------------------------------------------

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - every stage error must reach wait()
                with self._error_lock:
                    if self._error is None:
                        self._error = exc
                        if isinstance(exc, PodiumError):
                            log.error("%s failed: %s", threading.current_thread().name, exc)
                        else:
                            log.exception("%s failed", threading.current_thread().name)
                self._stop.set()
                _quietly(self.source.close)

        return run

    def _run_source(self) -> None:
        try:
            while not self._stop.is_set():
                block = self.source.read()
                if block is None:
                    break
                self.stats.audio_samples = block.end
                if not self._audio_q.put(block, stop=self._stop):
                    break
                for sink, q in zip(self.sinks, self._sink_qs, strict=True):
                    if sink.wants_audio:
                        q.put_unbounded(("audio", block))
        finally:
            self._audio_q.put_unbounded(_END)

    def _run_motion(self) -> None:
        try:
            while True:
                item = self._audio_q.get(self._stop)
                if item is None:
                    return
                if item is _END:
                    break
                assert isinstance(item, AudioBlock)
                self.motion.accept_audio(item)
                for frame in self.motion.pop_frames():
                    self._put_pose(frame)
            if not self._stop.is_set():
                for frame in self.motion.finish():
                    self._put_pose(frame)
        finally:
            self._pose_q.put_unbounded(_END)

    def _put_pose(self, frame: KeypointFrame) -> None:
        self.stats.keypoint_frames += 1
        self._pose_q.put(frame, stop=self._stop)

    def _expected_frames(self) -> int | None:
        total = self.source.total_samples
        if total is None:
            return None
        return int(round(total * self.motion.fps / self.source.sample_rate))

    def _run_render(self) -> None:
        expected = self._expected_frames()
        pending: list[KeypointFrame] = []
        try:
            while True:
                item = self._pose_q.get(self._stop)
                if item is None:
                    return
                if item is not _END:
                    assert isinstance(item, KeypointFrame)
                    pending.append(item)
                    # In live mode render as soon as a chunk is full; offline also waits for full chunks.
                    if len(pending) < self.renderer.chunk_size:
                        continue
                if pending:
                    self._render_chunk(pending, expected)
                    pending = []
                if item is _END:
                    break
        finally:
            for q in self._sink_qs:
                q.put_unbounded(_END)

    def _render_chunk(self, frames: list[KeypointFrame], expected: int | None) -> None:
        t0 = time.perf_counter()
        out = self.renderer.render(frames)
        self.stats.render_seconds += time.perf_counter() - t0
        now = time.monotonic()
        for frame in out:
            if frame.audio_heard_at is not None:
                self.stats.latencies.append(now - frame.audio_heard_at)
            if self.mode == "live" and self.clock is not None:
                self.clock.wait_for(frame.index, self._stop)
            self.stats.rendered_frames += 1
            if self.on_frame is not None:
                self.on_frame(frame)
            for q in self._sink_qs:
                q.put(("video", frame), stop=self._stop)
        if self.on_progress is not None:
            self.on_progress(self.stats.rendered_frames, expected)

    def _run_sink(self, sink: Sink, q: BoundedQueue) -> None:
        finished = False
        try:
            while True:
                item = q.get(self._stop)
                if item is None or item is _END:
                    finished = item is _END
                    break
                kind, payload = item  # type: ignore[misc]
                if kind == "video":
                    sink.write_video(payload)
                else:
                    sink.write_audio(payload)
        except BaseException:
            _quietly(sink.abort)
            raise
        # A failed run, or an offline run that did not reach its end, leaves no output behind.
        if self._error is not None or (self.mode == "offline" and (self._cancelled or not finished)):
            sink.abort()
        else:
            sink.close()


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - cleanup must not mask the original error
        log.debug("cleanup step failed", exc_info=True)
