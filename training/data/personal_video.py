"""The personal-video path: a video of a person talking → a training dataset in the shard format.

    python -m training.data.personal_video VIDEO OUT_DIR [--size 256]
        [--points auto] [--every 1] [--max-frames N] [--sheet docs/images/personal_video_sheet.png]

1. Every frame (or every ``--every``-th) goes through MediaPipe Holistic (pose, face
   mesh, person segmentation) and MediaPipe Hands; the shared mapping
   (:mod:`inference.motion.landmark_mapping`, also used by the webcam source) turns them
   into DWPose-134, and :mod:`training.data.landmark_confidence` gives the points the
   confidences the filter needs (face points under a hand count as occluded).
2. Frames are filtered by the paper's rules (:class:`FilterRules`): face confidence
   > 0.9, upper-body confidence > 0.8, at least 90 % of the upper-body points visible.
   The upper-body rules apply to the points the video can show (``--points``):
   the paper's set when the arms are in the picture, fewer for closer shots.
3. One square crop for the whole video puts the face where the motion stage's
   framing puts it (half-body when the arms are in the picture, else head-and-shoulders).
4. Kept frames are cropped, resized, given region masks (keypoints + segmentation),
   and written as shards; runs of consecutive kept frames become clips; the most
   neutral kept frame (mouth closed, eyes open, facing the camera) is the reference.
5. A report of what was kept and why is printed and written to ``OUT_DIR/report.json``;
   the reference portrait is also saved as ``OUT_DIR/reference.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from inference import keypoints as kp
from inference.errors import InputFileError, PodiumError
from inference.motion.landmark_mapping import dwpose_from_mediapipe
from inference.motion.rig import Framing
from training.data.keypoint_regions import region_masks_from_keypoints
from training.data.landmark_confidence import hand_scores, refine_confidences
from training.data.shards import ShardWriter
from training.synthetic.keypoint_ops import VISIBLE_RANGE

#: The points the upper-body rules apply to, by what the video shows: the paper's upper body when the arms are in
#: the picture; without elbows and wrists for a head-and-shoulders video; only the head's points for a close-up.
UPPER_BODY_POINTS: dict[str, np.ndarray] = {
    "half-body": kp.UPPER_BODY,
    "head-and-shoulders": np.array([kp.NOSE, kp.NECK, kp.R_SHOULDER, kp.L_SHOULDER, kp.R_EYE, kp.L_EYE, kp.R_EAR,
                                    kp.L_EAR], dtype=np.int64),
    "head": np.array([kp.NOSE, kp.R_EYE, kp.L_EYE, kp.R_EAR, kp.L_EAR], dtype=np.int64),
}
POINT_SETS: tuple[str, ...] = ("auto", *UPPER_BODY_POINTS)
#: A point counts as visible above this confidence (DWPose's convention).
VISIBLE_CONFIDENCE = 0.3
_SEGMENTATION_DOWN = 4  # person masks are kept at 1/4 of the video's size between the two passes
_FIX_VIDEO = "Use an MP4, MOV, MKV or WebM video that plays in a media player"


@dataclass(frozen=True)
class FilterRules:
    """The paper's strict frame filter (IASA §4.1), with the set of upper-body points it applies to.

    Attributes:
        face: the mean confidence of the 68 face points must exceed this.
        upper_body: the mean confidence of the visible upper-body points must exceed this.
        visible: at least this fraction of the upper-body points must be visible (confidence > 0.3).
        points: which upper-body points the rules apply to (see :data:`UPPER_BODY_POINTS`): "half-body" (the
            paper's: nose, neck, eyes, ears, shoulders, elbows, wrists), "head-and-shoulders" (without elbows and
            wrists), "head" (nose, eyes, ears: a close-up), or "auto" (the largest set most frames show).
    """

    face: float = 0.9
    upper_body: float = 0.8
    visible: float = 0.9
    points: str = "auto"


@dataclass
class FrameCheck:
    """Why one frame was kept or dropped."""

    frame: int
    kept: bool
    reason: str
    face: float
    upper_body: float
    visible: float


@dataclass
class Report:
    """What the personal-video path did: counts, reasons, crop, clips, reference, timings."""

    video: str
    out_dir: str
    frames_in_video: int
    frames_checked: int
    frames_kept: int
    rejected: dict[str, int]
    upper_body_points: str
    framing: str
    rules: dict[str, object]
    kept_by_points: dict[str, int]
    crop: dict[str, int] | None
    size: int
    clips: int
    clip_lengths: list[int]
    reference_frame: int | None
    shards: list[str]
    seconds: dict[str, float]
    frames: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"{self.video}: kept {self.frames_kept} of {self.frames_checked} checked frames "
                 f"({self.frames_in_video} in the video); upper-body rules on the {self.upper_body_points} points, "
                 f"crop framed {self.framing}"]
        for reason, n in sorted(self.rejected.items(), key=lambda kv: -kv[1]):
            lines.append(f"  dropped {n:5d}: {reason}")
        others = ", ".join(f"{n} with the {name} points" for name, n in self.kept_by_points.items())
        lines.append(f"  the same rules would keep {others}")
        if self.crop:
            c = self.crop
            lines.append(f"  crop {c['side']}x{c['side']} at ({c['x']}, {c['y']}) → {self.size}x{self.size}; "
                         f"{self.clips} clips (longest {max(self.clip_lengths, default=0)} frames); "
                         f"reference frame {self.reference_frame}")
        lines.append(f"  wrote {len(self.shards)} shards, reference.png and report.json to {self.out_dir}")
        return "\n".join(lines)


def check_frame(keypoints: np.ndarray, rules: FilterRules, upper_body: np.ndarray) -> tuple[bool, str, float, float,
                                                                                             float]:
    """Apply the filter to one frame ``[134, 3]``: (kept, reason, face conf, upper-body conf, visible fraction)."""
    conf = np.asarray(keypoints)[:, 2]
    face = float(conf[kp.FACE].mean())
    ub = conf[upper_body]
    visible_mask = ub > VISIBLE_CONFIDENCE
    visible = float(visible_mask.mean())
    body = float(ub[visible_mask].mean()) if visible_mask.any() else 0.0
    if not conf.any():
        return False, "no person found", face, body, visible
    if face == 0.0:
        return False, "no face found", face, body, visible
    if face <= rules.face:
        return False, f"face confidence <= {rules.face:g}", face, body, visible
    if visible < rules.visible:
        return False, f"upper body < {rules.visible:.0%} visible", face, body, visible
    if body <= rules.upper_body:
        return False, f"upper-body confidence <= {rules.upper_body:g}", face, body, visible
    return True, "kept", face, body, visible


def open_video(path: str | Path) -> tuple[int, float, tuple[int, int]]:
    """Check that ``path`` is a readable video: (frame count estimate, fps, (width, height)).

    Raises:
        InputFileError: missing, a folder, empty, not a video, or no frame decodes.
    """
    import av

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file", "Check the path and try again")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a video", "Give the path of a video file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "is empty (0 bytes)", _FIX_VIDEO)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputFileError(path, "has no video stream", _FIX_VIDEO)
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25.0)
            count = int(stream.frames or 0)
            size = (int(stream.codec_context.width), int(stream.codec_context.height))
            first = next(container.decode(video=0), None)
    except InputFileError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputFileError(path, f"is not a video PyAV can read ({exc})", _FIX_VIDEO) from exc
    if first is None:
        raise InputFileError(path, "holds no decodable video frame", _FIX_VIDEO)
    return count, fps, size


def iter_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``(frame number, rgb uint8 [H, W, 3])`` for every ``every``-th frame, at most ``max_frames`` of them."""
    import av

    with av.open(str(path)) as container:
        yielded = 0
        for i, frame in enumerate(container.decode(video=0)):
            if i % every:
                continue
            if max_frames is not None and yielded >= max_frames:
                return
            yielded += 1
            yield i, frame.to_ndarray(format="rgb24")


def _landmarks(result_part: object, with_visibility: bool = False) -> np.ndarray | None:
    if result_part is None:
        return None
    marks = result_part.landmark  # type: ignore[attr-defined]
    if with_visibility:
        return np.array([(m.x, m.y, m.z, m.visibility) for m in marks], dtype=np.float64)
    return np.array([(m.x, m.y, m.z) for m in marks], dtype=np.float64)


@dataclass
class Detections:
    """Pass 1: keypoints of every checked frame (normalised to the video's frame) and small person masks."""

    frames: list[int]
    keypoints: np.ndarray  # [N, 134, 3]
    person: list[np.ndarray]  # uint8 [H/4, W/4] each
    size: tuple[int, int]


def detect(path: Path, every: int = 1, max_frames: int | None = None) -> Detections:
    """Run MediaPipe over the video (tracking between frames).

    Holistic gives the pose, the face mesh and the person mask; MediaPipe Hands finds
    the hands (it also finds hands held in front of the face, which Holistic misses).
    The shared mapping turns them into DWPose-134; the dataset's confidences are then
    refined (:mod:`training.data.landmark_confidence`).
    """
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ log lines are noise here
    import mediapipe as mp

    frames, keypoints, person = [], [], []
    size = (0, 0)
    with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1, refine_face_landmarks=True,
                                        enable_segmentation=True) as holistic, \
            mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1) as hand_finder:
        for index, rgb in iter_frames(path, every, max_frames):
            size = (rgb.shape[1], rgb.shape[0])
            result = holistic.process(rgb)
            found = hand_finder.process(rgb)
            pose = _landmarks(result.pose_landmarks, with_visibility=True)
            hands = [_landmarks(h) for h in (found.multi_hand_landmarks or [])]
            scores = [h.classification[0].score for h in (found.multi_handedness or [])]
            mapped = dwpose_from_mediapipe(*size, face=_landmarks(result.face_landmarks), pose=pose,
                                           hands=hands)  # type: ignore[arg-type]
            refined = refine_confidences(mapped, pose, hand_scores(mapped, hands, scores, *size))  # type: ignore[arg-type]
            keypoints.append(_square_to_image(refined, size))
            small = (max(1, size[0] // _SEGMENTATION_DOWN), max(1, size[1] // _SEGMENTATION_DOWN))
            mask = result.segmentation_mask
            person.append(np.zeros(small[::-1], np.uint8) if mask is None else
                          cv2.resize((mask * 255).astype(np.uint8), small, interpolation=cv2.INTER_AREA))
            frames.append(index)
    stack = np.stack(keypoints) if keypoints else np.zeros((0, kp.NUM_KEYPOINTS, 3), np.float32)
    return Detections(frames=frames, keypoints=stack, person=person, size=size)


def _square_to_image(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Keypoints normalised to the centred square holding the image (the mapping's frame) → normalised to the
    image; points outside the image get confidence 0."""
    w, h = size
    side = float(max(w, h))
    out = keypoints.copy()
    out[:, 0] = (out[:, 0] * side - (side - w) / 2) / w
    out[:, 1] = (out[:, 1] * side - (side - h) / 2) / h
    outside = ((out[:, :2] < 0.0) | (out[:, :2] > 1.0)).any(axis=1)
    out[outside, 2] = 0.0  # the letterbox around the picture is not the picture
    return out


def choose_points(keypoints: np.ndarray, requested: str) -> str:
    """The upper-body point set for the video: the largest set that most frames show, unless one is requested."""
    if requested not in POINT_SETS:
        raise ValueError(f"points must be one of {', '.join(POINT_SETS)}, got {requested!r}")
    if requested != "auto":
        return requested
    if not len(keypoints):
        return "half-body"
    conf = keypoints[..., 2] > VISIBLE_CONFIDENCE
    if conf[:, [kp.R_ELBOW, kp.L_ELBOW]].any(axis=1).mean() > 0.5:
        return "half-body"
    if conf[:, [kp.R_SHOULDER, kp.L_SHOULDER]].all(axis=1).mean() > 0.5:
        return "head-and-shoulders"
    return "head"


def choose_crop(keypoints_px: np.ndarray, framing: str, frame_size: tuple[int, int]) -> dict[str, int]:
    """One square crop ``{x, y, side}`` (pixels) that puts the median face where ``framing`` puts it.

    Args:
        keypoints_px: ``[N, 134, 3]`` of the kept frames, x and y in video pixels.
    """
    target = Framing.named(framing)
    jaw_l, jaw_r = keypoints_px[:, kp.face_index(0), :2], keypoints_px[:, kp.face_index(16), :2]
    face_width = float(np.median(np.linalg.norm(jaw_r - jaw_l, axis=1)))
    nose = np.median(keypoints_px[:, kp.face_index(30), :2], axis=0)
    w, h = frame_size
    side = int(round(min(face_width / target.face_width, w, h)))
    x = int(round(nose[0] - target.face_center[0] * side))
    y = int(round(nose[1] - target.face_center[1] * side))
    return {"x": min(max(x, 0), w - side), "y": min(max(y, 0), h - side), "side": side}


def to_crop(keypoints: np.ndarray, frame_size: tuple[int, int], crop: dict[str, int]) -> np.ndarray:
    """Keypoints normalised to the video frame → normalised to the square crop (points outside get confidence 0)."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    w, h = frame_size
    out[..., 0] = (out[..., 0] * w - crop["x"]) / crop["side"]
    out[..., 1] = (out[..., 1] * h - crop["y"]) / crop["side"]
    inside = ((out[..., :2] >= VISIBLE_RANGE[0]) & (out[..., :2] <= VISIBLE_RANGE[1])).all(axis=-1)
    out[..., 2] = np.where(inside, out[..., 2], 0.0)
    return out


def neutrality(keypoints: np.ndarray) -> np.ndarray:
    """How far each frame ``[N, 134, 3]`` is from a neutral pose (lower is more neutral).

    Counts an open mouth, shut eyes, a turned head and a hand in the picture.
    """
    f = keypoints[:, kp.FACE, :2]
    width = np.maximum(np.linalg.norm(f[:, 16] - f[:, 0], axis=1), 1e-6)
    mouth = np.linalg.norm(f[:, 66] - f[:, 62], axis=1) / width
    eyes = (np.linalg.norm(f[:, 37] - f[:, 41], axis=1) + np.linalg.norm(f[:, 44] - f[:, 46], axis=1)) / width
    turn = np.abs((f[:, 30, 0] - (f[:, 0, 0] + f[:, 16, 0]) / 2) / width)
    hands_seen = (keypoints[:, kp.LEFT_HAND.start :, 2] > 0.3).any(axis=1)
    return 4.0 * mouth + 10.0 * np.maximum(0.0, 0.06 - eyes) + turn + 1.0 * hands_seen


def _crop_frame(rgb: np.ndarray, crop: dict[str, int], size: int) -> np.ndarray:
    x, y, s = crop["x"], crop["y"], crop["side"]
    patch = rgb[y : y + s, x : x + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return cv2.resize(patch, (size, size), interpolation=interp)


def _crop_person(person: np.ndarray, crop: dict[str, int], size: int) -> np.ndarray:
    d = _SEGMENTATION_DOWN
    x, y, s = crop["x"] / d, crop["y"] / d, crop["side"] / d
    m = cv2.getAffineTransform(np.float32([[x, y], [x + s, y], [x, y + s]]), np.float32([[0, 0], [size, 0], [0, size]]))
    return cv2.warpAffine(person, m, (size, size), flags=cv2.INTER_LINEAR) > 127


def build_personal_dataset(video: str | Path, out_dir: str | Path, *, size: int = 256,
                           rules: FilterRules = FilterRules(), every: int = 1, max_frames: int | None = None,
                           frames_per_shard: int = 256) -> Report:
    """Turn ``video`` into shards under ``out_dir`` and return the report (also written as ``report.json``).

    Raises:
        InputFileError: the video is unusable, or no frame passed the filter (the report is written first).
        ValueError: bad ``size``, ``every`` or ``points``.
    """
    video, out_dir = Path(video), Path(out_dir)
    if size < 64 or every < 1:
        raise ValueError("size must be at least 64 pixels and every at least 1")
    if rules.points not in POINT_SETS:
        raise ValueError(f"points must be one of {', '.join(POINT_SETS)}, got {rules.points!r}")
    t0 = time.perf_counter()
    count, fps, frame_size = open_video(video)
    det = detect(video, every, max_frames)
    t_detect = time.perf_counter() - t0
    points = choose_points(det.keypoints, rules.points)
    framing = "half-body" if points == "half-body" else "head-and-shoulders"
    upper = UPPER_BODY_POINTS[points]
    checks = [FrameCheck(f, *check_frame(k, rules, upper)) for f, k in zip(det.frames, det.keypoints, strict=True)]
    kept = np.array([c.kept for c in checks], dtype=bool)
    kept_by_points = {name: sum(check_frame(k, rules, pts)[0] for k in det.keypoints)
                      for name, pts in UPPER_BODY_POINTS.items()}
    rejected = dict(Counter(c.reason for c in checks if not c.kept))
    in_video = max(count, det.frames[-1] + 1 if det.frames else 0)
    report = Report(
        video=str(video), out_dir=str(out_dir), frames_in_video=in_video, frames_checked=len(checks),
        frames_kept=int(kept.sum()), rejected=rejected, upper_body_points=points, framing=framing,
        rules=asdict(rules), kept_by_points=kept_by_points, crop=None, size=size, clips=0, clip_lengths=[],
        reference_frame=None, shards=[], seconds={"detect": round(t_detect, 2)}, frames=[asdict(c) for c in checks],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if not kept.any():
        _write_report(out_dir, report)
        if not det.frames:
            raise InputFileError(video, "holds no decodable video frame", _FIX_VIDEO)
        if rejected.get("no face found", 0) + rejected.get("no person found", 0) == len(checks):
            raise InputFileError(video, f"no face was found in any of the {len(checks)} frames checked",
                                 "Use a video in which your face is clearly visible, facing the camera")
        reasons = ", ".join(f"{n} {r}" for r, n in rejected.items())
        raise InputFileError(video, f"no frame passed the quality filter ({reasons})",
                             "Use a well-lit video with your face and shoulders in the picture, facing the camera")

    w, h = frame_size
    kept_px = det.keypoints[kept].copy()
    kept_px[..., 0] *= w
    kept_px[..., 1] *= h
    crop = choose_crop(kept_px, framing, frame_size)
    report.crop = crop
    kept_frames = [f for f, k in zip(det.frames, kept, strict=True) if k]
    crop_kps = to_crop(det.keypoints[kept], frame_size, crop)
    reference_row = int(np.argmin(neutrality(crop_kps)))
    report.reference_frame = kept_frames[reference_row]

    # pass 2: decode again (the reference first), crop the kept frames, add masks, write shards
    t1 = time.perf_counter()
    row_of = {f: i for i, f in enumerate(kept_frames)}
    person_of = {f: p for f, p, k in zip(det.frames, det.person, kept, strict=True) if k}
    meta = {"source": "personal-video", "video": video.name, "split": "personal", "size": size, "fps": fps / every,
            "framing": framing, "upper_body_points": points, "crop": crop}
    writer = ShardWriter(out_dir, meta, frames_per_shard)
    reference_image = next((_crop_frame(rgb, crop, size) for index, rgb in iter_frames(video, every, max_frames)
                            if index == report.reference_frame), None)
    if reference_image is None:  # pragma: no cover - the reference frame was decoded in pass 1
        raise InputFileError(video, "the reference frame could not be decoded again", _FIX_VIDEO)
    cv2.imwrite(str(out_dir / "reference.png"), cv2.cvtColor(reference_image, cv2.COLOR_RGB2BGR))
    clip_id, previous, clip_lengths = -1, None, []
    ref_index = None
    for index, rgb in iter_frames(video, every, max_frames):
        if index not in row_of:
            continue
        new_clip = previous is None or index != previous + every
        if writer.full:
            writer.flush()
            ref_index = None
        if new_clip:
            clip_id += 1
            clip_lengths.append(0)
        if ref_index is None:
            ref_index = writer.add_reference(reference_image, crop_kps[reference_row], -1)
        row = row_of[index]
        frame = _crop_frame(rgb, crop, size)
        person = _crop_person(person_of[index], crop, size)
        masks = region_masks_from_keypoints(crop_kps[row], size, person)
        writer.add_clip(frame[None], crop_kps[row][None], masks[None], ref_index, clip_id, [index])
        clip_lengths[-1] += 1
        previous = index
    writer.flush()
    report.clips = len(clip_lengths)
    report.clip_lengths = clip_lengths
    report.shards = [p.name for p in writer.paths]
    report.seconds["write"] = round(time.perf_counter() - t1, 2)
    _write_report(out_dir, report)
    return report


def _write_report(out_dir: Path, report: Report) -> None:
    (out_dir / "report.json").write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.personal_video", description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", type=int, default=256, help="output frame side in pixels")
    parser.add_argument("--points", default="auto", choices=POINT_SETS,
                        help="upper-body points the filter applies to (default: what the video shows)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th frame")
    parser.add_argument("--max-frames", type=int, help="stop after this many checked frames")
    parser.add_argument("--sheet", type=Path, help="also save a contact sheet (PNG) of kept and dropped frames")
    args = parser.parse_args(argv)
    try:
        report = build_personal_dataset(args.video, args.out_dir, size=args.size, every=args.every,
                                        max_frames=args.max_frames, rules=FilterRules(points=args.points))
        print(report.summary())
        if args.sheet:
            from training.data.sheets import personal_video_sheet

            personal_video_sheet(args.video, args.out_dir, args.sheet)
            print(f"  contact sheet: {args.sheet}")
    except (PodiumError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
