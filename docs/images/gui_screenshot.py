"""Regenerate docs/images/gui.png: the viewer with the atrophy panel, labels and the info card.

Run on an X server of exactly 1400x860 without a window manager, e.g.
    Xvfb :77 -screen 0 1400x860x24 &
    DISPLAY=:77 QT_QPA_PLATFORM=xcb python docs/images/gui_screenshot.py :77 docs/images/gui.png
The table shows what 'dorsum measure --atrophy 30 --segments L4-S1' prints.
"""
import sys, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
from PIL import ImageGrab

from viewer.app.window import MainWindow
from viewer.atlas import load_atlas
from viewer.model import SceneModel
from viewer.session import session_from_toml

display, out = sys.argv[1], Path(sys.argv[2])
app = QApplication([sys.argv[0]])
app.setApplicationName("Dorsum")
model = SceneModel(load_atlas())
window = MainWindow(model)
window.setGeometry(0, 0, 1400, 860)
session = session_from_toml({"format": 1, "layers": {"superficial": {"visible": False}, "intermediate": {"opacity": 0.35}},
                             "highlight": "multifidus_left",
                             "atrophy": {"muscle": "multifidus", "amount": 30.0, "segments": "L4-S1",
                                         "side": "both", "fat": 40.0}})
window.load_state(session)
window.set_view("posterior")
window.tabs.setCurrentIndex(1)
window.show()
end = time.time() + 25
while time.time() < end:
    app.processEvents()
    time.sleep(0.05)
window.set_labels_shown(True)
end = time.time() + 10
while time.time() < end:
    app.processEvents()
    time.sleep(0.05)
ImageGrab.grab(xdisplay=display).convert("RGB").crop((0, 0, 1400, 860)).save(out)
window.shutdown()
