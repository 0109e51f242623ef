"""The photo rig: animates any real portrait from the keypoint stream, in real time on the CPU.

Once per portrait, mediapipe finds the face mesh, the shoulders and the person (cached by the image's
hash in ``<data dir>/fits``); the portrait is framed to the output and a deformation model is built:
per-control displacement fields over the face, neck, shoulders and a background margin. Every frame,
the keypoints are read as controls (jaw, lip shape, blinks, brows, head turn/nod/tilt, shoulders), the
fields are summed and inverted into a backward map, and one remap moves the portrait over a still
background plate; a mouth interior is drawn where the lips part. Where ONNX Runtime's CUDA execution
provider starts and is faster, the whole-frame part of the warp runs there as one graph.

Modules: ``detect`` (mediapipe), ``cache`` (fits on disk), ``framing``, ``mesh`` (triangulation and grid
interpolation), ``deformation`` (the fields), ``controls`` (keypoints → controls), ``warp`` (per-frame
map, remap, composite), ``warp_graph`` (the same on a GPU), ``background`` (the still plate), ``mouth`` (the
interior), ``renderer``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inference.render.photo_rig.errors import PortraitFitError
from inference.render.photo_rig.renderer import PhotoRigRenderer

__all__ = ["PhotoRigRenderer", "PortraitFitError", "availability", "create"]


#: The mediapipe 0.10.21 models the photo rig runs (paths inside the mediapipe package).
REQUIRED_MODELS = (
    "modules/face_detection/face_detection_full_range_sparse.tflite",
    "modules/face_detection/face_detection_short_range.tflite",
    "modules/face_landmark/face_landmark_with_attention.tflite",
    "modules/pose_landmark/pose_landmark_full.tflite",
    "modules/selfie_segmentation/selfie_segmentation.tflite",
)


def availability() -> tuple[bool, str]:
    """The photo rig needs mediapipe 0.10.21 with its bundled face, pose and segmentation models."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return False, "mediapipe is not installed; run installer/setup.sh (it installs mediapipe 0.10.21)"
    root = Path(next(iter(spec.submodule_search_locations)))
    missing = [m for m in REQUIRED_MODELS if not (root / m).exists()]
    if missing:
        return False, (f"mediapipe lacks the models {', '.join(Path(m).name for m in missing)} (only mediapipe "
                       "0.10.21 bundles them); run installer/setup.sh")
    return True, "available (CPU)"


def create(size: tuple[int, int], *, framing: str = "auto", use_cache: bool = True, warp: str = "auto",
           **_: object) -> PhotoRigRenderer:
    """A photo-rig renderer for output ``size`` = (width, height); ``framing`` is auto, head-and-shoulders or
    half-body; ``warp`` auto, cpu or cuda (where the per-frame warp runs)."""
    return PhotoRigRenderer(size, framing=framing, use_cache=use_cache, warp=warp)
