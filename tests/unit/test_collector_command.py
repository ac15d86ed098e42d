"""`testenv-collect`, the results sidecar, as the kubelet runs it: it waits
for SIGTERM, then prints one framed archive of the results directory and
exits 0, whatever the directory holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from testenv import collector
from testenv.collect import unframe, unpack

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "testenv.collector", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(OPERATOR), os.environ.get("PYTHONPATH", "")])}


def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    (root / "reports").mkdir(parents=True)
    (root / "reports" / "junit.xml").write_bytes(b'<testsuite name="e2e" tests="1"/>')
    (root / "shot.png").write_bytes(bytes(range(256)))
    (root / "passwd").symlink_to("/etc/passwd")
    return root


def test_once_prints_the_directory_as_one_frame(tmp_path):
    done = subprocess.run(command("--once", "--dir", str(results(tmp_path))), capture_output=True, text=True,
                          env=environment(), timeout=60)
    assert done.returncode == 0, done.stderr
    manifest, files = unpack(unframe(done.stdout))
    assert files == {"reports/junit.xml": b'<testsuite name="e2e" tests="1"/>', "shot.png": bytes(range(256))}
    assert manifest.notes == ("skipped passwd: a symbolic link, not a regular file",)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("end", [signal.SIGTERM, signal.SIGINT])
def test_it_waits_for_the_end_signal_then_prints_the_frame_and_exits_0(tmp_path, end):
    root = results(tmp_path)
    proc = subprocess.Popen(command("--dir", str(root), "--max-file-bytes", "100"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment())
    try:
        # Once this line is out, the signals are blocked and waited for.
        assert proc.stderr.readline().strip() == collector.READY
        (root / "late.txt").write_bytes(b"written after it started")  # packed at the end, not at the start
        assert proc.poll() is None
        proc.send_signal(end)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    manifest, files = unpack(unframe(out))
    assert set(files) == {"late.txt", "reports/junit.xml"}
    assert "skipped shot.png: 256 B is over the 100 B per-file cap" in manifest.notes


def test_a_missing_directory_is_a_frame_with_a_note_and_exit_0(tmp_path):
    done = subprocess.run(command("--once", "--dir", str(tmp_path / "none")), capture_output=True, text=True,
                          env=environment(), timeout=60)
    assert done.returncode == 0, done.stderr
    manifest, files = unpack(unframe(done.stdout))
    assert files == {}
    assert manifest.notes == (f"no results were collected: {tmp_path / 'none'} does not exist",)


def test_a_packing_failure_is_a_frame_that_says_why(tmp_path, monkeypatch, capsys):
    def broken(root, caps):
        raise MemoryError("the sidecar's memory limit")

    monkeypatch.setattr(collector, "pack", broken)
    assert collector.main(["--once", "--dir", str(tmp_path)]) == 0
    manifest, files = unpack(unframe(capsys.readouterr().out))
    assert files == {}
    assert manifest.notes == ("the results could not be packed: MemoryError: the sidecar's memory limit",)


def test_caps_come_from_the_command_line(tmp_path, capsys):
    (tmp_path / "a.bin").write_bytes(os.urandom(4000))
    (tmp_path / "b.xml").write_bytes(os.urandom(1000))
    assert collector.main(["--once", "--dir", str(tmp_path), "--max-archive-bytes", "3000"]) == 0
    manifest, files = unpack(unframe(capsys.readouterr().out))
    assert set(files) == {"b.xml"}
    assert manifest.notes == ("cut a.bin (3.9 KiB): the suite's results are over the 2.9 KiB cap",)
    with pytest.raises(SystemExit):
        collector.main(["--max-file-bytes", "0"])
