"""A bank of keypoint streams: the motion stage driven by real speech, in several styles, framings and seeds.

    bank = MotionBank.build("train")             # about two minutes on one core
    bank.save("motion_train.npz"); MotionBank.load("motion_train.npz")
    python -m training.data.motion_bank OUT.npz [--split heldout]

Every stream is what :func:`inference.motion.factory.create_motion` produces
from one speech clip (see :mod:`training.data.speech`) for one style, framing,
seed and mode (live and offline): the bank
is the motion the renderer will really be driven with, before the pose-space
perturbations of :mod:`training.data.perturb` widen it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from inference.errors import InputFileError
from inference.keypoints import validate_sequence
from inference.motion.factory import create_motion
from inference.motion.style import FRAMINGS, PRESETS, MotionStyle
from training.data.speech import SPLITS, SpeechClip, read_blocks, speech_clips

#: Style variants: the default style and every preset.
STYLE_NAMES: tuple[str, ...] = ("default", *PRESETS)
#: Motion-stage modes: live (bounded look-ahead, the app) and offline (whole utterances, file renders).
MODES: tuple[str, ...] = ("live", "offline")
_FORMAT = "podium-motion-bank/1"


@dataclass(frozen=True)
class StreamInfo:
    """Where one stream came from."""

    speech: str
    style: str
    framing: str
    seed: int
    mode: str = "live"


def style_named(name: str, framing: str, seed: int) -> MotionStyle:
    """The motion style ``name`` ("default" or a preset) with ``framing`` and ``seed``."""
    if name == "default":
        base = MotionStyle()
    elif name in PRESETS:
        base = PRESETS[name]
    else:
        raise ValueError(f"unknown style {name!r}; choose one of {', '.join(STYLE_NAMES)}")
    return replace(base, framing=framing, seed=seed).validated()  # type: ignore[arg-type]


def motion_stream(clip: SpeechClip, style: MotionStyle, fps: float, mode: str = "live") -> np.ndarray:
    """Run the motion stage (``mode`` "live" or "offline") over one speech clip: float32 ``[T, 134, 3]``."""
    blocks = read_blocks(clip)
    motion = create_motion(style, blocks[0].sample_rate, fps, mode=mode)  # type: ignore[arg-type]
    frames = []
    for block in blocks:
        motion.accept_audio(block)
        frames += motion.pop_frames()
    frames += motion.finish()
    return np.stack([f.keypoints for f in frames]).astype(np.float32)


class MotionBank:
    """Keypoint streams ``[T_i, 134, 3]`` with their origin, all at one frame rate.

    Args:
        streams: one float32 array ``[T_i, 134, 3]`` per stream.
        infos: where each stream came from.
        fps: frame rate of every stream.
        split: "train" or "heldout".
    """

    def __init__(self, streams: list[np.ndarray], infos: list[StreamInfo], fps: float, split: str) -> None:
        if len(streams) != len(infos):
            raise ValueError("one StreamInfo per stream is needed")
        if not streams:
            raise ValueError("a motion bank needs at least one stream")
        self.streams = [validate_sequence(s, name=f"stream {i}") for i, s in enumerate(streams)]
        self.infos = list(infos)
        self.fps = float(fps)
        self.split = split

    def __len__(self) -> int:
        return len(self.streams)

    @property
    def total_frames(self) -> int:
        return sum(len(s) for s in self.streams)

    @classmethod
    def build(cls, split: str, *, fps: float = 25.0, styles: tuple[str, ...] = STYLE_NAMES,
              framings: tuple[str, ...] = FRAMINGS, seeds: tuple[int, ...] = (0,),
              modes: tuple[str, ...] = MODES, clips: list[SpeechClip] | None = None) -> MotionBank:
        """Drive the motion stage with every speech clip of ``split`` × style × framing × seed × mode."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        clips = speech_clips(split) if clips is None else clips
        streams, infos = [], []
        for clip in clips:
            for style_name in styles:
                for framing in framings:
                    for seed in seeds:
                        for mode in modes:
                            style = style_named(style_name, framing, seed)
                            streams.append(motion_stream(clip, style, fps, mode))
                            infos.append(StreamInfo(clip.name, style_name, framing, seed, mode))
        return cls(streams, infos, fps, split)

    def save(self, path: str | Path) -> Path:
        """Write the bank as one compressed ``.npz`` (keypoints in float16 are not exact enough: float32)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(s) for s in self.streams]).astype(np.int64)
        meta = {"format": _FORMAT, "fps": self.fps, "split": self.split, "streams": [asdict(i) for i in self.infos]}
        with open(path, "wb") as f:
            np.savez_compressed(f, keypoints=np.concatenate(self.streams), offsets=offsets, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> MotionBank:
        """Read a bank written by :meth:`save`.

        Raises:
            InputFileError: missing, not a motion bank, or damaged.
        """
        path = Path(path)
        fix = "Rebuild it with `python -m training.data.motion_bank OUT.npz`"
        if not path.is_file():
            raise InputFileError(path, "no such motion bank file", fix)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                keypoints, offsets = data["keypoints"], data["offsets"]
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise InputFileError(path, f"not a readable motion bank ({exc})", fix) from exc
        if meta.get("format") != _FORMAT:
            raise InputFileError(path, f"unknown motion bank format {meta.get('format')!r}", fix)
        streams = [keypoints[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        infos = [StreamInfo(**i) for i in meta["streams"]]
        return cls(streams, infos, meta["fps"], meta["split"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.motion_bank", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the bank (.npz)")
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seeds", type=int, default=1, help="motion seeds per speech clip, style, framing and mode")
    args = parser.parse_args(argv)
    bank = MotionBank.build(args.split, fps=args.fps, seeds=tuple(range(args.seeds)))
    bank.save(args.out)
    speech = sorted({i.speech for i in bank.infos})
    print(f"{args.out}: {len(bank)} streams, {bank.total_frames} frames at {bank.fps:g} fps from {', '.join(speech)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
