"""The avatar picker: bundled portraits, the user's own photos (added or dropped), renderer and model pack.

Photos the user adds are copied into ``<data folder>/portraits`` so they are
still listed next time. Whether a photo can be used is decided by the engine
(on its loader thread); the window calls :meth:`QtAvatarPanel.reject` when it
cannot, which removes a just-added copy and reselects the portrait in use.

The first portrait, "default", stands for none chosen: the renderer's own
presenter if it has one (a student model pack's), else the bundled default
portrait; the window shows which through :meth:`QtAvatarPanel.show_default`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from inference import paths
from inference.packs import find_packs
from inference.render import factory as render_factory

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
THUMB = 84
DEFAULT_TOOLTIP = ("No portrait chosen: the renderer's own presenter if it has one (an IASA student model pack's), "
                   "else the bundled default portrait")


def user_portraits_dir() -> Path:
    """Where photos the user adds are kept."""
    return paths.data_dir() / "portraits"


def dropped_image(event: QDragEnterEvent | QDropEvent) -> Path | None:
    """The first local image file of a drag, or None."""
    for url in event.mimeData().urls():
        path = Path(url.toLocalFile())
        if url.isLocalFile() and path.suffix.lower() in IMAGE_SUFFIXES:
            return path
    return None


def _thumbnail(path: Path) -> QIcon:
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid():
        reader.setScaledSize(size.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatioByExpanding))
    image = reader.read()
    if image.isNull():
        return QIcon()
    return QIcon(QPixmap.fromImage(image))


def _rgb_thumbnail(rgb: np.ndarray) -> QIcon:
    pixels = np.ascontiguousarray(rgb)  # kept alive until scaled() has copied it
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QIcon(QPixmap.fromImage(image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                                Qt.TransformationMode.SmoothTransformation)))


class QtAvatarPanel(QGroupBox):
    """Pick who the avatar is and what draws it. A portrait of None means none chosen (the "default" entry)."""

    portrait_chosen = Signal(object)  # Path, or None for none chosen
    renderer_chosen = Signal(str, object)  # renderer choice, pack path or None

    def __init__(self, portrait: Path | None, renderer: str, pack: str | None) -> None:
        super().__init__("Avatar")
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        self.portraits = QListWidget()
        self.portraits.setViewMode(QListWidget.ViewMode.IconMode)
        self.portraits.setIconSize(QSize(THUMB, THUMB))
        self.portraits.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.portraits.setMovement(QListWidget.Movement.Static)
        self.portraits.setSpacing(4)
        self.portraits.setWordWrap(True)
        self.portraits.setFixedHeight(3 * (THUMB + 40))
        self.portraits.setToolTip("Click a portrait to use it, or drop a photo here")
        self.portraits.itemClicked.connect(self._portrait_clicked)
        layout.addWidget(self.portraits)
        add = QPushButton("Add a photo…")
        add.setToolTip("Use your own photo: one face, looking at the camera, head and shoulders visible")
        add.clicked.connect(self._add_clicked)
        layout.addWidget(add)
        hint = QLabel("or drop a photo on the window")
        hint.setObjectName("hint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint)

        self.renderer = QComboBox()
        self.renderer.addItem("Automatic (best here)", "auto")
        for name, spec in render_factory.RENDERERS.items():
            ok, reason = render_factory.availability(name)
            self.renderer.addItem(name.replace("-", " ").capitalize(), name)
            index = self.renderer.count() - 1
            self.renderer.setItemData(index, spec.description if ok else f"Not available here: {reason}",
                                      Qt.ItemDataRole.ToolTipRole)
            if not ok:
                self.renderer.model().item(index).setEnabled(False)
        self.renderer.activated.connect(self._renderer_activated)
        layout.addWidget(QLabel("Renderer"))
        layout.addWidget(self.renderer)
        self.pack = QComboBox()
        self.pack.addItem("Best available", None)
        for info in find_packs():
            label = info.name if info.status == "ok" else f"{info.name} ({info.status})"
            self.pack.addItem(label, str(info.path))
            if info.status != "ok":
                self.pack.model().item(self.pack.count() - 1).setEnabled(False)
        if self.pack.count() == 1:
            self.pack.setItemText(0, "None found")
            self.pack.setToolTip(f"The photo rig needs none; the IASA student needs one in {paths.user_packs_dir()}")
        self.pack.activated.connect(self._renderer_activated)
        layout.addWidget(QLabel("Model pack"))
        layout.addWidget(self.pack)

        self._current = portrait
        self._default_icon = _thumbnail(paths.default_portrait())
        self.reload()
        self.show_renderer(renderer, pack)

    # -- state --------------------------------------------------------------------------------------

    @property
    def current_portrait(self) -> Path | None:
        return self._current

    def reload(self) -> None:
        """List "default", the other bundled portraits and the user's photos, selecting the one in use."""
        self.portraits.clear()
        default = QListWidgetItem(self._default_icon, "default")
        default.setData(Qt.ItemDataRole.UserRole, "")
        default.setToolTip(DEFAULT_TOOLTIP)
        self.portraits.addItem(default)
        user_dir = user_portraits_dir()
        user = sorted(p for p in user_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if user_dir.is_dir() else []
        listed = [p for p in paths.bundled_portraits() if p != paths.default_portrait()] + user
        if self._current is not None and self._current not in listed and self._current.exists():
            listed.append(self._current)
        for path in listed:
            item = QListWidgetItem(_thumbnail(path), path.stem.replace("_", " "))
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            self.portraits.addItem(item)
        self.select(self._current)

    @staticmethod
    def _portrait_of(item: QListWidgetItem) -> Path | None:
        data = item.data(Qt.ItemDataRole.UserRole)
        return Path(data) if data else None

    def select(self, portrait: Path | None) -> None:
        """Mark ``portrait`` (None: "default") as the one in use (emits nothing)."""
        self._current = portrait
        for i in range(self.portraits.count()):
            item = self.portraits.item(i)
            if self._portrait_of(item) == portrait:
                self.portraits.setCurrentItem(item)
                return

    def show_default(self, own_portrait: np.ndarray | None) -> None:
        """Show on "default" what the renderer in use shows when no portrait is chosen: ``own_portrait`` (RGB
        uint8), or the bundled default portrait when it has none (emits nothing)."""
        self._default_icon = (_rgb_thumbnail(own_portrait) if own_portrait is not None
                              else _thumbnail(paths.default_portrait()))
        self.portraits.item(0).setIcon(self._default_icon)

    def show_renderer(self, renderer: str, pack: str | None) -> None:
        """Show the renderer and pack in use (emits nothing)."""
        self.renderer.setCurrentIndex(max(0, self.renderer.findData(renderer)))
        self.pack.setCurrentIndex(max(0, self.pack.findData(pack)) if pack else 0)

    def reject(self, portrait: Path | None, keep: Path | None) -> None:
        """``portrait`` could not be used: forget it if it was a copy just added, and show ``keep`` again."""
        if portrait is not None and portrait.parent == user_portraits_dir() and portrait.exists():
            portrait.unlink()
        self._current = keep
        self.reload()

    # -- user actions -----------------------------------------------------------------------------------

    def add_photo(self, source: Path) -> Path:
        """Copy ``source`` into the user's portraits, list it and choose it; returns the copy's path."""
        folder = user_portraits_dir()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        n = 1
        while target.exists() and target.resolve() != source.resolve():
            target = folder / f"{source.stem}-{n}{source.suffix}"
            n += 1
        if target.resolve() != source.resolve():
            shutil.copyfile(source, target)
        self._current = target
        self.reload()
        self.portrait_chosen.emit(target)
        return target

    def _add_clicked(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Choose a photo", str(Path.home()),
                                                "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)")
        if chosen:
            self.add_photo(Path(chosen))

    def _portrait_clicked(self, item: QListWidgetItem) -> None:
        path = self._portrait_of(item)
        if path != self._current:
            self._current = path
            self.portrait_chosen.emit(path)

    def _renderer_activated(self, _index: int) -> None:
        self.renderer_chosen.emit(self.renderer.currentData(), self.pack.currentData())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if dropped_image(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        path = dropped_image(event)
        if path is not None:
            event.acceptProposedAction()
            self.add_photo(path)
