"""The results archive: what `pack` takes from a results directory (and what
it refuses), the frame around it in a log, and `unpack`, which trusts nothing
in what it is given."""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
from testenv import collect
from testenv.collect import Caps, CollectError, Manifest, frame, is_report, pack, unframe, unpack

KiB = 1024
MiB = 1024 * KiB


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def round_trip(root: Path) -> tuple[Manifest, dict[str, bytes]]:
    archive, manifest = pack(root)
    unpacked_manifest, files = unpack(unframe(frame(archive)))
    assert unpacked_manifest == manifest
    return manifest, files


# ---------------------------------------------------------------- pack


def test_files_come_back_byte_for_byte_with_their_nested_paths(tmp_path):
    files = {
        "junit.xml": b'<testsuite name="e2e" tests="1"/>',
        "reports/nested/deeper/coverage.json": b'{"lines": 97.5}',
        "screens/checkout.png": bytes(range(256)) * 40 + os.urandom(3000),
        "empty.txt": b"",
        "d\u00e9j\u00e0 vu/r\u00e9sum\u00e9.txt": "caf\u00e9".encode(),
    }
    write(tmp_path, files)
    manifest, unpacked = round_trip(tmp_path)
    assert unpacked == files
    assert manifest.notes == ()
    assert [f.path for f in manifest.files] == sorted(files)
    assert {f.path: f.size for f in manifest.files} == {p: len(d) for p, d in files.items()}


def test_the_same_directory_packs_to_the_same_bytes_whatever_the_file_times(tmp_path):
    write(tmp_path, {"b.txt": b"b", "a/z.xml": b"<z/>", "a/y.bin": os.urandom(5000)})
    first, _ = pack(tmp_path)
    os.utime(tmp_path / "b.txt", (1, 1))
    os.chmod(tmp_path / "a" / "y.bin", 0o600)
    second, _ = pack(tmp_path)
    assert first == second


def test_the_archive_is_manifest_first_then_sorted_files_owned_by_nobody(tmp_path):
    write(tmp_path, {"z.txt": b"z", "a/b.xml": b"<b/>", "a-c.txt": b"c"})
    archive, _ = pack(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["manifest.json", "files/a-c.txt", "files/a/b.xml", "files/z.txt"]
    assert {(m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime, m.type) for m in members} == {
        (0o644, 0, 0, "", "", 0, tarfile.REGTYPE)}
    assert gzip.decompress(archive)  # a plain gzip stream
    assert archive[4:8] == b"\0\0\0\0"  # gzip header mtime 0


def test_symlinks_are_skipped_with_a_note_wherever_they_point(tmp_path):
    write(tmp_path, {"real.txt": b"real", "inside/data.txt": b"data"})
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    (tmp_path / "etc").symlink_to("/etc")
    (tmp_path / "inside" / "loop").symlink_to(tmp_path)
    manifest, files = round_trip(tmp_path)
    assert files == {"real.txt": b"real", "inside/data.txt": b"data"}
    assert set(manifest.notes) == {
        "skipped passwd: a symbolic link, not a regular file",
        "skipped alias.txt: a symbolic link, not a regular file",
        "skipped etc: a symbolic link, not a regular file",
        "skipped inside/loop: a symbolic link, not a regular file",
    }


def test_a_results_directory_that_is_a_symlink_is_not_followed(tmp_path):
    write(tmp_path / "elsewhere", {"secret.txt": b"no"})
    (tmp_path / "results").symlink_to(tmp_path / "elsewhere")
    manifest, files = round_trip(tmp_path / "results")
    assert files == {}
    assert manifest.notes == (f"no results were collected: {tmp_path / 'results'} is a symbolic link",)


def test_a_file_over_the_per_file_cap_is_skipped_without_being_read(tmp_path, monkeypatch):
    write(tmp_path, {"junit.xml": b"<testsuite/>"})
    with open(tmp_path / "core.dump", "wb") as sparse:
        sparse.truncate(2 * 1024 * MiB)
    opened: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(collect.os, "open", spy)
    started = time.monotonic()
    archive, manifest = pack(tmp_path)
    assert time.monotonic() - started < 5
    monkeypatch.undo()
    assert "core.dump" not in opened and "junit.xml" in opened
    assert manifest.notes == ("skipped core.dump: 2.0 GiB is over the 4.0 MiB per-file cap",)
    assert unpack(archive)[1] == {"junit.xml": b"<testsuite/>"}


def test_a_fifo_socket_or_device_is_skipped_with_a_note(tmp_path):
    write(tmp_path, {"ok.txt": b"ok"})
    os.mkfifo(tmp_path / "pipe")
    manifest, files = round_trip(tmp_path)  # a FIFO is never opened: this would hang
    assert files == {"ok.txt": b"ok"}
    assert manifest.notes == ("skipped pipe: a FIFO, not a regular file",)


def test_a_file_that_vanishes_or_turns_into_a_symlink_after_the_walk_is_a_note(tmp_path, monkeypatch):
    # The walk and the read are separate steps; between them the directory may
    # change. Simulated here by changing it right after the walk.
    write(tmp_path, {"gone.txt": b"gone", "swapped.txt": b"swapped", "kept.txt": b"kept"})
    walk = collect._Walk.directory

    def then_change(self, dir_fd, prefix, depth):
        walk(self, dir_fd, prefix, depth)
        if prefix == "":
            (tmp_path / "gone.txt").unlink()
            (tmp_path / "swapped.txt").unlink()
            (tmp_path / "swapped.txt").symlink_to("/etc/passwd")

    monkeypatch.setattr(collect._Walk, "directory", then_change)
    manifest, files = round_trip(tmp_path)
    assert files == {"kept.txt": b"kept"}
    assert manifest.notes == (
        "skipped gone.txt: it could not be read (No such file or directory)",
        "skipped swapped.txt: it could not be read (Too many levels of symbolic links)",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_an_unreadable_file_is_skipped_with_a_note(tmp_path):
    write(tmp_path, {"secret.txt": b"s", "ok.txt": b"ok"})
    (tmp_path / "secret.txt").chmod(0)
    manifest, files = round_trip(tmp_path)
    assert files == {"ok.txt": b"ok"}
    assert manifest.notes == ("skipped secret.txt: it could not be read (Permission denied)",)


def test_a_name_the_archive_could_not_carry_is_skipped_with_a_note(tmp_path):
    write(tmp_path, {"a\\b.txt": b"backslash", "ok.txt": b"ok"})
    (tmp_path / os.fsdecode(b"latin-\xe9.txt")).write_bytes(b"not utf-8")
    manifest, files = round_trip(tmp_path)
    assert files == {"ok.txt": b"ok"}
    assert set(manifest.notes) == {"skipped a\\b.txt: its name holds a backslash",
                                   "skipped latin-\\udce9.txt: its name is not valid UTF-8"}


def test_a_missing_or_empty_results_directory_packs_to_an_archive_without_files(tmp_path):
    manifest, files = round_trip(tmp_path / "never-created")
    assert files == {}
    assert manifest.notes == (f"no results were collected: {tmp_path / 'never-created'} does not exist",)
    assert round_trip(tmp_path) == (Manifest(), {})


def test_a_runaway_directory_is_bounded_in_depth_and_in_files(tmp_path):
    deep = tmp_path / "/".join(["d"] * (collect.MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_bytes(b"too deep")
    write(tmp_path, {f"f{i}.txt": b"f" for i in range(5)})
    archive, manifest = pack(tmp_path, Caps(max_files=3))
    assert [f.path for f in manifest.files] == ["f0.txt", "f1.txt", "f2.txt"]
    assert manifest.notes == (
        f"skipped {'/'.join(['d'] * (collect.MAX_DEPTH + 1))}/: it is nested over 64 directories deep",
        "stopped at 3 files: the rest of the results directory was not collected",
    )


def test_over_the_archive_cap_the_largest_other_files_are_cut_before_reports(tmp_path):
    write(tmp_path, {
        "reports/junit-a.xml": os.urandom(60 * KiB),  # random: it costs its full size compressed
        "reports/junit-b.xml": os.urandom(40 * KiB),
        "video.webm": os.urandom(200 * KiB),
        "trace.zip": os.urandom(150 * KiB),
        "har.json": os.urandom(60 * KiB),
        "small.png": os.urandom(20 * KiB),
    })
    archive, manifest = pack(tmp_path, Caps(max_archive_bytes=300 * KiB))
    assert len(archive) <= 300 * KiB
    assert {f.path for f in manifest.files} == {"reports/junit-a.xml", "reports/junit-b.xml", "har.json",
                                                "small.png"}
    assert manifest.notes == (
        "cut video.webm (200.0 KiB): the suite's results are over the 300.0 KiB cap",
        "cut trace.zip (150.0 KiB): the suite's results are over the 300.0 KiB cap",
    )
    assert unpack(archive)[0] == manifest


def test_reports_are_cut_last_and_the_largest_first(tmp_path):
    write(tmp_path, {"a.xml": os.urandom(80 * KiB), "b.xml": os.urandom(60 * KiB), "c.bin": os.urandom(10 * KiB)})
    archive, manifest = pack(tmp_path, Caps(max_archive_bytes=100 * KiB))
    assert len(archive) <= 100 * KiB
    assert [f.path for f in manifest.files] == ["b.xml"]
    assert manifest.notes == (
        "cut c.bin (10.0 KiB): the suite's results are over the 100.0 KiB cap",
        "cut a.xml (80.0 KiB): the suite's results are over the 100.0 KiB cap",
    )


def test_many_big_files_are_cut_to_fit_and_never_a_report(tmp_path):
    write(tmp_path, {f"artifacts/blob-{i:02}.bin": os.urandom(300 * KiB + i) for i in range(40)})
    write(tmp_path, {"junit.xml": b"<testsuite/>" * 1000})
    caps = Caps(max_file_bytes=512 * KiB, max_archive_bytes=1 * MiB)
    archive, manifest = pack(tmp_path, caps)
    assert len(archive) <= caps.max_archive_bytes
    kept = {f.path for f in manifest.files}
    assert "junit.xml" in kept and 0 < len(kept) < 41
    cut = [n for n in manifest.notes if n.startswith("cut ")]
    assert len(cut) == 41 - len(kept)
    assert all(n.endswith("the suite's results are over the 1.0 MiB cap") for n in cut)


def test_over_the_uncompressed_cap_files_are_cut_unread(tmp_path):
    write(tmp_path, {"a.log": bytes(600 * KiB), "b.log": bytes(500 * KiB), "r.xml": bytes(300 * KiB)})
    caps = Caps(max_file_bytes=1 * MiB, max_total_bytes=1 * MiB)
    archive, manifest = pack(tmp_path, caps)
    assert [f.path for f in manifest.files] == ["b.log", "r.xml"]
    assert manifest.notes == ("cut a.log (600.0 KiB): the suite's results are over the 1.0 MiB uncompressed cap",)
    assert unpack(archive, max_total_bytes=caps.max_total_bytes)[0] == manifest


def test_is_report_means_an_xml_file():
    assert is_report("reports/junit.xml") and is_report("TEST-orders.XML")
    assert not is_report("xml/report.json") and not is_report("junit.xml.gz")


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (812, "812 B"), (1536, "1.5 KiB"), (4 * MiB, "4.0 MiB"), (2 * 1024 * MiB, "2.0 GiB"),
])
def test_sizes_in_notes_are_human(size, text):
    assert collect.human_size(size) == text


# ---------------------------------------------------------------- frame


def framed(files: dict[str, bytes], tmp_path: Path) -> tuple[bytes, str]:
    write(tmp_path, files)
    archive, _ = pack(tmp_path)
    return archive, frame(archive)


def test_the_frame_is_found_among_other_log_lines(tmp_path):
    archive, text = framed({"junit.xml": b"<testsuite/>"}, tmp_path)
    log = "testenv-collect: waiting for the end of the test container\n" + text + "a line after it\n"
    assert unframe(log) == archive
    assert unframe(log.replace("\n", "\r\n")) == archive
    begin, *body, end = text.splitlines()
    assert begin.startswith("==== testenv-results v1 begin bytes=") and end == "==== testenv-results v1 end ===="
    assert all(len(line) <= collect.FRAME_LINE_CHARS for line in body)


def test_of_two_frames_the_last_complete_one_wins(tmp_path):
    first, first_text = framed({"old.txt": b"old"}, tmp_path / "one")
    second, second_text = framed({"new.txt": b"new"}, tmp_path / "two")
    assert unframe(first_text + "noise\n" + second_text) == second
    assert unframe(first_text + second_text.splitlines()[0] + "\n") == first


def test_a_frame_cut_off_at_either_end_is_refused(tmp_path):
    _, text = framed({"big.bin": os.urandom(20 * KiB)}, tmp_path)
    lines = text.splitlines()
    killed = "\n".join(lines[:-1])  # no end line
    rotated = "\n".join(lines[3:])  # the begin line is in the rotated-away file
    for log in (killed, rotated):
        with pytest.raises(CollectError, match="the results frame is cut off"):
            unframe(log)


def test_a_log_without_a_frame_is_refused():
    with pytest.raises(CollectError, match="no results frame in the collector's log"):
        unframe("Traceback (most recent call last):\nMemoryError\n")


def test_corrupt_base64_a_missing_line_or_a_changed_byte_is_refused(tmp_path):
    _, text = framed({"big.bin": os.urandom(5 * KiB)}, tmp_path)
    begin, *body, end = text.splitlines()
    corrupt = [begin, body[0][:10] + "!" + body[0][11:], *body[1:], end]
    with pytest.raises(CollectError, match="not valid base64"):
        unframe("\n".join(corrupt))
    missing = [begin, *body[:2], *body[3:], end]
    with pytest.raises(CollectError, match="lines of it are missing"):
        unframe("\n".join(missing))
    changed = body[1][:5] + ("A" if body[1][5] != "A" else "B") + body[1][6:]
    with pytest.raises(CollectError, match="checksum mismatch"):
        unframe("\n".join([begin, body[0], changed, *body[2:], end]))


# ---------------------------------------------------------------- unpack


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def test_hostile_members_are_rejected_with_notes_and_nothing_is_written(tmp_path, monkeypatch):
    nul = tarfile.TarInfo("files/nul")
    nul.pax_headers = {"path": "files/a\x00b"}
    nul.size = 1
    archive = tar_gz(
        regular("../evil"),
        regular("/abs"),
        regular("files/../../x"),
        regular("files/dir\\..\\y"),
        regular("other/z"),
        regular("files/./dot"),
        (nul, b"x"),
        special("files/passwd", tarfile.SYMTYPE, "/etc/passwd"),
        special("files/hard", tarfile.LNKTYPE, "/etc/shadow"),
        special("files/null", tarfile.CHRTYPE),
        special("files/sub", tarfile.DIRTYPE),
        regular("files/good.xml", b"<testsuite/>"),
        regular("files/good.xml", b"<second copy/>"),
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    manifest, files = unpack(archive)
    assert files == {"good.xml": b"<testsuite/>"}
    assert manifest.notes == (
        "rejected ../evil: its path holds a '..' component",
        "rejected /abs: an absolute path",
        "rejected files/../../x: its path holds a '..' component",
        "rejected files/dir\\..\\y: its name holds a backslash",
        "rejected other/z: not under files/",
        "rejected files/./dot: its path holds an empty or '.' component",
        "rejected files/a\x00b: its name holds a NUL character",
        "rejected files/passwd: a symbolic link, not a regular file",
        "rejected files/hard: a hard link, not a regular file",
        "rejected files/null: a device, not a regular file",
        "rejected files/sub: a directory, not a regular file",
        "rejected files/good.xml: a second member of that name",
        "the archive has no manifest.json; its files are listed as found",
    )
    assert list(tmp_path.rglob("*")) == [work]


def test_a_member_that_decompresses_past_the_cap_stops_unpacking(tmp_path):
    archive = tar_gz(regular("files/first.txt", b"first"), regular("files/zeros.bin", bytes(16 * MiB)),
                     regular("files/after.txt", b"after"))
    assert len(archive) < 100 * KiB
    manifest, files = unpack(archive, max_total_bytes=1 * MiB)
    assert files == {"first.txt": b"first"}
    assert "stopped unpacking: the archive decompresses to over 1.0 MiB; 1 files were unpacked before that" \
        in manifest.notes


def test_a_small_looking_archive_whose_headers_inflate_past_the_cap_stops_unpacking():
    # A PAX header is read whole into memory by tarfile: 8 MiB of it ahead of
    # a one-byte file is a bomb the file's own header does not show.
    bomb, _ = special("././@PaxHeader", tarfile.XHDTYPE)
    bomb.size = 8 * MiB
    archive = tar_gz((bomb, bytes(8 * MiB)), regular("files/tiny.txt", b"t"), fmt=tarfile.GNU_FORMAT)
    manifest, files = unpack(archive, max_total_bytes=1 * MiB)
    assert files == {}
    assert manifest.notes[-2:] == (
        "stopped unpacking: the archive decompresses to over 1.0 MiB; 0 files were unpacked before that",
        "the archive has no manifest.json; its files are listed as found",
    )


def test_many_small_members_past_the_cap_stop_unpacking():
    archive = tar_gz(*(regular(f"files/{i:04}.txt", b"y" * 1000) for i in range(2000)))
    manifest, files = unpack(archive, max_total_bytes=1 * MiB)
    assert 0 < len(files) < 2000
    assert sum(len(d) for d in files.values()) < 1 * MiB
    assert any(n.startswith("stopped unpacking: the archive decompresses to over 1.0 MiB") for n in manifest.notes)


@pytest.mark.parametrize(("junk", "what"), [
    (b"", "not a gzip archive"),
    (os.urandom(4096), "not a gzip archive"),
    (b"PK\x03\x04 a zip file", "not a gzip archive"),
    (gzip.compress(b"plain text, not a tar " * 100), "not a tar archive"),
])
def test_what_is_not_a_gzipped_tar_is_refused(junk, what):
    with pytest.raises(CollectError, match=what):
        unpack(junk)


def test_a_truncated_archive_keeps_what_came_before_the_cut(tmp_path):
    write(tmp_path, {"a.txt": b"a", "b.bin": os.urandom(200 * KiB)})
    archive, _ = pack(tmp_path)
    manifest, files = unpack(archive[: len(archive) // 2])
    assert files == {"a.txt": b"a"}
    assert any(n.startswith("stopped unpacking: the archive is damaged") for n in manifest.notes)


def test_files_that_disagree_with_the_manifest_are_noted(tmp_path):
    listed = Manifest(files=(
        collect.FileEntry("changed.txt", 3, "0" * 64),
        collect.FileEntry("missing.txt", 1, "0" * 64),
    ), notes=("skipped pipe: a FIFO, not a regular file",))
    text = listed.to_json().encode()
    archive = tar_gz(regular("manifest.json", text), regular("files/changed.txt", b"new"),
                     regular("files/extra.txt", b"extra"))
    manifest, files = unpack(archive)
    assert files == {"changed.txt": b"new", "extra.txt": b"extra"}
    assert [f.path for f in manifest.files] == ["changed.txt", "extra.txt"]
    assert manifest.notes == (
        "skipped pipe: a FIFO, not a regular file",
        "changed.txt: its sha256 differs from the manifest's (it changed while it was collected, "
        "or the archive is damaged)",
        "extra.txt is in the archive but not listed in its manifest",
        "missing.txt is listed in the manifest but not in the archive",
    )


def test_an_unreadable_manifest_is_noted_and_the_files_listed_as_found():
    archive = tar_gz(regular("manifest.json", b"{not json"), regular("files/a.txt", b"a"))
    manifest, files = unpack(archive)
    assert files == {"a.txt": b"a"}
    assert len(manifest.notes) == 1
    assert manifest.notes[0].startswith("the archive's manifest.json is unreadable (the manifest is not JSON")


def test_the_manifest_round_trips_as_version_1_json():
    manifest = Manifest(files=(collect.FileEntry("r/junit.xml", 123, "ab" * 32),), notes=("a note",))
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert '"version": 1' in manifest.to_json()
    with pytest.raises(CollectError, match="not a version 1 manifest"):
        Manifest.from_json('{"version": 2, "files": [], "notes": []}')


def test_an_archive_frame_survives_base64_decoding_by_others(tmp_path):
    archive, text = framed({"junit.xml": b"<testsuite/>"}, tmp_path)
    body = "".join(text.splitlines()[1:-1])
    assert base64.b64decode(body) == archive
