"""Writing files: a full disk, a failed encoder, long names, races, signals and stale temporary files.

What a user sees: exit code 2 with one line naming the file, the previous file left as it was, and
no hidden ``.part`` file left beside it.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from viewer.cli import main
from viewer.errors import DorsumError
from viewer.output import remove_stale_temps, write_atomically

REPO = Path(__file__).resolve().parents[1]
OLD = b"the previous file, which must survive"


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"dorsum {command}: error: ")
    return err[0]


def run_cli(args: list[str], atlas_dir: Path) -> int:
    command, *rest = args
    return main([command, "--atlas", str(atlas_dir), *rest])


# -- a full disk, for every kind of output ---------------------------------------------------------
@pytest.mark.parametrize("command,name,target,extra", [
    ("shot", "out.png", "PIL.Image.Image.save", ["--size", "64x48"]),
    ("export", "out.glb", "pathlib.Path.write_bytes", []),
    ("export", "out.html", "pathlib.Path.write_text", []),
    ("animate", "out.gif", "PIL.GifImagePlugin.getdata", ["--kind", "turntable", "--frames", "2", "--size", "64x48", "--quiet"]),
])
def test_full_disk_is_one_line_and_keeps_the_old_file(command, name, target, extra, fixture_atlas_dir, tmp_path,
                                                      monkeypatch, capsys):
    out = tmp_path / name
    out.write_bytes(OLD)
    monkeypatch.setattr(target, no_space)
    assert run_cli([command, "--out", str(out), "--overwrite", *extra], fixture_atlas_dir) == 2
    line = one_error_line(capsys, command)
    assert str(out) in line and "no space left on device" in line and "free some space" in line
    assert out.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_full_disk_in_a_lesson_is_one_line(fixture_atlas_dir, tmp_path, monkeypatch, capsys):
    lesson = tmp_path / "l.toml"
    lesson.write_text('[lesson]\ntitle = "t"\nsize = "64x48"\n[[figures]]\noutput = "a.png"\n', encoding="utf-8")
    monkeypatch.setattr("PIL.Image.Image.save", no_space)
    code = main(["lesson", str(lesson), "--out", str(tmp_path / "figs"), "--atlas", str(fixture_atlas_dir), "--quiet"])
    assert code == 2
    assert "no space left on device" in one_error_line(capsys, "lesson")
    assert leftovers(tmp_path / "figs") == [] and not (tmp_path / "figs" / "a.png").exists()


def test_an_os_error_outside_the_writer_names_the_file_and_what_to_do(fixture_atlas_dir, tmp_path, monkeypatch,
                                                                       capsys):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x.toml"))

    monkeypatch.setattr("viewer.commands.info.atlas_info", denied)
    assert main(["info", "--atlas", str(fixture_atlas_dir)]) == 2
    line = one_error_line(capsys, "info")
    assert f"{tmp_path / 'x.toml'}: permission denied; choose a folder you can write to" in line


# -- MP4: a failed or killed encoder ---------------------------------------------------------------
FAKE_ENCODERS = {
    "full disk": 'cat > /dev/null; for last; do :; done; printf broken > "$last"; '
                 'echo "Error writing trailer: No space left on device" >&2; exit 1',
    "killed": 'head -c 1000 > /dev/null; for last; do :; done; printf broken > "$last"; kill -9 $$',
}


@pytest.mark.parametrize("case", sorted(FAKE_ENCODERS))
def test_a_failed_mp4_encode_is_an_error_and_keeps_the_old_file(case, fixture_atlas_dir, tmp_path, monkeypatch,
                                                                capsys):
    encoder = tmp_path / "ffmpeg"
    encoder.write_text(f"#!/bin/sh\n{FAKE_ENCODERS[case]}\n", encoding="utf-8")
    encoder.chmod(0o755)
    monkeypatch.setattr("imageio_ffmpeg.get_ffmpeg_exe", lambda: str(encoder))
    out = tmp_path / "movie.mp4"
    out.write_bytes(OLD)
    code = main(["animate", "--atlas", str(fixture_atlas_dir), "--kind", "turntable", "--frames", "3",
                 "--size", "64x48", "--quiet", "--out", str(out), "--overwrite"])
    assert code == 2
    line = one_error_line(capsys, "animate")
    assert str(out) in line and "MP4 encoder" in line
    assert ("No space left on device" in line) if case == "full disk" else ("killed" in line)
    assert "wrote" not in capsys.readouterr().out
    assert out.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_a_good_mp4_plays(fixture_atlas_dir, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "movie.mp4"
    assert main(["animate", "--atlas", str(fixture_atlas_dir), "--kind", "turntable", "--frames", "3",
                 "--size", "64x48", "--quiet", "--out", str(out)]) == 0
    assert iio.imread(out).shape == (3, 48, 64, 3)


# -- names ---------------------------------------------------------------------------------------
def test_a_250_character_name_is_written(fixture_atlas_dir, tmp_path):
    out = tmp_path / ("a" * 246 + ".png")
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--size", "64x48"]) == 0
    assert out.stat().st_size > 0 and leftovers(tmp_path) == []


def test_a_name_too_long_for_the_disk_fails_before_rendering(fixture_atlas_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("viewer.render.render_image", lambda *a, **k: pytest.fail("rendered"))
    out = tmp_path / ("a" * 256 + ".png")
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(out), "--size", "64x48"]) == 2
    assert "file name is 260 bytes long" in one_error_line(capsys, "shot")


def test_a_dangling_link_counts_as_an_existing_file(fixture_atlas_dir, tmp_path, capsys):
    link = tmp_path / "fig.png"
    link.symlink_to(tmp_path / "missing.png")
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(link), "--size", "64x48"]) == 2
    assert "--overwrite" in one_error_line(capsys, "shot")
    assert link.is_symlink() and not (tmp_path / "missing.png").exists()


def test_an_unwritable_folder_fails_before_rendering(fixture_atlas_dir, tmp_path, monkeypatch, capsys):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr("viewer.render.render_image", lambda *a, **k: pytest.fail("rendered"))
    assert main(["shot", "--atlas", str(fixture_atlas_dir), "--out", str(tmp_path / "x.png")]) == 2
    line = one_error_line(capsys, "shot")
    assert "read-only file system" in line and "choose a folder" in line


@pytest.mark.parametrize("make", ["file", "inside_file", "read_only"])
def test_atlas_build_checks_its_output_folder_before_building(make, tmp_path, monkeypatch, capsys):
    import tempfile

    monkeypatch.setattr("viewer.commands.atlas._builder", lambda: lambda staging: pytest.fail("started building"))
    out = tmp_path / "atlas"
    if make == "file":
        out.write_text("x")
    elif make == "inside_file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "atlas"
    else:
        monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(
            OSError(errno.EROFS, "Read-only file system")))
    assert main(["atlas", "build", "--out", str(out)]) == 2
    line = one_error_line(capsys, "atlas")
    assert str(out) in line


# -- never replaced without --overwrite, even in a race ----------------------------------------------
def test_a_file_that_appears_while_writing_is_never_replaced(tmp_path):
    out = tmp_path / "fig.png"

    def write(temp: Path) -> None:
        temp.write_bytes(b"ours")
        out.write_bytes(OLD)  # another program creates the target meanwhile

    with pytest.raises(DorsumError, match="exists"):
        write_atomically(out, write, overwrite=False)
    assert out.read_bytes() == OLD and leftovers(tmp_path) == []


@pytest.mark.parametrize("race", [False, True])
def test_without_hard_links_the_name_is_still_claimed_atomically(race, tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "fig.png"

    def write(temp: Path) -> None:
        temp.write_bytes(b"ours")
        if race:
            out.write_bytes(OLD)

    if race:
        with pytest.raises(DorsumError, match="exists"):
            write_atomically(out, write, overwrite=False)
        assert out.read_bytes() == OLD
    else:
        write_atomically(out, write, overwrite=False)
        assert out.read_bytes() == b"ours"
    assert leftovers(tmp_path) == []


# -- temporary files of ended processes, SIGTERM, SIGHUP, kill -9 -----------------------------------------
def ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporary_files_of_ours_are_removed_at_the_next_write(tmp_path):
    stale = tmp_path / f".dorsum-{ended_pid()}-abc123.part"
    live = tmp_path / f".dorsum-{os.getpid()}-def456.part"
    other = tmp_path / ".download.part"
    for path in (stale, live, other):
        path.write_bytes(b"x" * 1000)
    write_atomically(tmp_path / "new.txt", lambda t: t.write_text("hi"), overwrite=False)
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert remove_stale_temps(tmp_path) == []


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from viewer.output import write_atomically

    out = Path(sys.argv[1])
    def write(temp):
        temp.write_bytes(b"x" * 100000)
        Path(sys.argv[2]).write_text(temp.name)
        time.sleep(60)
    write_atomically(out, write, overwrite=True)
""")

ENCODING = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from viewer.figures.animation import mp4_writer
    from viewer.output import write_atomically

    def frames():
        for index in range(100000):
            if index == 30:
                Path(sys.argv[2]).write_text("encoding")
            yield np.full((48, 64, 3), index % 255, dtype=np.uint8)
    write_atomically(Path(sys.argv[1]), mp4_writer(frames(), 12, (64, 48)), overwrite=True)
""")


def start_writer(script: str, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    out, ready = tmp_path / "target.bin", tmp_path / "ready"
    out.write_bytes(OLD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", script, str(out), str(ready)], env=env)
    for _ in range(600):
        if ready.exists() or process.poll() is not None:
            break
        time.sleep(0.1)
    assert ready.exists(), "the writer never started writing"
    time.sleep(0.2)
    assert leftovers(tmp_path), "expected a temporary file while writing"
    return process, out, ready


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("script", ["writer", "encoder"])
def test_a_signal_while_writing_leaves_no_temporary_file(signum, script, tmp_path):
    process, out, _ = start_writer(WRITER if script == "writer" else ENCODING, tmp_path)
    process.send_signal(signum)
    assert process.wait(timeout=30) == -signum
    assert out.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_after_kill_9_the_next_write_removes_the_leftover(tmp_path):
    process, out, _ = start_writer(WRITER, tmp_path)
    process.kill()
    process.wait(timeout=30)
    assert out.read_bytes() == OLD and len(leftovers(tmp_path)) == 1  # what kill -9 leaves
    write_atomically(tmp_path / "next.txt", lambda t: t.write_text("hi"), overwrite=False)
    assert leftovers(tmp_path) == []
