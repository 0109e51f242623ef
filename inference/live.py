"""The live engine: microphone → motion → renderer → preview, virtual camera, recording, delayed voice.

One :class:`~inference.pipeline.Pipeline` in live mode runs for as long as the
engine does, on its own threads (``podium-source``, ``podium-motion``,
``podium-render``, one ``podium-sink-*`` per output); PortAudio captures on its
own thread, and renderers are built on ``podium-renderer-loader``. Nothing here
blocks the caller: every control method only records a request, which the
worker threads pick up between blocks or frames.

* The source is the microphone (:class:`~inference.sources.microphone.MicrophoneSource`),
  which goes on with paced silence while no microphone delivers. Unless the
  engine is *live* (and not paused), the motion and every output get silence in
  place of the voice, so the avatar idles.
* Style changes reach the motion stage (its ``set_style``) before its next
  block; :meth:`LiveEngine.status` tells when a frame made with them was shown.
* Renderer, portrait and pack changes are built on the loader thread and swapped
  in between two frames; one that fails to build is reported and the previous one
  stays. A renderer that fails while rendering is replaced by the pose map. With no
  portrait chosen, each renderer shows its own portrait (a student pack's
  presenter), else the bundled default; a chosen portrait stays across switches.
* Outputs (virtual camera, recording, delayed voice) are :class:`SinkSlot` s that
  can be filled and emptied at any time; an output that fails is reported and
  emptied, and the stream goes on.
* Frames are paced by the microphone: a frame goes out once the audio it shows
  has been captured (:class:`CaptureLockedClock`), so the latency cannot creep.
  Under load the renderer skips frames that are already late (video is dropped,
  never audio) and catches up.
* If a stage fails anyway, the engine reports it and restarts the pipeline.

Everything the user should see arrives through ``on_event`` as an
:class:`EngineEvent`; frames for the preview through ``on_frame``. Both are
called on worker threads.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from inference import paths
from inference.clock import FrameClock
from inference.errors import PodiumError, SinkError, StopReason
from inference.motion.factory import create_motion
from inference.motion.style import MotionStyle
from inference.pipeline import Pipeline
from inference.render import factory as render_factory
from inference.settings import CameraSettings, Settings
from inference.sinks.audio_out import DelayedAudioOut
from inference.sinks.recorder import Recorder
from inference.sinks.virtual_camera import VirtualCameraSink
from inference.sources.audio_file import ENGINE_SAMPLE_RATE
from inference.sources.microphone import MicrophoneEvent, MicrophoneSource
from inference.sources.portrait import default_reference, load_portrait
from inference.stages import AudioSource, MotionStream, Renderer, Sink
from inference.types import AudioBlock, KeypointFrame, VideoFrame

log = logging.getLogger(__name__)

#: A frame later than this (seconds past its due time) when it reaches the renderer is skipped.
MAX_LATENESS = 0.15
#: Seconds between restarts of a failed pipeline.
RESTART_DELAY = 1.0
#: Frames over which fps and latency are summarised for the status line.
STATS_WINDOW = 50
#: Seconds between attempts to reconnect a virtual camera that went away.
CAMERA_RETRY_SECONDS = 2.0

Topic = Literal["microphone", "camera", "recording", "audio-out", "renderer", "portrait", "engine"]
Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class InstalledRenderer:
    """What a renderer switch installed: the portrait as chosen (None: none chosen), the renderer as chosen
    ("auto", ...), the pack, and the renderer's own portrait (RGB uint8, what it shows when none is chosen; None
    when it has none, and the bundled default is shown then)."""

    portrait: Path | None
    choice: str
    pack: str | None
    own_portrait: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EngineEvent:
    """Something to tell the user. ``topic`` says which part of the window it concerns; ``installed`` comes with
    the news of a renderer switch, so a window that has asked for another one since knows what this one was."""

    level: Level
    topic: Topic
    message: str
    installed: InstalledRenderer | None = None


@dataclass(frozen=True)
class LiveStatus:
    """A snapshot for the status line (read from any thread).

    Attributes:
        fps: frames shown per second, over the last :data:`STATS_WINDOW` frames.
        latency_ms: median milliseconds from the capture of the sound a frame shows to the frame leaving the
            renderer (None before the first frame); the virtual camera adds a few milliseconds.
        renderer, device: what draws the avatar, and on what ("CPU", "CUDA").
        live, paused: whether the avatar follows the voice, and whether the presenter paused it.
        recording, recording_seconds: whether a recording runs, and how long it is so far.
        camera_on: whether frames are going to a virtual camera.
        microphone_connected, level_db: whether a microphone delivers sound, and its peak level in dBFS.
        skipped_frames: frames dropped because rendering fell behind.
        portrait: the portrait chosen; None when none is (the renderer's own is shown, else the bundled default).
        style_applied: id (from :meth:`LiveEngine.set_style`) of the newest style seen in a shown frame.
    """

    fps: float
    latency_ms: float | None
    renderer: str
    device: str
    live: bool
    paused: bool
    recording: bool
    recording_seconds: float
    camera_on: bool
    microphone_connected: bool
    level_db: float
    skipped_frames: int
    portrait: Path | None
    style_applied: int


@dataclass(frozen=True)
class _LoadRequest:
    """A renderer for the loader to build: the choice ("auto", ...), the portrait (None: none chosen), the pack."""

    choice: str
    portrait: Path | None
    pack: str | None


class SourceFactory(Protocol):
    def __call__(self, on_event: Callable[[MicrophoneEvent], None]) -> AudioSource: ...


# -- timing -------------------------------------------------------------------------------------------


class CaptureTimeline:
    """When each sample of the stream was captured, from the blocks' ``captured_at`` (thread-safe).

    Keeps the last ``keep`` blocks; :meth:`time_of` answers for any sample among them.
    """

    def __init__(self, sample_rate: int, keep: int = 500) -> None:
        self.sample_rate = sample_rate
        self._ends: collections.deque[int] = collections.deque(maxlen=keep)
        self._times: collections.deque[float] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, block: AudioBlock) -> None:
        if block.captured_at is None:
            return
        with self._lock:
            self._ends.append(block.end)
            self._times.append(block.captured_at)

    def time_of(self, sample: float) -> float | None:
        """Host time at which ``sample`` was captured, or None if it is not (or no longer) known."""
        with self._lock:
            if not self._ends or sample >= self._ends[-1] + 1:
                return None
            i = bisect.bisect_right(self._ends, sample)
            if i >= len(self._ends):
                i = len(self._ends) - 1
            if i == 0 and sample < self._ends[0] - self.sample_rate:
                return None  # older than the blocks kept
            return self._times[i] - (self._ends[i] - sample) / self.sample_rate


class CaptureLockedClock(FrameClock):
    """A :class:`FrameClock` on which frame ``i`` is due when the audio it needs has been captured.

    That audio reaches the instant the frame shows (the middle of its span) plus
    the motion's look-ahead; its capture
    time comes from the stream's :class:`CaptureTimeline`. So frames follow the
    microphone's own pace (a crystal that runs a little fast or slow cannot make the
    latency creep, and a burst of audio delivered late is shown at once rather than
    paced out), and :meth:`lateness` is how far processing lags behind the voice.
    """

    def __init__(self, fps: float, timeline: CaptureTimeline, lookahead: Callable[[], float],
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(fps, now=now, sleep=sleep)
        self.timeline = timeline
        self.lookahead = lookahead

    def due(self, index: int) -> float:
        rate = self.timeline.sample_rate
        needed = (index + 0.5) * rate / self.fps + self.lookahead() * rate
        captured = self.timeline.time_of(needed)
        return captured if captured is not None else self._now()


# -- stages wrapped for live control --------------------------------------------------------------------


class _GatedSource:
    """The engine's source: passes the voice through while listening, silence otherwise; notes capture times."""

    def __init__(self, inner: AudioSource, listening: Callable[[], bool], timeline: CaptureTimeline) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.total_samples = None
        self._listening = listening
        self._timeline = timeline
        self.delivered = 0

    def read(self) -> AudioBlock | None:
        block = self.inner.read()
        if block is None:
            return None
        if not self._listening():
            block = dataclasses.replace(block, samples=np.zeros_like(block.samples))
        self._timeline.add(block)
        self.delivered = block.end
        return block

    def close(self) -> None:
        self.inner.close()


class _ObservedMotion:
    """The motion stage, with style changes applied between blocks and noted by the frame they start at."""

    def __init__(self, motion: MotionStream) -> None:
        self._inner = motion
        self.fps = motion.fps
        self.lookahead_seconds = motion.lookahead_seconds
        self._lock = threading.Lock()
        self._pending: tuple[MotionStyle, int] | None = None
        self._next_index = 0
        #: (request id, first frame index made with that style) of the latest applied style
        self.applied: tuple[int, int] = (0, 0)
        self._accepting = 0
        #: samples accepted and turned into every frame they allow
        self.accepted = 0

    @property
    def frames_made(self) -> int:
        return self._next_index

    def set_style(self, style: MotionStyle, request_id: int) -> None:
        with self._lock:
            self._pending = (style.validated(), request_id)

    def accept_audio(self, block: AudioBlock) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            style, request_id = pending
            self._inner.set_style(style)
            self.applied = (request_id, self._next_index)
        self._inner.accept_audio(block)
        self._accepting = block.end

    def _note(self, frames: list[KeypointFrame]) -> list[KeypointFrame]:
        if frames:
            self._next_index = frames[-1].index + 1
        self.accepted = self._accepting
        return frames

    def pop_frames(self) -> list[KeypointFrame]:
        return self._note(self._inner.pop_frames())

    def finish(self) -> list[KeypointFrame]:
        return self._note(self._inner.finish())

    def reset(self) -> None:
        self._inner.reset()


class _SwitchableRenderer:
    """The render stage: a renderer that can be swapped between frames; skips frames that are already late."""

    def __init__(self, size: tuple[int, int], lateness: Callable[[int], float],
                 on_failure: Callable[[str, BaseException], None]) -> None:
        self.size = size
        self._lateness = lateness
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._current: Renderer | None = None
        self._pending: Renderer | None = None
        self._placeholder: np.ndarray | None = None
        self.skipped = 0
        self.handled = 0

    @property
    def current(self) -> Renderer | None:
        return self._current

    @property
    def name(self) -> str:
        current = self._current
        return current.name if current is not None else "loading"

    @property
    def device(self) -> str:
        current = self._current
        return current.device if current is not None else "CPU"

    @property
    def chunk_size(self) -> int:
        current = self._current
        return current.chunk_size if current is not None else 1

    def install(self, renderer: Renderer) -> None:
        """Use ``renderer`` from the next frame on (any thread); the previous one is closed."""
        with self._lock:
            if self._pending is not None:
                self._pending.close()
            self._pending = renderer

    def show_placeholder(self, portrait: np.ndarray) -> None:
        """What to show until the first renderer is ready: the portrait itself."""
        width, height = self.size
        self._placeholder = cv2.resize(portrait, (width, height), interpolation=cv2.INTER_AREA)

    def set_reference(self, portrait: np.ndarray) -> None:
        self.show_placeholder(portrait)

    def default_portrait(self) -> np.ndarray | None:
        """The current renderer's own portrait (None while none is installed)."""
        current = self._current
        return current.default_portrait() if current is not None else None

    def render(self, frames: Sequence[KeypointFrame]) -> list[VideoFrame]:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            old, self._current = self._current, pending
            if old is not None:
                old.close()
        self.handled += len(frames)
        if frames and self._lateness(frames[-1].index) > MAX_LATENESS:
            self.skipped += len(frames)
            return []
        if self._current is None:
            image = self._placeholder if self._placeholder is not None else np.zeros((*self.size[::-1], 3), np.uint8)
            return [VideoFrame(image.copy(), f.index, f.fps, f.audio_heard_at, {"renderer": "loading"}) for f in frames]
        try:
            return self._current.render(frames)
        except Exception as exc:  # noqa: BLE001 - a broken renderer must not stop the stream
            failed, self._current = self._current, None
            self._on_failure(failed.name if failed is not None else "renderer", exc)
            return []

    def reset(self) -> None:
        if self._current is not None:
            self._current.reset()

    def close(self) -> None:
        with self._lock:
            for renderer in (self._current, self._pending):
                if renderer is not None:
                    renderer.close()
            self._current = self._pending = None


class SinkSlot:
    """A pipeline sink that forwards to an output attached or detached at any time, from any thread.

    The output is opened, written and closed on the slot's sink thread. An output
    that fails is reported through ``on_failure`` and dropped; the stream goes on.
    An output whose ``finished`` attribute becomes true (a recording that has
    stopped) is closed and reported through ``on_finished``.
    """

    def __init__(self, name: str, *, wants_audio: bool, on_failure: Callable[[Sink, BaseException], None],
                 on_finished: Callable[[Sink], None] | None = None,
                 on_opened: Callable[[Sink], None] | None = None) -> None:
        self.name = name
        self.wants_audio = wants_audio
        self._on_failure = on_failure
        self._on_finished = on_finished
        self._on_opened = on_opened
        self._lock = threading.Lock()
        self._requests: list[Sink | None] = []
        self._sink: Sink | None = None
        self._format: tuple[tuple[int, int], float, int] | None = None
        self.wanted: Sink | None = None  # what the slot holds or is about to hold

    @property
    def sink(self) -> Sink | None:
        """The output being written now."""
        return self._sink

    def attach(self, sink: Sink) -> None:
        with self._lock:
            self._requests.append(sink)
            self.wanted = sink

    def detach(self) -> None:
        with self._lock:
            self._requests.append(None)
            self.wanted = None

    def open(self, size: tuple[int, int], fps: float, sample_rate: int) -> None:
        self._format = (size, fps, sample_rate)
        with self._lock:
            if self.wanted is not None and self._sink is None and not self._requests:
                self._requests.append(self.wanted)  # reattach after a pipeline restart

    def _apply_requests(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
        for request in requests:
            self._finish(self._sink)
            self._sink = None
            if request is not None and self._format is not None:
                try:
                    request.open(*self._format)
                except Exception as exc:  # noqa: BLE001 - reported; the stream goes on without this output
                    self._fail(request, exc, opened=False)
                    continue
                self._sink = request
                if self._on_opened is not None:
                    self._on_opened(request)

    def _fail(self, sink: Sink, exc: BaseException, *, opened: bool = True) -> None:
        if not isinstance(exc, PodiumError):
            log.error("output %s failed", sink.name, exc_info=exc)
        with self._lock:
            if self.wanted is sink:
                self.wanted = None
        if opened:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - it failed already; keep what can be kept, else clean up
                sink.abort()
        if self._sink is sink:
            self._sink = None
        self._on_failure(sink, exc)

    def _finish(self, sink: Sink | None) -> None:
        if sink is None:
            return
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001 - reported
            self._fail(sink, exc, opened=False)
            return
        if self._sink is sink:
            self._sink = None
        if getattr(sink, "finished", False):
            with self._lock:
                if self.wanted is sink:
                    self.wanted = None
            if self._on_finished is not None:
                self._on_finished(sink)

    def _write(self, method: str, item: object) -> None:
        if self._requests:
            self._apply_requests()
        sink = self._sink
        if sink is None:
            return
        try:
            getattr(sink, method)(item)
        except Exception as exc:  # noqa: BLE001 - reported; the stream goes on without this output
            self._fail(sink, exc)
            return
        if getattr(sink, "finished", False):
            self._finish(sink)

    def write_video(self, frame: VideoFrame) -> None:
        self._write("write_video", frame)

    def write_audio(self, block: AudioBlock) -> None:
        self._write("write_audio", block)

    def close(self) -> None:
        """The pipeline ends: finish the output (a recording is kept); camera and voice reattach on restart."""
        self._apply_requests()
        sink, self._sink = self._sink, None
        self._finish(sink)

    def abort(self) -> None:
        self.close()


# -- the engine -----------------------------------------------------------------------------------------------


class LiveEngine:
    """Runs the live avatar (see the module docstring).

    Args:
        settings: the user's settings (render size and fps, style, portrait, renderer, camera, audio).
        on_frame: called on the render thread with every frame shown (the preview).
        on_event: called on worker threads with every :class:`EngineEvent`.
        source_factory: builds the audio source (default: the microphone of ``settings.audio.input_device``).
        motion_factory: builds the motion stage from (style, sample rate, fps) (default: ``create_motion``).
        clock_factory: makes the frame clock of each (re)started stream from its capture timeline and the
            motion's look-ahead (default: a :class:`CaptureLockedClock` on ``now``).
        now: host time source (the clock of the source's ``captured_at``).
        camera_backend: pyvirtualcam backend name for the virtual camera (None: the system's).
        audio_backend: sounddevice stand-in for the delayed audio out (None: sounddevice).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        on_frame: Callable[[VideoFrame], None] | None = None,
        on_event: Callable[[EngineEvent], None] | None = None,
        source_factory: SourceFactory | None = None,
        motion_factory: Callable[[MotionStyle, int, float], MotionStream] = create_motion,
        clock_factory: Callable[[CaptureTimeline, Callable[[], float]], FrameClock] | None = None,
        now: Callable[[], float] = time.monotonic,
        camera_backend: str | None = None,
        audio_backend: Any = None,
    ) -> None:
        self.settings = settings
        self.fps = float(settings.render.fps)
        self.size = (settings.render.size, settings.render.size)
        self.sample_rate = ENGINE_SAMPLE_RATE
        self.on_frame = on_frame
        self.on_event = on_event
        self._source_factory = source_factory or self._microphone
        self._motion_factory = motion_factory
        self._now = now
        self._clock_factory = clock_factory or (
            lambda timeline, lookahead: CaptureLockedClock(self.fps, timeline, lookahead, now=now))
        self.timeline = CaptureTimeline(self.sample_rate)
        self.clock = self._clock_factory(self.timeline, lambda: 0.0)
        self.camera_backend = camera_backend
        self.audio_backend = audio_backend
        self._style_shown = 0

        self._lock = threading.Lock()
        self._live = False
        self._paused = False
        self._style = settings.style.validated()
        self._style_id = 0
        self._portrait = settings.render.portrait_path
        self._renderer_choice = settings.render.renderer
        self._pack = settings.render.pack
        self._camera_settings = settings.camera
        self._frame_times: collections.deque[float] = collections.deque(maxlen=STATS_WINDOW)
        self._latencies: collections.deque[float] = collections.deque(maxlen=STATS_WINDOW)

        self.renderer = _SwitchableRenderer(self.size, lambda index: self.clock.lateness(index), self._renderer_failed)
        self.camera_slot = SinkSlot("camera", wants_audio=False, on_failure=self._output_failed,
                                    on_opened=self._camera_opened)
        self._camera_reconnecting = False
        self.recorder_slot = SinkSlot("recorder", wants_audio=True, on_failure=self._output_failed,
                                      on_finished=self._recording_finished)
        self.audio_out_slot = SinkSlot("audio-out", wants_audio=True, on_failure=self._output_failed)

        self._source: _GatedSource | None = None
        self.motion: _ObservedMotion | None = None
        self._pipeline: Pipeline | None = None
        self._running = False
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._load_requests: list[_LoadRequest] = []
        self._load_wakeup = threading.Condition()
        self._loader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the stream (returns at once; the renderer is built in the background)."""
        if self._running:
            return
        self._running = True
        self._stopping.clear()
        self._loader = threading.Thread(target=self._run_loader, name="podium-renderer-loader", daemon=True)
        self._loader.start()
        self._request_renderer()
        self._supervisor = threading.Thread(target=self._supervise, name="podium-live-supervisor", daemon=True)
        self._supervisor.start()
        if self._camera_settings.enabled:
            self.set_camera(self._camera_settings)
        if self.settings.audio.delayed_output:
            self.set_audio_out(True, self.settings.audio.output_device)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop everything; a recording in progress is finished and kept."""
        if not self._running:
            return
        self._stopping.set()
        recorder = self.recorder_slot.wanted
        if isinstance(recorder, Recorder):
            recorder.request_stop()
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()
        for thread in (self._supervisor, self._loader):
            if thread is not None:
                with self._load_wakeup:
                    self._load_wakeup.notify_all()
                thread.join(timeout)
        self.renderer.close()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def _microphone(self, on_event: Callable[[MicrophoneEvent], None]) -> AudioSource:
        return MicrophoneSource(self.settings.audio.input_device, sample_rate=self.sample_rate, wait_for_device=True,
                                on_event=on_event, now=self._now)

    def _start_pipeline(self) -> None:
        # every stream numbers its samples and frames from zero: new timeline, new clock
        self.timeline = CaptureTimeline(self.sample_rate)
        source = self._source_factory(self._microphone_event)
        self._source = _GatedSource(source, self._listening, self.timeline)
        with self._lock:
            style, style_id = self._style, self._style_id
        motion = _ObservedMotion(self._motion_factory(style, self.sample_rate, self.fps))
        motion.applied = (style_id, 0)
        self.motion = motion
        self.clock = self._clock_factory(self.timeline, lambda: motion.lookahead_seconds)
        self._pipeline = Pipeline(
            self._source, self.motion, self.renderer, [self.camera_slot, self.recorder_slot, self.audio_out_slot],
            mode="live", clock=self.clock, queue_frames=4, on_frame=self._on_frame,
        )
        self._pipeline.start()

    def _supervise(self) -> None:
        """Run the stream, and start it again whenever it fails (building the motion stage takes a moment, so
        this happens here rather than on the caller's thread)."""
        while not self._stopping.is_set():
            try:
                self._start_pipeline()
                if self._stopping.is_set():  # stop() came while the stream was starting
                    self._pipeline.stop()
                self._pipeline.wait()
            except Exception as exc:  # noqa: BLE001 - reported, then the stream restarts
                if not self._stopping.is_set():
                    self._emit("error", "engine", f"The live stream stopped ({exc}); restarting it.")
            if self._stopping.wait(RESTART_DELAY):
                return

    # -- controls (any thread) --------------------------------------------------------------------------

    def set_live(self, live: bool) -> None:
        """Live: the avatar follows the voice. Not live: it idles, and outputs get silence."""
        with self._lock:
            self._live = live

    def set_paused(self, paused: bool) -> None:
        """Pause: the avatar idles and the voice is held back, even while live (a quick mute)."""
        with self._lock:
            self._paused = paused

    def _listening(self) -> bool:
        with self._lock:
            return self._live and not self._paused

    def set_style(self, style: MotionStyle) -> int:
        """Apply ``style`` from the next audio block on; returns the request id that :meth:`status` reports
        as ``style_applied`` once a frame with it has been shown."""
        style = style.validated()
        with self._lock:
            self._style = style
            self._style_id += 1
            request_id = self._style_id
        if self.motion is not None:
            self.motion.set_style(style, request_id)
        return request_id

    def set_portrait(self, portrait: Path | None) -> None:
        """Use another portrait; None: none chosen, so each renderer shows its own portrait, else the bundled
        default (built in the background; a failure is reported and the old one stays)."""
        self._request_renderer(portrait=None if portrait is None else Path(portrait))

    def set_renderer(self, choice: str, pack: str | None = None) -> None:
        """Use another renderer ("auto", "student", "photo-rig", "pose-map") or pack."""
        self._request_renderer(choice=choice, pack=pack)

    def set_microphone(self, device: str | None) -> None:
        """Listen to another microphone (None: the system default)."""
        self.settings = dataclasses.replace(self.settings,
                                            audio=dataclasses.replace(self.settings.audio, input_device=device))
        source = self._source.inner if self._source is not None else None
        if isinstance(source, MicrophoneSource):
            source.set_device(device)

    def set_camera(self, camera: CameraSettings) -> None:
        """Switch the virtual camera on or off, or change its resolution, mirroring or badge."""
        previous = self.camera_slot.wanted
        self._camera_settings = camera
        if not camera.enabled:
            self._camera_reconnecting = False
            self.camera_slot.detach()
            return
        if (isinstance(previous, VirtualCameraSink) and previous.resolution == camera.resolution
                and previous.device == camera.device):
            previous.set_look(mirror=camera.mirror, badge=camera.badge)
            return
        sink = VirtualCameraSink(camera.resolution, mirror=camera.mirror, badge=camera.badge, device=camera.device,
                                 backend=self.camera_backend, now=self._now)
        self.camera_slot.attach(sink)

    def start_recording(self, path: Path) -> Recorder:
        """Record from the next frame on to ``path``; problems arrive as "recording" events."""
        recorder = Recorder(path, crf=self.settings.recording.quality_crf)
        self.recorder_slot.attach(recorder)
        return recorder

    def stop_recording(self) -> None:
        """Finish the recording; a "recording" event says where it was saved."""
        recorder = self.recorder_slot.wanted
        if isinstance(recorder, Recorder):
            recorder.request_stop()

    def set_audio_out(self, enabled: bool, device: str | None = None) -> None:
        """Play the voice, delayed to match the video, into ``device`` (a virtual microphone)."""
        if not enabled:
            self.audio_out_slot.detach()
            return
        self.audio_out_slot.attach(DelayedAudioOut(device, target_delay=self.video_latency,
                                                   backend=self.audio_backend, now=self._now))

    # -- observing ----------------------------------------------------------------------------------------

    def video_latency(self) -> float | None:
        """Median seconds from a sound being captured to the frame showing it leaving the renderer."""
        with self._lock:
            values = list(self._latencies)
        return statistics.median(values) if values else None

    def status(self) -> LiveStatus:
        with self._lock:
            times = list(self._frame_times)
            live, paused = self._live, self._paused
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 and times[-1] > times[0] else 0.0
        latency = self.video_latency()
        source = self._source.inner if self._source is not None else None
        recorder = self.recorder_slot.wanted
        return LiveStatus(
            fps=fps,
            latency_ms=None if latency is None else latency * 1000.0,
            renderer=self.renderer.name,
            device=self.renderer.device,
            live=live,
            paused=paused,
            recording=isinstance(recorder, Recorder),
            recording_seconds=recorder.seconds if isinstance(recorder, Recorder) else 0.0,
            camera_on=isinstance(self.camera_slot.sink, VirtualCameraSink),
            microphone_connected=bool(getattr(source, "connected", False)),
            level_db=float(getattr(source, "level_db", -90.0)),
            skipped_frames=self.renderer.skipped,
            portrait=self._portrait,
            style_applied=self._style_shown,
        )

    def _on_frame(self, frame: VideoFrame) -> None:
        now = self._now()
        # the sound a frame shows is the middle of its audio span
        heard = self.timeline.time_of((frame.index + 0.5) * self.sample_rate / self.fps)
        with self._lock:
            self._frame_times.append(now)
            if heard is not None:
                self._latencies.append(now - heard)
        motion = self.motion
        if motion is not None:
            request_id, first_index = motion.applied
            if frame.index >= first_index and request_id > self._style_shown:
                self._style_shown = request_id
        if self.on_frame is not None:
            self.on_frame(frame)

    # -- renderer loading ------------------------------------------------------------------------------------

    def _request_renderer(self, **changes: str | Path | None) -> None:
        """Ask the loader for the newest request (or what is installed) with ``changes`` (choice, portrait, pack)."""
        with self._load_wakeup:
            base = (self._load_requests[-1] if self._load_requests
                    else _LoadRequest(self._renderer_choice, self._portrait, self._pack))
            self._load_requests.append(dataclasses.replace(base, **changes))
            self._load_wakeup.notify_all()

    def _run_loader(self) -> None:
        while True:
            with self._load_wakeup:
                while not self._load_requests and not self._stopping.is_set():
                    self._load_wakeup.wait(0.2)
                if self._stopping.is_set():
                    return
                request, self._load_requests = self._load_requests[-1], []
            self._load(request)

    def _load(self, request: _LoadRequest) -> None:
        """Build the requested renderer and give it its portrait: the chosen one (loaded first, so a bad photo
        is reported before anything is built), else the renderer's own, else the bundled default."""
        chosen: np.ndarray | None = None
        if request.portrait is not None:
            try:
                chosen = load_portrait(request.portrait)
            except PodiumError as exc:
                self._emit("error", "portrait", f"This portrait cannot be used: {exc} The previous one stays.")
                return
            if self.renderer.current is None:
                self.renderer.show_placeholder(chosen)
        try:
            name = render_factory.resolve(request.choice, portrait_chosen=request.portrait is not None)
            options: dict[str, object] = {"overlay_reference": True} if name == "pose-map" else {}
            if request.pack:
                options["pack"] = request.pack
            renderer = render_factory.create_renderer(name, self.size, **options)
        except PodiumError as exc:
            self._emit("error", "renderer", f"The {request.choice} renderer cannot start: {exc} "
                                            "The previous one stays.")
            return
        own = renderer.default_portrait()
        try:
            portrait = chosen if chosen is not None else default_reference(renderer)
            if chosen is None and self.renderer.current is None:
                self.renderer.show_placeholder(portrait)
            renderer.set_reference(portrait)
        except PodiumError as exc:
            renderer.close()
            self._emit("error", "portrait", f"This portrait does not fit the {renderer.name} renderer: {exc} "
                                            "Try a photo with one face, looking at the camera. The previous one stays.")
            return
        self.renderer.install(renderer)
        self._portrait, self._renderer_choice, self._pack = request.portrait, request.choice, request.pack
        if request.portrait is not None:
            shown = f"Showing {request.portrait.name} with the {renderer.name} renderer"
        elif own is not None:
            shown = f"Showing the {renderer.name} renderer's own presenter"
        else:
            shown = f"Showing the default portrait ({paths.default_portrait().name}) with the {renderer.name} renderer"
        self._emit("info", "renderer", f"{shown} on {renderer.device}.",
                   InstalledRenderer(request.portrait, request.choice, request.pack, own))

    # -- failures and reports ----------------------------------------------------------------------------------

    def _emit(self, level: Level, topic: Topic, message: str, installed: InstalledRenderer | None = None) -> None:
        log.log({"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level], "%s: %s", topic,
                message)
        if self.on_event is not None:
            self.on_event(EngineEvent(level, topic, message, installed))

    def _microphone_event(self, event: MicrophoneEvent) -> None:
        level: Level = "info" if event.kind in ("opened", "restored") else "warning"
        self._emit(level, "microphone", event.message)

    def _renderer_failed(self, name: str, exc: BaseException) -> None:
        log.error("renderer %s failed", name, exc_info=exc)
        self._emit("error", "renderer", f"The {name} renderer failed ({exc}); showing the pose map instead.")
        self._request_renderer(choice="pose-map", pack=None)

    def _output_failed(self, sink: Sink, exc: BaseException) -> None:
        topic: Topic = {"virtual-camera": "camera", "recording": "recording", "audio-out": "audio-out"}.get(
            sink.name, "engine")
        if topic == "camera":
            lost = isinstance(exc, SinkError) and exc.reason is StopReason.DEVICE_LOST
            if lost or self._camera_reconnecting:  # it worked before: keep trying until it is back
                if not self._camera_reconnecting:
                    self._camera_reconnecting = True
                    self._emit("warning", "camera", f"{exc} Podium reconnects it as soon as it is back.")
                retry = threading.Timer(CAMERA_RETRY_SECONDS, self._reconnect_camera)
                retry.daemon = True
                retry.start()
                return
            self._camera_settings = dataclasses.replace(self._camera_settings, enabled=False)
        self._emit("error", topic, str(exc))

    def _reconnect_camera(self) -> None:
        if self._running and self._camera_reconnecting and self._camera_settings.enabled:
            self.set_camera(self._camera_settings)

    def _camera_opened(self, sink: Sink) -> None:
        if self._camera_reconnecting:
            self._camera_reconnecting = False
            self._emit("info", "camera", "The virtual camera is back.")

    def _recording_finished(self, sink: Sink) -> None:
        if isinstance(sink, Recorder):
            self._emit("info", "recording", f"Saved the recording ({sink.seconds:.1f} s) to {sink.path}.")
