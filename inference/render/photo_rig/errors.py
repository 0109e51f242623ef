"""The error the photo rig raises when a portrait cannot be animated."""

from __future__ import annotations

from inference.errors import PodiumError


class PortraitFitError(PodiumError):
    """A portrait has no usable face (none found, too small, turned away, sideways).

    The message says what was found and what photo to use instead.
    """
