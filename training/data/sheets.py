"""Contact sheets for looking at the data: synthetic presenters and a personal-video dataset.

    python -m training.data.sheets synthetic docs/images/synthetic_presenters.png [--rows 6] [--size 256]
    python -m training.data.sheets details docs/images/synthetic_details.png
    python -m training.data.sheets personal VIDEO DATASET_DIR docs/images/personal_video_sheet.png

Synthetic rows: one identity each: the reference portrait, one frame from each of
four clips (the widest-open mouth, a raised hand, ...), the last frame's pose map
and its region masks.
The details sheet shows open mouths and open hands at 512 px. The personal sheet shows kept
frames with their keypoints and region masks, the reference, and dropped frames
with the reason.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from inference import keypoints as kp
from inference.render.pose_map import FULL, draw_pose_map
from training.data.clips import ClipConfig, ClipSampler
from training.data.motion_bank import MotionBank
from training.data.personal_video import iter_frames
from training.data.shards import list_shards, read_shard
from training.synthetic.regions import overlay_regions

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def save_png(path: str | Path, rgb: np.ndarray, max_bytes: int = 400_000) -> Path:
    """Save ``rgb`` as PNG; if it would exceed ``max_bytes``, save it with a 256-colour palette instead."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(rgb)
    image.save(path, optimize=True)
    if path.stat().st_size > max_bytes:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    scale = tile.shape[0] / 512.0
    cv2.putText(tile, text, (4, tile.shape[0] - 6), _FONT, 0.9 * scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (4, tile.shape[0] - 6), _FONT, 0.9 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _pick_frame(keypoints: np.ndarray, kind: int) -> int:
    """A telling frame of a clip: kind 0 the widest-open mouth, 1 the highest hand, else the middle."""
    if kind == 0:
        face = keypoints[:, kp.FACE, :2]
        return int(np.argmax(np.linalg.norm(face[:, 66] - face[:, 62], axis=1)))
    if kind == 1:
        return int(np.argmin(keypoints[:, [kp.R_WRIST, kp.L_WRIST], 1].min(axis=1)))
    return len(keypoints) // 2


def synthetic_sheet(bank: MotionBank, rows: int = 6, size: int = 256, poses: int = 4,
                    split: str = "heldout") -> np.ndarray:
    """The synthetic-presenter contact sheet (uint8 RGB).

    Each row is one identity: its reference, one frame from each of ``poses`` clips (the widest-open mouth, the
    highest hand, ...), the last frame's pose map and its region masks.
    """
    sampler = ClipSampler(bank, split, ClipConfig(length=24, clips_per_identity=poses, perturb=1.0, seed=11))
    out = []
    for row in range(rows):
        tiles = []
        for p in range(poses):
            sample = sampler.render(row * poses + p, size)
            if p == 0:
                tiles.append(_caption(sample.reference, "reference"))
            t = _pick_frame(sample.keypoints, p % 3)
            tiles.append(sample.frames[t])
        tiles.append(_caption(draw_pose_map(sample.keypoints[t], (size, size), style=FULL), "pose map"))
        tiles.append(_caption(overlay_regions(sample.frames[t], sample.masks[t]), "regions"))
        out.append(np.concatenate(tiles, axis=1))
    return np.concatenate(out, axis=0)


def details_sheet(bank: MotionBank, size: int = 512, rows: int = 6, clips: int = 30) -> np.ndarray:
    """Close-ups at ``size`` px (uint8 RGB): per row, one of the widest-open mouths and two of the most open hands
    found in ``clips`` held-out clips."""
    sampler = ClipSampler(bank, "heldout", ClipConfig(length=48, perturb=1.0, seed=5))
    crop = size // 4
    mouths: list[tuple[float, np.ndarray]] = []
    hands: list[tuple[float, np.ndarray]] = []
    for index in range(clips):
        sample = sampler.render(index, size)
        face = sample.keypoints[:, kp.FACE, :2]
        opening = np.linalg.norm(face[:, 66] - face[:, 62], axis=1)
        t = int(np.argmax(opening))
        mouths.append((float(opening[t]), _crop_around(sample.frames[t], face[t, 48:68] * size, crop // 2)))
        for block in (kp.RIGHT_HAND, kp.LEFT_HAND):
            hand = sample.keypoints[:, block]
            extent = np.ptp(hand[..., :2], axis=1).max(axis=1) * size
            usable = (hand[..., 2] > 0).all(axis=1) & (extent > 0.1 * size)
            if usable.any():
                score = np.where(usable, _hand_openness(hand[..., :2]), -1.0)
                t = int(np.argmax(score))
                half = int(np.clip(0.75 * extent[t], 40, crop))
                hands.append((float(score[t]), _crop_around(sample.frames[t], hand[t, :, :2] * size, half)))
    mouths.sort(key=lambda m: -m[0])
    hands.sort(key=lambda h: -h[0])
    n = min(rows, len(mouths), len(hands) // 2)
    if n == 0:
        raise ValueError("no clip showed a whole hand; use a bank with half-body streams")

    def tile(c: np.ndarray) -> np.ndarray:
        return cv2.resize(c, (2 * crop, 2 * crop), interpolation=cv2.INTER_CUBIC if len(c) < 2 * crop else cv2.INTER_AREA)

    return np.concatenate([np.concatenate([tile(mouths[r][1]), tile(hands[2 * r][1]), tile(hands[2 * r + 1][1])],
                                          axis=1) for r in range(n)], axis=0)


def _hand_openness(hands: np.ndarray) -> np.ndarray:
    """How open and fanned hands ``[T, 21, 2]`` are: mean finger straightness plus half the index-little fan (rad)."""
    chains = np.array([(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)])
    pts = hands[:, chains]  # [T, 5, 4, 2]
    bones = np.linalg.norm(np.diff(pts, axis=2), axis=-1).sum(axis=2)
    straight = np.linalg.norm(pts[:, :, 3] - pts[:, :, 0], axis=-1) / np.maximum(bones, 1e-6)
    index, little = pts[:, 1, 3] - pts[:, 1, 0], pts[:, 4, 3] - pts[:, 4, 0]
    cos = (index * little).sum(-1) / np.maximum(np.linalg.norm(index, axis=-1) * np.linalg.norm(little, axis=-1), 1e-9)
    return straight.mean(axis=1) + 0.5 * np.arccos(np.clip(cos, -1.0, 1.0))


def _crop_around(frame: np.ndarray, points: np.ndarray, half: int) -> np.ndarray:
    """A ``2·half`` square of ``frame`` centred on the middle of ``points`` (pixels), kept inside the frame."""
    size = frame.shape[0]
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    x0 = int(np.clip(centre[0] - half, 0, size - 2 * half))
    y0 = int(np.clip(centre[1] - half, 0, size - 2 * half))
    return frame[y0 : y0 + 2 * half, x0 : x0 + 2 * half]


def _letterbox(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    tile = np.zeros((size, size, 3), np.uint8)
    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    return tile


def personal_video_sheet(video: str | Path, dataset: str | Path, out: str | Path, tile: int = 160) -> Path:
    """A sheet of a personal-video dataset: kept frames (frame, keypoints, regions), the reference, dropped frames."""
    dataset = Path(dataset)
    report = json.loads((dataset / "report.json").read_text(encoding="utf-8"))
    shard = read_shard(list_shards(dataset)[0])
    rows = []
    picks = np.linspace(0, len(shard) - 1, 3).round().astype(int)
    for i in picks:
        frame, keypoints, masks = shard.frames[i], shard.keypoints[i], shard.masks[i]
        pose = np.maximum((frame * 0.45).astype(np.uint8),
                          draw_pose_map(keypoints, frame.shape[1::-1], style=FULL))
        tiles = [_caption(frame, f"frame {shard.frame_index[i]}"), _caption(pose, "DWPose-134"),
                 _caption(overlay_regions(frame, masks), "regions")]
        rows.append([cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) for t in tiles])
    # the last column: the reference, then up to two dropped frames with the reason
    dropped = [f for f in report["frames"] if not f["kept"]]
    wanted = {f["frame"]: f["reason"] for f in dropped[:: max(1, len(dropped) // 2)][:2]}
    column = [_caption(cv2.resize(shard.references[0], (tile, tile), interpolation=cv2.INTER_AREA), "reference")]
    if wanted:
        for index, rgb in iter_frames(video):
            if index in wanted:
                column.append(_caption(_letterbox(rgb, tile), f"{index}: {wanted[index]}"[:34]))
            if len(column) == 1 + len(wanted):
                break
    column += [np.zeros((tile, tile, 3), np.uint8)] * (len(rows) - len(column))
    sheet = np.concatenate([np.concatenate(r + [c], axis=1) for r, c in zip(rows, column, strict=True)], axis=0)
    return save_png(out, sheet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.sheets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    syn = sub.add_parser("synthetic", help="synthetic presenters: identities × poses with masks")
    syn.add_argument("out", type=Path)
    syn.add_argument("--rows", type=int, default=6)
    syn.add_argument("--size", type=int, default=256)
    syn.add_argument("--bank", type=Path, help="held-out motion bank (.npz); built if not given")
    det = sub.add_parser("details", help="mouths and hands at 512 px")
    det.add_argument("out", type=Path)
    det.add_argument("--bank", type=Path, help="held-out motion bank (.npz); built if not given")
    per = sub.add_parser("personal", help="a personal-video dataset")
    per.add_argument("video", type=Path)
    per.add_argument("dataset", type=Path)
    per.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.kind == "personal":
        print(personal_video_sheet(args.video, args.dataset, args.out))
        return 0
    bank = MotionBank.load(args.bank) if args.bank else MotionBank.build("heldout")
    sheet = synthetic_sheet(bank, args.rows, args.size) if args.kind == "synthetic" else details_sheet(bank)
    print(save_png(args.out, sheet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
