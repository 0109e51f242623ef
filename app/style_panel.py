"""The style and pose panel: presets, four motion knobs, framing and seed, bound to a :class:`MotionStyle`.

The binding goes both ways. Editing a control emits :attr:`QtStylePanel.style_changed`
with the new style; :meth:`QtStylePanel.set_style` shows a style that changed
elsewhere (a preset hotkey, loaded settings) without echoing it back.
"""

from __future__ import annotations

import random
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from inference.motion.style import FRAMINGS, HANDEDNESS, PRESETS, MotionStyle, apply_preset

#: (field, label, tooltip) of the 0..1 knobs, in display order.
KNOBS: tuple[tuple[str, str, str], ...] = (
    ("gesture_amount", "Gestures", "How much and how often the hands move while speaking"),
    ("head_motion", "Head motion", "Nods and turns of the head"),
    ("expressiveness", "Expressiveness", "Brows, smiles and how wide the mouth shapes are"),
    ("idle_energy", "Idle energy", "How lively the avatar is while silent: sway, glances, shifts"),
)
CUSTOM = "Custom"
FRAMING_LABELS = {"head-and-shoulders": "Head and shoulders", "half-body": "Half body"}
HAND_LABELS = {"right": "Right hand", "left": "Left hand", "both": "Both hands"}


def preset_of(style: MotionStyle) -> str | None:
    """The preset ``style`` matches exactly (ignoring framing and seed), or None."""
    for name in PRESETS:
        if apply_preset(style, name) == style:
            return name
    return None


class QtStylePanel(QGroupBox):
    """Controls for how the avatar moves."""

    style_changed = Signal(object)  # MotionStyle

    def __init__(self, style: MotionStyle) -> None:
        super().__init__("Style and pose")
        self._style = style
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.preset = QComboBox()
        self.preset.addItems([CUSTOM, *(name.capitalize() for name in PRESETS)])
        self.preset.setToolTip("A starting point for the knobs below (F8 switches to the next one)")
        self.preset.activated.connect(self._preset_chosen)
        form.addRow("Preset", self.preset)

        self.sliders: dict[str, QSlider] = {}
        self._values: dict[str, QLabel] = {}
        for name, label, tip in KNOBS:
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setToolTip(tip)
            slider.valueChanged.connect(lambda _v, n=name: self._knob_moved(n))
            value = QLabel()
            value.setMinimumWidth(30)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(value)
            holder = QWidget()
            holder.setLayout(row)
            row.setContentsMargins(0, 0, 0, 0)
            form.addRow(label, holder)
            self.sliders[name], self._values[name] = slider, value

        self.framing = QComboBox()
        for framing in FRAMINGS:
            self.framing.addItem(FRAMING_LABELS.get(framing, framing), framing)
        self.framing.setToolTip("How much of the body the camera shows")
        self.framing.currentIndexChanged.connect(self._framing_chosen)
        form.addRow("Framing", self.framing)

        self.handedness = QComboBox()
        for hand in HANDEDNESS:
            self.handedness.addItem(HAND_LABELS.get(hand, hand), hand)
        self.handedness.setToolTip("Which hand leads the gestures")
        self.handedness.currentIndexChanged.connect(
            lambda _i: self._change(replace(self._style, handedness=self.handedness.currentData())))
        form.addRow("Gestures with", self.handedness)

        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed gives the same motion for the same speech")
        self.seed.valueChanged.connect(self._seed_changed)
        dice = QPushButton("New")
        dice.setToolTip("Pick a new random seed")
        dice.clicked.connect(lambda: self.seed.setValue(random.randrange(0, 10_000)))
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        seed_holder = QWidget()
        seed_holder.setLayout(seed_row)
        form.addRow("Seed", seed_holder)
        self.set_style(style)

    @property
    def style(self) -> MotionStyle:
        return self._style

    def set_style(self, style: MotionStyle) -> None:
        """Show ``style`` (changed elsewhere); emits nothing."""
        self._style = style
        widgets = [self.preset, self.framing, self.handedness, self.seed, *self.sliders.values()]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            for name, slider in self.sliders.items():
                slider.setValue(int(round(getattr(style, name) * 100)))
                self._values[name].setText(f"{slider.value()}")
            self.framing.setCurrentIndex(max(0, self.framing.findData(style.framing)))
            self.handedness.setCurrentIndex(max(0, self.handedness.findData(style.handedness)))
            self.seed.setValue(style.seed)
            self._show_preset()
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def _show_preset(self) -> None:
        name = preset_of(self._style)
        self.preset.setCurrentIndex(0 if name is None else list(PRESETS).index(name) + 1)

    def _change(self, style: MotionStyle) -> None:
        if style == self._style:
            return
        self._style = style
        self.preset.blockSignals(True)
        self._show_preset()
        self.preset.blockSignals(False)
        self.style_changed.emit(style)

    def _preset_chosen(self, index: int) -> None:
        if index == 0:
            return
        style = apply_preset(self._style, list(PRESETS)[index - 1])
        self.set_style(style)
        self.style_changed.emit(style)

    def _knob_moved(self, name: str) -> None:
        value = self.sliders[name].value()
        self._values[name].setText(f"{value}")
        self._change(replace(self._style, **{name: value / 100.0}))

    def _framing_chosen(self, _index: int) -> None:
        self._change(replace(self._style, framing=self.framing.currentData()))

    def _seed_changed(self, value: int) -> None:
        self._change(replace(self._style, seed=int(value)))
