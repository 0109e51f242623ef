"""Dark and light looks for the window, following the system unless the user picks one.

Both looks use Qt's Fusion style with a palette of our own, so they look the
same on every platform; "system" asks Qt's style hints which scheme the desktop
uses and follows it when it changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

#: Accent colours shared by both looks.
ACCENT = "#3d7cf0"
LIVE_RED = "#d93a3a"

_DARK = {
    QPalette.ColorRole.Window: "#1f2126",
    QPalette.ColorRole.WindowText: "#e6e7ea",
    QPalette.ColorRole.Base: "#17181c",
    QPalette.ColorRole.AlternateBase: "#262930",
    QPalette.ColorRole.Text: "#e6e7ea",
    QPalette.ColorRole.Button: "#2b2e35",
    QPalette.ColorRole.ButtonText: "#e6e7ea",
    QPalette.ColorRole.ToolTipBase: "#2b2e35",
    QPalette.ColorRole.ToolTipText: "#e6e7ea",
    QPalette.ColorRole.PlaceholderText: "#8a8f99",
    QPalette.ColorRole.Highlight: ACCENT,
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7aa7ff",
    QPalette.ColorRole.Mid: "#3a3e47",
    QPalette.ColorRole.Dark: "#121317",
    QPalette.ColorRole.Light: "#3a3e47",
}
_LIGHT = {
    QPalette.ColorRole.Window: "#f3f4f6",
    QPalette.ColorRole.WindowText: "#1c1d21",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#eceef2",
    QPalette.ColorRole.Text: "#1c1d21",
    QPalette.ColorRole.Button: "#ffffff",
    QPalette.ColorRole.ButtonText: "#1c1d21",
    QPalette.ColorRole.ToolTipBase: "#ffffff",
    QPalette.ColorRole.ToolTipText: "#1c1d21",
    QPalette.ColorRole.PlaceholderText: "#7a7f89",
    QPalette.ColorRole.Highlight: ACCENT,
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#2a62d4",
    QPalette.ColorRole.Mid: "#c9ccd3",
    QPalette.ColorRole.Dark: "#a0a4ad",
    QPalette.ColorRole.Light: "#ffffff",
}

_STYLE_SHEET = f"""
QGroupBox {{ font-weight: 600; border: 1px solid palette(mid); border-radius: 8px; margin-top: 14px;
            padding: 10px 8px 8px 8px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; }}
QPushButton {{ padding: 6px 14px; border-radius: 6px; border: 1px solid palette(mid); }}
QPushButton:checked {{ background: palette(highlight); color: palette(highlighted-text); }}
QPushButton#goLive {{ font-size: 15px; font-weight: 600; padding: 9px 22px; background: {ACCENT}; color: white;
                     border: none; }}
QPushButton#goLive:checked {{ background: {LIVE_RED}; }}
QPushButton#record {{ font-size: 15px; font-weight: 600; padding: 9px 22px; }}
QPushButton#record:checked {{ background: {LIVE_RED}; color: white; border: none; }}
QFrame#messageBar {{ border-radius: 6px; padding: 2px; }}
QFrame#messageBar[level="error"] {{ background: #8a2d2d; }}
QFrame#messageBar[level="warning"] {{ background: #8a6a1f; }}
QFrame#messageBar[level="info"] {{ background: #2a5db0; }}
QFrame#messageBar QLabel {{ color: white; }}
QLabel#hint {{ color: palette(placeholder-text); }}
QListWidget {{ border-radius: 6px; }}
"""


def system_prefers_dark() -> bool:
    """Whether the desktop asks for a dark look (False when it does not say)."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def resolve_theme(theme: str) -> str:
    """"dark" or "light" for the setting ``theme`` ("system", "dark" or "light")."""
    if theme == "system":
        return "dark" if system_prefers_dark() else "light"
    return "dark" if theme == "dark" else "light"


def palette_for(look: str) -> QPalette:
    """The palette of ``look`` ("dark" or "light")."""
    palette = QPalette()
    for role, colour in (_DARK if look == "dark" else _LIGHT).items():
        palette.setColor(role, QColor(colour))
    disabled = QColor("#6b6f78" if look == "dark" else "#a3a7b0")
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def apply_theme(theme: str) -> str:
    """Give the application the look for ``theme``; returns the look applied ("dark" or "light")."""
    app = QApplication.instance()
    assert isinstance(app, QApplication), "apply_theme needs the QApplication"
    look = resolve_theme(theme)
    app.setStyle("Fusion")
    app.setPalette(palette_for(look))
    app.setStyleSheet(_STYLE_SHEET)
    return look
