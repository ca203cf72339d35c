"""The 3D view widget: pyvistaqt's ``QtInteractor``, made cheaper per frame on a CPU renderer.

Every frame the widget copies VTK's finished picture into Qt's framebuffer, and Qt then composes
that framebuffer into the window and sends it to the screen. On llvmpipe each of these is a pass
over every pixel, and together they cost about a quarter of a frame while the camera is dragged.
Two passes are made cheaper without changing a pixel:

- the copy is a nearest-pixel blit when VTK's picture and the widget have the same size (always,
  except on a display scaled by a fraction): Mesa copies memory instead of running a filtering
  shader, whose result at 1:1 is the same pixels anyway;
- the view is a native child window, so that Qt composes and presents only the 3D view on each
  frame, not the whole main window with its side panel and toolbars.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from pyvistaqt import QtInteractor

GL_DRAW_FRAMEBUFFER = 0x8CA9
GL_SCISSOR_TEST = 0x0C11
GL_COLOR_BUFFER_BIT = 0x00004000
GL_NEAREST = 0x2600


class View3D(QtInteractor):
    """``QtInteractor`` (same arguments) whose frames reach the screen with less copying."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Its own X window: each frame Qt composes and swaps the view alone. No native ancestors:
        # the main window stays one ordinary top-level window.
        self.setAttribute(Qt.WidgetAttribute.WA_DontCreateNativeAncestors)
        self.setAttribute(Qt.WidgetAttribute.WA_NativeWindow)

    def _blit(self, target_id, rect):
        """pyvistaqt's blit of VTK's display framebuffer into Qt's, with a plain copy at 1:1."""
        rw, gl = self._RenderWindow, self._gl
        if rw is None or gl is None or tuple(rw.GetSize()) != (rect.width(), rect.height()) or rect.x() or rect.y():
            super()._blit(target_id, rect)  # scaled: pyvistaqt's own (linear) filtering
            return
        gl.glBindFramebuffer(GL_DRAW_FRAMEBUFFER, target_id)
        gl.draw_buffer_attachment0()
        scissor = bool(gl.glIsEnabled(GL_SCISSOR_TEST))
        if scissor:  # the scissor would clip the blit
            rw.GetState().vtkglDisable(GL_SCISSOR_TEST)
            gl.glDisable(GL_SCISSOR_TEST)
        width, height = rect.width(), rect.height()
        rw.BlitDisplayFramebuffer(0, 0, 0, width, height, 0, 0, width, height, GL_COLOR_BUFFER_BIT, GL_NEAREST)
        # Opaque alpha, as pyvistaqt does, so that a compositor does not show what lies behind the window.
        gl.glColorMask(False, False, False, True)
        gl.glClearColor(0.0, 0.0, 0.0, 1.0)
        gl.glViewport(0, 0, width, height)
        gl.glClear(GL_COLOR_BUFFER_BIT)
        gl.glColorMask(True, True, True, True)
        if scissor:
            rw.GetState().vtkglEnable(GL_SCISSOR_TEST)
            gl.glEnable(GL_SCISSOR_TEST)
