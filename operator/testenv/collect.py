"""A suite's results directory as one archive, and back: the format the
`testenv-collect` sidecar prints and the operator reads from its log.

The archive is a deterministic gzip'd tar (`manifest.json`, then `files/<path>`),
framed in base64 between marker lines so it can be found in a log that holds
other lines. Packing trusts nothing in the directory (no symlink is followed,
nothing but regular files is read, big files are not even opened); unpacking
trusts nothing in the archive (paths, member types and sizes are checked, and
decompression is bounded). Pure: stdlib only, bytes and paths in, values out.
"""

from __future__ import annotations

import base64
import binascii
import errno
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESULTS_DIR = "/testenv/results"
RESULTS_ENV = "TESTENV_RESULTS_DIR"
COLLECTOR_CONTAINER = "testenv-collect"

MiB = 1024 * 1024
# What the operator accepts decompressed; `pack` never makes more.
MAX_TOTAL_BYTES = 64 * MiB
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
FILES_PREFIX = "files/"
# A hostile or runaway directory must not grow the manifest without bound.
MAX_NOTES = 100
MAX_DEPTH = 64

# Lines of 1024 characters, not the classic 76: the kubelet stores each log
# line with a ~40-byte prefix (timestamp, stream, tag) and rotates the file at
# 10 MiB; with 76-character lines a 6 MiB archive would be ~13 MiB on disk.
FRAME_LINE_CHARS = 1024
_BEGIN = re.compile(r"==== testenv-results v1 begin bytes=(\d+) sha256=([0-9a-f]{64}) ====")
_END = "==== testenv-results v1 end ===="

_CHUNK = 1024 * 1024
_LEVEL = 6
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


class CollectError(ValueError):
    """A collector's log or archive that cannot be read at all."""


@dataclass(frozen=True)
class Caps:
    """Limits on what one pod's results may cost."""

    max_file_bytes: int = 4 * MiB
    # The compressed archive: it travels base64-encoded (4/3 bigger) through a
    # container log, which the kubelet rotates at 10 MiB.
    max_archive_bytes: int = 6 * MiB
    # The uncompressed tar, manifest and headers included (what `unpack` accepts).
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_files: int = 10_000


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({
            "version": MANIFEST_VERSION,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "notes": list(self.notes),
        }, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            raw = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CollectError(f"the manifest is not JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
            raise CollectError(f"the manifest is not a version {MANIFEST_VERSION} manifest")
        files, notes = raw.get("files", []), raw.get("notes", [])
        if not isinstance(files, list) or not all(_is_entry(f) for f in files):
            raise CollectError("the manifest's files are not a list of {path, size, sha256}")
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise CollectError("the manifest's notes are not a list of strings")
        return cls(files=tuple(FileEntry(f["path"], f["size"], f["sha256"]) for f in files), notes=tuple(notes))


def _is_entry(value: object) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str)
            and isinstance(value.get("size"), int) and not isinstance(value.get("size"), bool))


def is_report(path: str) -> bool:
    """A JUnit report, as far as a file name can tell."""
    return path.lower().endswith(".xml")


def human_size(n: float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _printable(path: str) -> str:
    """A name as a note can show it, even one that is not valid UTF-8."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


class _Notes:
    """The first MAX_NOTES notes, and how many more there were."""

    def __init__(self, first: Iterable[str] = ()) -> None:
        self._kept: list[str] = []
        self._more = 0
        for note in first:
            self.add(note)

    def add(self, note: str) -> None:
        if len(self._kept) < MAX_NOTES:
            self._kept.append(note)
        else:
            self._more += 1

    def all(self) -> tuple[str, ...]:
        return (*self._kept, f"... and {self._more} more notes") if self._more else tuple(self._kept)


# ---------------------------------------------------------------- packing


@dataclass
class _Walk:
    """The regular files under a results directory, found without following a link."""

    caps: Caps
    notes: _Notes
    found: dict[str, int] = field(default_factory=dict)  # path -> size
    full: bool = False

    def directory(self, dir_fd: int, prefix: str, depth: int) -> None:
        try:
            with os.scandir(dir_fd) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            self.notes.add(f"skipped {_printable(prefix) or './'}: it could not be listed ({exc.strerror})")
            return
        for name in names:
            if self.full:
                return
            self.entry(dir_fd, name, prefix + name, depth)

    def entry(self, dir_fd: int, name: str, path: str, depth: int) -> None:
        shown = _printable(path)
        if "\\" in name:
            self.notes.add(f"skipped {shown}: its name holds a backslash")
            return
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            self.notes.add(f"skipped {shown}: its name is not valid UTF-8")
            return
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            self.notes.add(f"skipped {shown}: it could not be read ({exc.strerror})")
            return
        if stat.S_ISDIR(st.st_mode):
            self.subdirectory(dir_fd, name, path, depth)
        elif not stat.S_ISREG(st.st_mode):
            self.notes.add(f"skipped {shown}: {_kind(st.st_mode)}, not a regular file")
        elif st.st_size > self.caps.max_file_bytes:
            self.notes.add(f"skipped {shown}: {human_size(st.st_size)} is over the "
                           f"{human_size(self.caps.max_file_bytes)} per-file cap")
        elif len(self.found) >= self.caps.max_files:
            self.notes.add(f"stopped at {self.caps.max_files} files: the rest of the results directory "
                           "was not collected")
            self.full = True
        else:
            self.found[path] = st.st_size

    def subdirectory(self, dir_fd: int, name: str, path: str, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self.notes.add(f"skipped {_printable(path)}/: it is nested over {MAX_DEPTH} directories deep")
            return
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
        except OSError as exc:
            self.notes.add(f"skipped {_printable(path)}/: it could not be listed ({exc.strerror})")
            return
        try:
            self.directory(fd, path + "/", depth + 1)
        finally:
            os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _open_beneath(root_fd: int, path: str) -> int:
    """Open root/path refusing a symbolic link at every step (a race with the walk cannot escape root)."""
    *dirs, name = path.split("/")
    fd = root_fd
    try:
        for part in dirs:
            inner = os.open(part, _OPEN_DIR, dir_fd=fd)
            if fd != root_fd:
                os.close(fd)
            fd = inner
        return os.open(name, _OPEN_FILE, dir_fd=fd)
    finally:
        if fd != root_fd:
            os.close(fd)


def _read(root_fd: int, path: str, cap: int) -> bytes:
    """At most cap bytes of a regular file; OSError if it is not one (any more), ValueError if it grew over cap."""
    fd = _open_beneath(root_fd, path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"it became {_kind(st.st_mode)}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise ValueError(f"it grew over the {human_size(cap)} per-file cap while being collected")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _tar_cost(path: str, size: int) -> int:
    """Bytes a member adds to the uncompressed tar: header, data in 512-byte blocks, a PAX header for long names,
    and its manifest line."""
    pax = 3 * 512 if len(path) > 90 or not path.isascii() else 0
    return 512 + -(-size // 512) * 512 + pax + 160 + 2 * len(path)


def _drop_order(sizes: Mapping[str, int]) -> list[str]:
    """What is cut first when the results are over a cap: other files before reports, the largest first."""
    return sorted(sizes, key=lambda p: (is_report(p), -sizes[p], p))


def _to_cut(order: Sequence[str], cost: Mapping[str, int], base: int, cap: float) -> int:
    """How many of order to drop (from its start) so that base + the rest's cost is within cap."""
    total = base + sum(cost[p] for p in order)
    dropped = 0
    while total > cap and dropped < len(order):
        total -= cost[order[dropped]]
        dropped += 1
    return dropped


class _Counting:
    """A write-only file that counts what goes through it (the uncompressed tar's length)."""

    def __init__(self, inner: gzip.GzipFile) -> None:
        self.inner = inner
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self.inner.write(data)


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _write(manifest: Manifest, contents: Mapping[str, bytes]) -> tuple[bytes, int]:
    """The archive's bytes and its uncompressed length."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=_LEVEL, mtime=0) as gz:
        counting = _Counting(gz)
        with tarfile.open(fileobj=counting, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            text = manifest.to_json().encode("utf-8")
            tar.addfile(_member(MANIFEST_NAME, len(text)), io.BytesIO(text))
            for entry in manifest.files:
                data = contents[entry.path]
                tar.addfile(_member(FILES_PREFIX + entry.path, len(data)), io.BytesIO(data))
    return out.getvalue(), counting.count


def empty_archive(*notes: str) -> bytes:
    """An archive with no files whose manifest says why (the collector's answer when packing failed)."""
    return _write(Manifest(notes=_Notes(notes).all()), {})[0]


def _cut_note(path: str, size: int, cap: str) -> str:
    return f"cut {_printable(path)} ({human_size(size)}): the suite's results are over the {cap} cap"


def pack(root: Path, caps: Caps = Caps()) -> tuple[bytes, Manifest]:
    """The archive of the regular files under root, and its manifest.

    Symbolic links, FIFOs, sockets and devices are skipped, and so are files
    over the per-file cap (not opened). When the results are over the archive
    cap (compressed) or the total cap (uncompressed), files are cut, others
    before JUnit reports, the largest first. Every skip and cut is a note.
    """
    notes = _Notes()
    try:
        root_fd = os.open(root, _OPEN_DIR)
    except OSError as exc:
        notes.add(f"no results were collected: {root} {_root_problem(root, exc)}")
        return _write(Manifest(notes=notes.all()), {})[0], Manifest(notes=notes.all())
    try:
        walk = _Walk(caps, notes)
        walk.directory(root_fd, "", 0)
        sizes = walk.found
        order = _drop_order(sizes)
        base = 10 * 1024 + 1024 + 1024 + sum(len(n) + 8 for n in notes.all())
        # The uncompressed cap first, from sizes alone: what is cut for it is never read.
        raw_cost = {p: _tar_cost(p, s) for p, s in sizes.items()}
        cut_raw = _to_cut(order, raw_cost, base, caps.max_total_bytes)
        for path in order[:cut_raw]:
            notes.add(_cut_note(path, sizes[path], f"{human_size(caps.max_total_bytes)} uncompressed"))
        contents: dict[str, bytes] = {}
        for path in sorted(order[cut_raw:]):
            try:
                contents[path] = _read(root_fd, path, caps.max_file_bytes)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                notes.add(f"skipped {_printable(path)}: it could not be read ({reason})")
    finally:
        os.close(root_fd)
    return _fit(contents, [p for p in order if p in contents], notes, caps)


def _root_problem(root: Path, exc: OSError) -> str:
    # O_NOFOLLOW | O_DIRECTORY on a symbolic link is ELOOP or ENOTDIR, as the kernel likes.
    if exc.errno == errno.ELOOP or root.is_symlink():
        return "is a symbolic link"
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, NotADirectoryError):
        return "is not a directory"
    return f"could not be opened ({exc.strerror})"


def _fit(contents: dict[str, bytes], order: list[str], notes: _Notes, caps: Caps) -> tuple[bytes, Manifest]:
    """Cut files (in order) until the archive is within both caps; estimates first, then the real thing."""
    # Per member beyond its data: its header (~60 bytes compressed) and manifest line (~70 and the path).
    packed = {p: len(zlib.compress(contents[p], _LEVEL)) + 128 + len(p) for p in order}
    raw = {p: _tar_cost(p, len(contents[p])) for p in order}
    base_packed, base_raw = 256 + sum(len(n) for n in notes.all()), 12 * 1024
    target_packed, target_raw = float(caps.max_archive_bytes), float(caps.max_total_bytes)
    dropped = 0
    while True:
        dropped = max(dropped, _to_cut(order, packed, base_packed, target_packed),
                      _to_cut(order, raw, base_raw, target_raw))
        kept = sorted(order[dropped:])
        manifest = Manifest(
            files=tuple(FileEntry(p, len(contents[p]), _sha256(contents[p])) for p in kept),
            notes=_Notes([*notes.all(), *(_cut_note(p, len(contents[p]), human_size(caps.max_archive_bytes))
                                          for p in order[:dropped])]).all(),
        )
        archive, length = _write(manifest, contents)
        if (len(archive) <= caps.max_archive_bytes and length <= caps.max_total_bytes) or not kept:
            return archive, manifest
        # The estimate was short: aim lower by as much as it missed, and cut at least one more.
        target_packed *= min(1.0, caps.max_archive_bytes / len(archive)) * 0.95
        target_raw *= min(1.0, caps.max_total_bytes / length) * 0.95
        dropped += 1


# ---------------------------------------------------------------- framing


def frame(archive: bytes) -> str:
    """The archive as the collector prints it: marker lines around base64 lines."""
    encoded = base64.b64encode(archive).decode("ascii")
    lines = [encoded[i:i + FRAME_LINE_CHARS] for i in range(0, len(encoded), FRAME_LINE_CHARS)]
    begin = f"==== testenv-results v1 begin bytes={len(archive)} sha256={_sha256(archive)} ===="
    return "\n".join([begin, *lines, _END]) + "\n"


def unframe(log_text: str) -> bytes:
    """The archive of the last complete frame in a log; CollectError if there is none or it is damaged."""
    lines = [line.strip() for line in log_text.splitlines()]
    ends = [i for i, line in enumerate(lines) if line == _END]
    begins = [i for i, line in enumerate(lines) if _BEGIN.fullmatch(line)]
    if not ends and not begins:
        raise CollectError("no results frame in the collector's log")
    end = ends[-1] if ends else None
    begin = max((i for i in begins if end is not None and i < end), default=None)
    if end is None or begin is None:
        raise CollectError("the results frame is cut off (the log was rotated or the container was killed)")
    header = _BEGIN.fullmatch(lines[begin])
    assert header is not None
    size, digest = int(header.group(1)), header.group(2)
    try:
        archive = base64.b64decode("".join(lines[begin + 1:end]), validate=True)
    except binascii.Error as exc:
        raise CollectError(f"the results frame is not valid base64 ({exc})") from None
    if len(archive) != size:
        raise CollectError(f"the results frame holds {len(archive)} bytes where its header says {size}: "
                           "lines of it are missing from the log")
    if _sha256(archive) != digest:
        raise CollectError("checksum mismatch: the results frame's sha256 is not the one its header gives")
    return archive


# ---------------------------------------------------------------- unpacking


class _TooBig(Exception):
    pass


class _Damaged(Exception):
    pass


class _BoundedGunzip:
    """gzip data decompressed on demand, never more than limit bytes in all (a bomb stops here)."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data, self._offset = data, 0
        self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._limit = limit
        self.produced = 0

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size < 0 else size
        out = bytearray()
        while len(out) < size and not self._inflate.eof:
            pending = self._inflate.unconsumed_tail
            if not pending and self._offset < len(self._data):
                pending = self._data[self._offset:self._offset + _CHUNK]
                self._offset += len(pending)
            try:
                piece = self._inflate.decompress(pending, min(size - len(out), self._limit - self.produced + 1))
            except zlib.error as exc:
                raise _Damaged(f"not gzip data: {exc}") from None
            if not piece and not pending:
                raise _Damaged("the gzip data ends early")
            self.produced += len(piece)
            if self.produced > self._limit:
                raise _TooBig
            out += piece
        return bytes(out)


def path_problem(relative: str) -> str | None:
    """Why `relative` cannot be written below a directory as it is, or None."""
    if "\x00" in relative:
        return "its name holds a NUL character"
    if "\\" in relative:
        return "its name holds a backslash"
    if relative.startswith("/"):
        return "an absolute path"
    parts = relative.split("/")
    if ".." in parts:
        return "its path holds a '..' component"
    if any(part in ("", ".") for part in parts):
        return "its path holds an empty or '.' component"
    return None


def _name_problem(name: str) -> str | None:
    if name == MANIFEST_NAME:
        return None
    if problem := path_problem(name):
        return problem
    if not name.startswith(FILES_PREFIX) or name == FILES_PREFIX:
        return f"not under {FILES_PREFIX}"
    return None


def _member_problem(member: tarfile.TarInfo) -> str | None:
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and not member.issparse():
        return _name_problem(member.name)
    if member.issym():
        return "a symbolic link, not a regular file"
    if member.islnk():
        return "a hard link, not a regular file"
    if member.ischr() or member.isblk():
        return "a device, not a regular file"
    if member.isfifo():
        return "a FIFO, not a regular file"
    if member.isdir():
        return "a directory, not a regular file"
    return f"a member of type {member.type!r}, not a regular file"


@dataclass
class _Unpacked:
    notes: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: Manifest | None = None
    manifest_seen: bool = False
    members: int = 0

    def take(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.members += 1
        shown = _printable(member.name)
        problem = _member_problem(member)
        if problem:
            self.notes.append(f"rejected {shown}: {problem}")
            return
        is_manifest = member.name == MANIFEST_NAME
        path = member.name.removeprefix(FILES_PREFIX)
        if self.manifest_seen if is_manifest else path in self.files:
            self.notes.append(f"rejected {shown}: a second member of that name")
            return
        source = tar.extractfile(member)
        assert source is not None  # a regular file's
        chunks = []
        while chunk := source.read(_CHUNK):
            chunks.append(chunk)
        data = b"".join(chunks)
        if not is_manifest:
            self.files[path] = data
            return
        self.manifest_seen = True
        try:
            self.manifest = Manifest.from_json(data)
        except CollectError as exc:
            self.notes.append(f"the archive's {MANIFEST_NAME} is unreadable ({exc}); its files are listed as found")


def unpack(archive: bytes, *, max_total_bytes: int = MAX_TOTAL_BYTES) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and files of an archive, checked, in memory (nothing is written anywhere).

    A member that is not a regular file under files/ is rejected with a note;
    unpacking stops with a note where the decompressed archive would go over
    max_total_bytes. CollectError if the archive is not a gzip'd tar at all.
    The returned manifest lists what was unpacked (sizes and sha256 as
    found), its notes are the archive's followed by unpacking's own.
    """
    reader = _BoundedGunzip(archive, max_total_bytes)
    found = _Unpacked()
    stopped = False
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                found.take(tar, member)
    except _TooBig:
        stopped = True
        found.notes.append(f"stopped unpacking: the archive decompresses to over {human_size(max_total_bytes)}; "
                           f"{len(found.files)} files were unpacked before that")
    except (_Damaged, tarfile.TarError) as exc:
        if not found.members:
            kind = "gzip" if isinstance(exc, _Damaged) else "tar"
            raise CollectError(f"the results archive is not a {kind} archive ({exc})") from None
        stopped = True
        found.notes.append(f"stopped unpacking: the archive is damaged ({exc})")
    return _checked(found, stopped), dict(sorted(found.files.items()))


def _checked(found: _Unpacked, stopped: bool) -> Manifest:
    """The manifest of what was found, with a note for each disagreement with the archive's own."""
    notes: list[str] = []
    if found.manifest is None and not found.manifest_seen:
        notes.append(f"the archive has no {MANIFEST_NAME}; its files are listed as found")
    listed = {entry.path: entry for entry in found.manifest.files} if found.manifest else {}
    entries = []
    for path, data in sorted(found.files.items()):
        entry = FileEntry(path, len(data), _sha256(data))
        entries.append(entry)
        claimed = listed.get(path)
        if found.manifest is None:
            continue
        if claimed is None:
            notes.append(f"{_printable(path)} is in the archive but not listed in its manifest")
        elif (claimed.size, claimed.sha256) != (entry.size, entry.sha256):
            notes.append(f"{_printable(path)}: its sha256 differs from the manifest's "
                         "(it changed while it was collected, or the archive is damaged)")
    if not stopped:
        notes.extend(f"{_printable(p)} is listed in the manifest but not in the archive"
                     for p in sorted(set(listed) - set(found.files)))
    own = found.manifest.notes if found.manifest else ()
    return Manifest(files=tuple(entries), notes=(*own, *found.notes, *notes))
