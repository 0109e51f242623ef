"""The student's (and teacher's) configuration, its presets, and its mapping to a pack manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from inference.packs import AUTOENCODER_FACTOR, StudentModel
from inference.render.pose_map import PoseMapStyle
from inference.render.student.masks import TokenGrid
from inference.render.student.sampling import validate_timesteps

#: The configuration fields that make up its :class:`~inference.render.pose_map.PoseMapStyle` (same names).
POSE_STYLE_FIELDS = tuple(f.name for f in fields(PoseMapStyle))


@dataclass(frozen=True)
class StudentConfig:
    """Everything that shapes the networks and the streaming.

    Attributes:
        size: frame side in pixels (square frames; a multiple of 16).
        latent_channels: autoencoder latent channels (the latent is ``size / 8`` a side).
        autoencoder_channels: autoencoder widths at 1, 1/2, 1/4 and 1/8 of the frame size.
        pose_channels: pose-encoder widths at 1/2, 1/4 and 1/8 of the frame size.
        patch: latent cells per token side (one token = 16×16 pixels with 2).
        width, depth, heads, mlp_ratio: the transformer.
        pooled_reference: add a pooled reference embedding to the timestep modulation.
        aligned_reference: add the reference portrait's own patch embedding to every frame's tokens at the same
            place (a spatially aligned copy of the portrait, as an image-to-video model concatenates its image
            latent): what stays still, the background, is then copied rather than looked up by attention.
        warped_reference: add, to each frame's tokens, the patch embedding of the reference portrait warped to
            that frame's keypoints (:func:`training.data.reference_warp.warp_reference`; its latent): the
            appearance already in place, so attention corrects it instead of moving it. Session 10 measured the
            warp alone as close to the truth on the face as the teacher then was. The teacher only, so far: the
            student, its export and the runtime do not take it (``distill`` and ``finetune_sparse`` refuse it).
        frame_positions: add an embedding of each frame's place in its chunk (the teacher's clip) to its tokens.
            Without it every frame's tokens at one place share one position, and attention cannot tell a frame's
            own tokens from another's: session 8 measured the teacher giving a query's own frame at most 1.23 times
            the attention of any other of its clip's 16 frames; in session 9's A/B on the GPU (6.6 min each) the
            teacher with it scored 0.7 dB higher with 23 % less flicker (training/runs.md).
        limbs_leaving_frame: the pose maps (:func:`inference.render.pose_map.draw_pose_map`) also draw limbs from a
            confident point to one outside the frame. Without it the arms and torso of a head-and-shoulders framing,
            whose elbows and hips lie below the picture, do not show in the pose at all: session 9 measured the
            session-8 teacher's squared error per arm pixel 14 times, per torso pixel 16 times higher in frames whose
            elbows were outside than in those whose elbows were inside (training/runs.md). Not an architecture field:
            a network trained on one kind of map loads with the other, but has to learn it.
        face_contours: the pose maps draw the lips and eyes as contours around their filled openings instead of
            dots (:class:`inference.render.pose_map.PoseMapStyle`): at 256 pixels the lip dots run into one blob
            in which an open "o" and a shut mouth look alike. Not an architecture field either. Off in the
            presets: session 10 continued a teacher 3 minutes on each map side by side, and the contours scored
            no better (27.54 against 27.63 dB, mouth error 12.3 against 11.7) and drew the same mouths.
        chunk_frames: frames generated together (the student's chunk; the teacher's clip).
        cache_frames: past frames kept (M); top_k: past frames attended (K); keep_recent: of those,
            always the newest.
        timesteps: the student's sampling times (0 = noise); sampler: "renoise" or "euler".
    """

    size: int = 256
    latent_channels: int = 4
    autoencoder_channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    pose_channels: tuple[int, int, int] = (16, 32, 64)
    patch: int = 2
    width: int = 512
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    pooled_reference: bool = True
    aligned_reference: bool = False
    warped_reference: bool = False
    frame_positions: bool = False
    limbs_leaving_frame: bool = False
    face_contours: bool = False
    block_size: int = 64
    chunk_frames: int = 2
    cache_frames: int = 16
    top_k: int = 4
    keep_recent: int = 1
    timesteps: tuple[float, ...] = (0.0, 0.5)
    sampler: str = "renoise"

    def __post_init__(self) -> None:
        if self.size % (AUTOENCODER_FACTOR * self.patch):
            raise ValueError(f"size {self.size} must be a multiple of {AUTOENCODER_FACTOR * self.patch}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if not self.keep_recent <= self.top_k <= self.cache_frames:
            raise ValueError("need keep_recent <= top_k <= cache_frames")
        validate_timesteps(self.timesteps)
        self.grid  # noqa: B018 - validates the block size against the token count

    @property
    def pose_style(self) -> PoseMapStyle:
        """How this network's pose maps are drawn."""
        return PoseMapStyle(**{name: getattr(self, name) for name in POSE_STYLE_FIELDS})

    @property
    def latent_size(self) -> int:
        return self.size // AUTOENCODER_FACTOR

    @property
    def grid(self) -> TokenGrid:
        side = self.latent_size // self.patch
        return TokenGrid(side, side, self.block_size)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid.tokens

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    def model(self) -> StudentModel:
        """The architecture numbers a pack manifest carries."""
        return StudentModel(latent_channels=self.latent_channels, patch=self.patch, width=self.width,
                            depth=self.depth, heads=self.heads, pooled_reference=self.pooled_reference,
                            aligned_reference=self.aligned_reference, **asdict(self.pose_style))

    def with_(self, **changes: object) -> StudentConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-able values (tuples become lists), for checkpoint manifests."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudentConfig:
        """The configuration :meth:`to_dict` wrote (unknown keys are an error: a newer checkpoint format).

        Raises:
            ValueError: unknown or invalid fields.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration fields {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


#: Named configurations. ``tiny`` runs on a CPU in tests (with every pose-map addition, so tests draw them);
#: ``bundled`` is the 256×256 pack's size; ``paper`` is the 512×512, SVD-class backbone of the benchmark (see
#: bench/student.py for its FLOPs);
#: ``teacher`` is the many-step teacher at 256×256 over 16-frame clips (the bundled autoencoder; 16.4 M
#: parameters, 31 MiB in bf16: three parts that come back from the GPU machine, and that fit, with the
#: autoencoder, the motion banks and the source tree, in the 64 MiB carried into the next call).
PRESETS: dict[str, StudentConfig] = {
    "tiny": StudentConfig(size=256, autoencoder_channels=(8, 8, 16, 16), pose_channels=(8, 8, 16), width=128, depth=2,
                          heads=2, cache_frames=4, top_k=2, chunk_frames=2, limbs_leaving_frame=True,
                          face_contours=True),
    "bundled": StudentConfig(size=256, width=768, depth=12, heads=12, cache_frames=16, top_k=4, frame_positions=True,
                             limbs_leaving_frame=True),
    "paper": StudentConfig(size=512, width=1024, depth=16, heads=16, cache_frames=16, top_k=4),
    "teacher": StudentConfig(size=256, width=448, depth=6, heads=7, chunk_frames=16, cache_frames=16, top_k=4,
                             frame_positions=True, limbs_leaving_frame=True),
}


def preset(name: str) -> StudentConfig:
    """The preset called ``name``."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown student preset {name!r}; choose one of {', '.join(PRESETS)}") from None
