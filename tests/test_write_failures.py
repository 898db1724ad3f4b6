"""Writes that fail or are aimed elsewhere: a full disk or a read-only folder leaves the
previous checkpoint byte for byte and says which file could not be written; a symbolic link
in a run folder is replaced (or, for the lock, refused), never written through.

The tests run as root, for whom a read-only mode bit blocks nothing, so a full disk (ENOSPC)
and a read-only file system (EROFS) are simulated where the kernel would report them: at the
write, at the fsync (where delayed allocation reports a full disk) and at the creation of the
temporary file.
"""

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest

from convscope.cli import main
from convscope.files import TEMPORARY, write_atomic
from convscope.run_model import model_mismatch
from convscope.viz import render

BASE = ["train", "--batch-size", "32", "--no-report", "--no-augment"]


def temporaries(folder):
    return [p.name for p in Path(folder).iterdir() if TEMPORARY.fullmatch(p.name)]


def fail(monkeypatch, name, occurrence, code, at):
    """Make the ``occurrence``-th write of a file called ``name`` fail with ``code`` at ``at``
    ("write", "fsync" or "create"); returns a dict that receives the file's bytes just before."""
    seen, before = [0], {}

    def due(path):
        if Path(path).name != name and not Path(path).name.startswith(f".{name}."):
            return False
        seen[0] += 1
        if seen[0] == occurrence and os.path.exists(Path(path).parent / name):
            before["bytes"] = (Path(path).parent / name).read_bytes()
        return seen[0] == occurrence

    def error():
        return OSError(code, os.strerror(code))

    if at == "create":
        real_mkstemp = tempfile.mkstemp

        def mkstemp(suffix=None, prefix=None, dir=None, text=False):
            if due(Path(dir) / f"{prefix}x"):
                raise OSError(code, os.strerror(code), str(Path(dir) / f"{prefix}abcd1234{suffix}"))
            return real_mkstemp(suffix, prefix, dir, text)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        return before
    real_fdopen, real_fsync = os.fdopen, os.fsync

    def opened(fd):
        return os.readlink(f"/proc/self/fd/{fd}")

    def fdopen(fd, *args, **kwargs):
        out = real_fdopen(fd, *args, **kwargs)
        if at == "write" and due(opened(fd)):
            write = out.write

            def half_then_full(data):
                write(data[:len(data) // 2])
                raise error()
            out.write = half_then_full
        return out

    def fsync(fd):
        if at == "fsync" and due(opened(fd)):
            raise error()
        return real_fsync(fd)

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fsync", fsync)
    return before


@pytest.mark.parametrize("code, at", [
    (errno.ENOSPC, "write"), (errno.ENOSPC, "fsync"), (errno.EROFS, "create"), (errno.EDQUOT, "write"),
], ids=["disk_full_write", "disk_full_fsync", "read_only", "quota"])
def test_a_failed_checkpoint_write_keeps_the_previous_one_and_names_the_file(cache, capsys, monkeypatch, code, at):
    out = cache / "run"
    before = fail(monkeypatch, "checkpoint.safetensors", 2, code, at)
    assert main(BASE + ["--epochs", "3", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == (f"convscope train: error: cannot use {out / 'checkpoint.safetensors'}: "
                                             f"{os.strerror(code)}")
    assert "Traceback" not in err
    assert (out / "checkpoint.safetensors").read_bytes() == before["bytes"]  # epoch 1's, byte for byte
    assert temporaries(out) == []
    assert model_mismatch(out / "model.safetensors", out / "checkpoint.safetensors") is None


def test_a_full_disk_at_the_model_file_is_repaired_on_resume(cache, capsys, monkeypatch):
    out = cache / "run"
    fail(monkeypatch, "model.safetensors", 2, errno.ENOSPC, "fsync")
    assert main(BASE + ["--epochs", "2", "--out", str(out)]) == 1
    assert f"cannot use {out / 'model.safetensors'}: No space left on device" in capsys.readouterr().err
    assert "holds epoch 1 but the checkpoint epoch 2" in model_mismatch(out / "model.safetensors",
                                                                        out / "checkpoint.safetensors")
    monkeypatch.undo()
    monkeypatch.setenv("CONVSCOPE_DATA", str(cache / "cache"))
    assert main(["train", "--out", str(out), "--resume", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert (f"repaired {out / 'model.safetensors'}: it holds epoch 1 but the checkpoint epoch 2 (the run was "
            "stopped between the two writes); rewrote it from the checkpoint (epoch 2)") in err
    assert "already finished (2 of 2 epochs)" in err
    assert model_mismatch(out / "model.safetensors", out / "checkpoint.safetensors") is None


def test_a_full_disk_at_the_last_metrics_log_is_repaired_on_resume(cache, capsys, monkeypatch):
    out = cache / "run"
    fail(monkeypatch, "metrics.jsonl", 2, errno.ENOSPC, "write")
    assert main(BASE + ["--epochs", "2", "--out", str(out)]) == 1
    assert f"cannot use {out / 'metrics.jsonl'}: No space left on device" in capsys.readouterr().err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    monkeypatch.undo()
    monkeypatch.setenv("CONVSCOPE_DATA", str(cache / "cache"))
    assert main(["train", "--out", str(out), "--resume", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert f"repaired {out / 'metrics.jsonl'}: it holds 1 epoch records, the checkpoint 2" in err
    assert f"repaired {out / 'model.safetensors'}: it holds epoch 1 but the checkpoint epoch 2" in err
    assert [json.loads(line)["epoch"] for line in open(out / "metrics.jsonl")] == [1, 2]


def test_a_read_only_run_folder_is_named(cache, capsys):
    out = cache / "run"
    assert main(BASE + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    os.chmod(out, 0o555)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("this user writes into read-only folders (root); the simulated EROFS test covers it")
        assert main(["train", "--out", str(out), "--resume", "--extend", "--epochs", "2", "--no-report"]) == 1
    finally:
        os.chmod(out, 0o755)
    assert str(out) in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_write_atomic_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    target.write_bytes(b"before")
    fail(monkeypatch, "metrics.jsonl", 1, errno.ENOSPC, "write")
    with pytest.raises(OSError) as raised:
        write_atomic(target, b"after" * 1000)
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(target))
    assert target.read_bytes() == b"before" and temporaries(tmp_path) == []


# ----- symbolic links -----------------------------------------------------------------------------
@pytest.mark.parametrize("write", [
    lambda path: render.write_text(path, "<html>report</html>"),
    lambda path: render.save_png(path, [[0, 255]]),
    lambda path: write_atomic(path, b"checkpoint"),
], ids=["report_html", "viz_png", "any_file"])
def test_a_link_in_the_run_folder_is_replaced_not_written_through(tmp_path, write):
    outside, run = tmp_path / "outside.txt", tmp_path / "run"
    outside.write_bytes(b"not convscope's")
    run.mkdir()
    (run / "report.html").symlink_to(outside)
    write(run / "report.html")
    assert outside.read_bytes() == b"not convscope's"
    assert not (run / "report.html").is_symlink() and (run / "report.html").stat().st_size > 0


def test_a_linked_lock_file_is_refused(cache, capsys):
    outside, out = cache / "outside.txt", cache / "run"
    outside.write_text("keep me")
    out.mkdir()
    (out / "training.lock").symlink_to(outside)
    assert main(BASE + ["--epochs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out / 'training.lock'} is a symbolic link (to {outside})" in err and "remove the link" in err
    assert outside.read_text() == "keep me"


def test_a_resume_clears_what_a_killed_write_left(cache, capsys):
    out = cache / "run"
    assert main(BASE + ["--epochs", "1", "--out", str(out)]) == 0
    left = out / ".checkpoint.safetensors.k1ll3d00.tmp"
    left.write_bytes(b"half a checkpoint")
    kept = out / ".notes.tmp"  # not a name write_atomic makes: not ours to remove
    kept.write_bytes(b"the user's")
    assert main(["train", "--out", str(out), "--resume", "--no-report"]) == 0
    assert f"removed {left}, left by an interrupted write" in capsys.readouterr().err
    assert not left.exists() and kept.read_bytes() == b"the user's"
