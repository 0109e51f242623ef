"""Pictures of the motion stage for people: a contact sheet and a short pose-map video with its audio.

Used by ``main.py bench motion``: the sheet shows six moments of the demo speech
(whole presenter above, a close-up of the face below, labelled with the aligned
phone) and a strip plotting the mouth opening measured on the keypoints against
the opening the aligned phones call for; the video is the first sentence,
presenter and face close-up side by side, with the speech.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inference import keypoints as kp
from inference.motion.readout import mouth_opening
from inference.motion.visemes import phone_openness, phone_viseme
from inference.render.pose_map import FULL, draw_pose_map
from inference.sinks.mp4 import Mp4Sink
from inference.sources.audio_file import ENGINE_SAMPLE_RATE
from inference.types import AudioBlock, KeypointFrame, VideoFrame

TILE = 256
_WANTED = ("AA", "OU", "PP", "EI", "FF", "sil")


def face_closeup(keypoints: np.ndarray, size: int) -> np.ndarray:
    """The face of ``keypoints`` drawn to fill a ``size`` square (pose-map style)."""
    face = keypoints[kp.FACE]
    visible = face[face[:, 2] > 0, :2]
    if not len(visible):
        return np.zeros((size, size, 3), np.uint8)
    centre = (visible.min(axis=0) + visible.max(axis=0)) / 2
    span = float((visible.max(axis=0) - visible.min(axis=0)).max()) * 1.35
    zoomed = np.zeros_like(keypoints)
    zoomed[kp.FACE, :2] = (face[:, :2] - centre) / span + 0.5
    zoomed[kp.FACE, 2] = face[:, 2]
    return draw_pose_map(zoomed, (size, size))


def _label(image: np.ndarray, text: str) -> None:
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def _pick_frames(gt_at_frames: list[str]) -> list[int]:
    chosen: list[int] = []
    for wanted in _WANTED:
        for i, phone in enumerate(gt_at_frames):
            if phone_viseme(phone) == wanted and i > 10 and all(abs(i - c) > 25 for c in chosen):
                # the middle of a run of this viseme
                j = i
                while j + 1 < len(gt_at_frames) and phone_viseme(gt_at_frames[j + 1]) == wanted:
                    j += 1
                chosen.append((i + j) // 2)
                break
    return sorted(chosen)


def contact_sheet(frames: list[KeypointFrame], gt: list[str]) -> np.ndarray:
    """RGB uint8 sheet: six moments (presenter, face close-up) and a mouth-opening strip."""
    fps = frames[0].fps
    hops = [min(len(gt) - 1, int((i + 0.5) / fps * 100)) for i in range(len(frames))]
    gt_at = [gt[h] for h in hops]
    picks = _pick_frames(gt_at)
    top, bottom = [], []
    for i in picks:
        body = draw_pose_map(frames[i].keypoints, (TILE, TILE), style=FULL)
        _label(body, f"{(i + 0.5) / fps:5.2f} s")
        face = face_closeup(frames[i].keypoints, TILE)
        _label(face, f"{gt_at[i]} ({phone_viseme(gt_at[i])})")
        top.append(body)
        bottom.append(face)
    sheet = np.vstack([np.hstack(top), np.hstack(bottom)])
    return np.vstack([sheet, _opening_strip(frames, gt_at, sheet.shape[1])])


def _opening_strip(frames: list[KeypointFrame], gt_at: list[str], width: int, height: int = 150,
                   seconds: float = 8.0) -> np.ndarray:
    fps = frames[0].fps
    n = min(len(frames), int(seconds * fps))
    strip = np.zeros((height, width, 3), np.uint8)
    measured = mouth_opening(np.stack([f.keypoints for f in frames[:n]]))
    expected = np.array([phone_openness(p) for p in gt_at[:n]])
    scale = 1.0 / max(1e-6, float(np.percentile(measured, 98)))
    xs = np.linspace(8, width - 8, n).astype(np.int32)

    def curve(values: np.ndarray, colour: tuple[int, int, int]) -> None:
        ys = (height - 22 - np.clip(values, 0, 1.2) * (height - 40)).astype(np.int32)
        cv2.polylines(strip, [np.stack([xs, ys], axis=1)], False, colour, 2, cv2.LINE_AA)

    curve(expected, (90, 90, 255))
    curve(measured * scale, (255, 200, 60))
    cv2.putText(strip, f"mouth opening, first {seconds:g} s: keypoints (orange) vs aligned phones (blue)",
                (8, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (220, 220, 220), 1, cv2.LINE_AA)
    return strip


def write_media(frames: list[KeypointFrame], audio48: np.ndarray, gt: list[str], folder: Path,
                seconds: float = 7.1) -> tuple[Path, Path]:
    """Write ``motion_sheet.png`` and ``motion_clip.mp4`` (the first ``seconds``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sheet_path = folder / "motion_sheet.png"
    sheet = contact_sheet(frames, gt)
    cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])

    video_path = folder / "motion_clip.mp4"
    fps = frames[0].fps
    n = int(seconds * fps)
    size = 320
    sink = Mp4Sink(video_path, crf=30, preset="veryslow", audio_bitrate=48_000, name="motion-clip")
    sink.open((2 * size, size), fps, ENGINE_SAMPLE_RATE)
    try:
        audio = audio48[: int(round(n * ENGINE_SAMPLE_RATE / fps))]
        for start in range(0, len(audio), 960):
            sink.write_audio(AudioBlock(audio[start : start + 960], ENGINE_SAMPLE_RATE, start))
        for i, f in enumerate(frames[:n]):
            pose = draw_pose_map(f.keypoints, (size, size), style=FULL)
            rgb = np.hstack([pose, face_closeup(f.keypoints, size)])
            sink.write_video(VideoFrame(rgb=rgb, index=i, fps=fps))
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return sheet_path, video_path
