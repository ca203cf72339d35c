"""A self-contained HTML page showing the scene in 3D, for a browser without any network.

The page holds the displayed meshes (base64 float32/uint32 arrays) and a small WebGL viewer written
out below: drag to turn, wheel to zoom, a checkbox per structure. No script or font is fetched.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np

from viewer.levels import anatomical_order
from viewer.model import SceneModel
from viewer.output import write_atomically

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{margin:0;font-family:sans-serif;background:#fff;color:#222;overflow:hidden}
#view{position:absolute;left:0;top:0;width:100%;height:100%;cursor:grab}
#panel{position:absolute;left:8px;top:8px;max-height:95%;overflow:auto;background:rgba(255,255,255,.88);
padding:6px 10px;border-radius:6px;font-size:13px}
#panel h1{font-size:15px;margin:2px 0 6px}
label{display:block;white-space:nowrap}
.sw{display:inline-block;width:10px;height:10px;margin-right:5px;border:1px solid #666}
</style></head><body>
<canvas id="view"></canvas>
<div id="panel"><h1>__TITLE__</h1><div id="list"></div>
<p style="color:#666">Drag to turn, wheel to zoom.</p></div>
<script>
const SCENE = __DATA__;
function decode(text, Type) {
  const bytes = Uint8Array.from(atob(text), c => c.charCodeAt(0));
  return new Type(bytes.buffer);
}
const canvas = document.getElementById('view');
const gl = canvas.getContext('webgl', {antialias: true});
gl.getExtension('OES_element_index_uint');
function shader(type, source) {
  const s = gl.createShader(type); gl.shaderSource(s, source); gl.compileShader(s); return s;
}
const program = gl.createProgram();
gl.attachShader(program, shader(gl.VERTEX_SHADER,
  'attribute vec3 p; attribute vec3 n; uniform mat4 m; uniform mat3 r; varying vec3 vn;' +
  'void main(){ vn = r * n; gl_Position = m * vec4(p, 1.0); }'));
gl.attachShader(program, shader(gl.FRAGMENT_SHADER,
  'precision mediump float; varying vec3 vn; uniform vec4 c;' +
  'void main(){ float d = abs(normalize(vn).z); gl_FragColor = vec4(c.rgb * (0.35 + 0.65 * d), c.a); }'));
gl.linkProgram(program); gl.useProgram(program);
const loc = {p: gl.getAttribLocation(program, 'p'), n: gl.getAttribLocation(program, 'n'),
             m: gl.getUniformLocation(program, 'm'), r: gl.getUniformLocation(program, 'r'),
             c: gl.getUniformLocation(program, 'c')};
const list = document.getElementById('list');
const parts = SCENE.structures.map(s => {
  const part = {s: s, visible: true, count: s.count};
  for (const [key, Type, target] of [['positions', Float32Array, gl.ARRAY_BUFFER],
                                     ['normals', Float32Array, gl.ARRAY_BUFFER],
                                     ['indices', Uint32Array, gl.ELEMENT_ARRAY_BUFFER]]) {
    const buffer = gl.createBuffer(); gl.bindBuffer(target, buffer);
    gl.bufferData(target, decode(s[key], Type), gl.STATIC_DRAW); part[key] = buffer;
  }
  const row = document.createElement('label');
  const box = document.createElement('input'); box.type = 'checkbox'; box.checked = true;
  box.onchange = () => { part.visible = box.checked; draw(); };
  const swatch = document.createElement('span'); swatch.className = 'sw'; swatch.style.background = s.hex;
  row.append(box, swatch, document.createTextNode(s.name)); list.append(row);
  return part;
});
let azimuth = 0, elevation = 0, distance = SCENE.radius * 5.8;
function multiply(a, b) {
  const o = new Float32Array(16);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
    let v = 0; for (let k = 0; k < 4; k++) v += a[k * 4 + j] * b[i * 4 + k]; o[i * 4 + j] = v;
  }
  return o;
}
function draw() {
  const w = canvas.clientWidth * devicePixelRatio, h = canvas.clientHeight * devicePixelRatio;
  canvas.width = w; canvas.height = h; gl.viewport(0, 0, w, h);
  gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT); gl.enable(gl.DEPTH_TEST);
  // Patient frame (x right, y anterior, z superior) seen from behind, turned by azimuth/elevation.
  const ca = Math.cos(azimuth), sa = Math.sin(azimuth), ce = Math.cos(elevation), se = Math.sin(elevation);
  const r = [ca, -sa * se, sa * ce,  sa, ca * se, -ca * ce,  0, ce, se];
  const c = SCENE.centre;
  const view = new Float32Array([r[0], r[1], r[2], 0, r[3], r[4], r[5], 0, r[6], r[7], r[8], 0,
    -(r[0] * c[0] + r[3] * c[1] + r[6] * c[2]), -(r[1] * c[0] + r[4] * c[1] + r[7] * c[2]),
    -(r[2] * c[0] + r[5] * c[1] + r[8] * c[2]) - distance, 1]);
  const f = 1 / Math.tan(0.35 / 2), near = distance / 20, far = distance * 4;
  const proj = new Float32Array([f * h / w, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
                                 0, 0, 2 * far * near / (near - far), 0]);
  gl.uniformMatrix4fv(loc.m, false, multiply(proj, view));
  gl.uniformMatrix3fv(loc.r, false, new Float32Array(r));
  const order = parts.filter(p => p.visible).sort((a, b) => b.s.colour[3] - a.s.colour[3]);
  for (const part of order) {
    const translucent = part.s.colour[3] < 1;
    if (translucent) { gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA); gl.depthMask(false); }
    gl.uniform4fv(loc.c, part.s.colour);
    gl.bindBuffer(gl.ARRAY_BUFFER, part.positions); gl.enableVertexAttribArray(loc.p);
    gl.vertexAttribPointer(loc.p, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, part.normals); gl.enableVertexAttribArray(loc.n);
    gl.vertexAttribPointer(loc.n, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, part.indices);
    gl.drawElements(gl.TRIANGLES, part.count, gl.UNSIGNED_INT, 0);
    if (translucent) { gl.disable(gl.BLEND); gl.depthMask(true); }
  }
}
let drag = null;
canvas.onpointerdown = e => { drag = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); };
canvas.onpointerup = () => { drag = null; };
canvas.onpointermove = e => {
  if (!drag) return;
  azimuth += (e.clientX - drag[0]) * 0.01;
  elevation = Math.max(-1.5, Math.min(1.5, elevation + (e.clientY - drag[1]) * 0.01));
  drag = [e.clientX, e.clientY]; draw();
};
canvas.onwheel = e => { e.preventDefault(); distance *= Math.exp(e.deltaY * 0.001); draw(); };
window.onresize = draw;
draw();
</script></body></html>
"""


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def scene_data(model: SceneModel) -> dict:
    """The visible structures as JSON-ready data: names, colours and base64 little-endian arrays."""
    from viewer.render import vertex_normals

    structures = []
    points = []
    for sid in anatomical_order(model.visible_ids()):  # the page's list: C1..S1, not as text
        faces = model.atlas.meshes[sid].faces
        vertices = model.vertices(sid)
        normals = vertex_normals(vertices, faces)
        colour = model.colour(sid)
        rgb = [int(colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]
        structures.append({
            "id": sid, "name": f"{model.atlas.structure(sid).name} ({model.atlas.structure(sid).side})"
            if model.atlas.structure(sid).side != "midline" else model.atlas.structure(sid).name,
            "hex": colour, "colour": [*rgb, model.opacity(sid)], "count": int(faces.size),
            "positions": _b64(vertices.astype("<f4")), "normals": _b64(normals.astype("<f4")),
            "indices": _b64(faces.astype("<u4")),
        })
        points.append(vertices)
    every = np.concatenate(points)
    centre = 0.5 * (every.min(axis=0) + every.max(axis=0))
    radius = float(np.linalg.norm(every - centre, axis=1).max())
    return {"structures": structures, "centre": [float(c) for c in centre], "radius": radius}


_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value: object) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\\u`` escapes, so no text (a structure name, a title) can close
    the element or open a comment; U+2028/U+2029 are escaped for older JavaScript parsers.
    """
    text = json.dumps(value, separators=(",", ":"))
    return "".join(_SCRIPT_ESCAPES.get(char, char) for char in text)


def scene_html(model: SceneModel, title: str = "Dorsum") -> str:
    """A complete offline HTML page of the visible structures of ``model``.

    Everything that enters the page from the atlas or the user is escaped: the title as HTML text,
    the scene as :func:`script_json`; the page script shows names with ``createTextNode`` only.
    """
    fields = {"__DATA__": script_json(scene_data(model)), "__TITLE__": html.escape(title)}
    return re.sub("__DATA__|__TITLE__", lambda match: fields[match.group(0)], _PAGE)  # one pass: no re-expansion


def export_html(model: SceneModel, path: str | Path, *, title: str = "Dorsum", overwrite: bool = False) -> Path:
    """Write :func:`scene_html` to ``path``, atomically."""
    text = scene_html(model, title)
    return write_atomically(path, lambda target: target.write_text(text, encoding="utf-8"), overwrite=overwrite)
