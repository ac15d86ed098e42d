"""`testenv results --artifacts DIR` writes what a results index names, and
the index and its archives are hostile input (ConfigMaps in the user's
namespace, archives that test pods made). Nothing may ever be written outside
DIR, whatever they say; a bad entry is skipped with a message naming it and
why, and every good entry is still written.

No cluster: the index and archives are built in memory, the store is a dict,
and every test watches the whole of tmp_path (DIR is tmp_path/out, a victim
directory tmp_path/outside sits beside it) for anything changed outside DIR.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testenv.cli.cluster import CliError
from testenv.cli.fetch import write_artifacts
from testenv.results import AttemptResults, LogTail, RunIndex, run_index

Member = tuple[str, bytes] | tarfile.TarInfo
GOOD = {"junit.xml": b"<testsuite/>", "screens/a.png": b"\x89PNG"}
TAIL = b"last lines\n"


class Store:
    """The part of Environments that write_artifacts reads: bodies by key."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies

    def results_body(self, namespace: str, key: str) -> bytes | None:
        return self.bodies.get(key)


def archive(members: Iterable[Member]) -> bytes:
    """A gzip'd tar as the collector makes them (manifest.json first), with whatever members a test wants."""
    members = list(members)
    listed = [{"path": m[0].removeprefix("files/"), "size": len(m[1]), "sha256": ""}
              for m in members if isinstance(m, tuple)]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        manifest = json.dumps({"version": 1, "files": listed, "notes": []}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return out.getvalue()


def good_archive() -> bytes:
    return archive((f"files/{p}", d) for p, d in GOOD.items())


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def attempt(component: str = "unit", *, kind: str = "test", key: str | None = None, shard: int = 0,
            attempt: int = 0) -> AttemptResults:
    return AttemptResults(kind=kind, component=component, shard=shard, attempt=attempt, pod=f"{component}-pod",
                          key=key or f"k/{kind}-{component}-{shard}-{attempt}")


def tail(pod: str = "api-0", container: str = "main", key: str | None = None) -> LogTail:
    return LogTail(pod=pod, container=container, reason="Error", key=key or f"k/log-{pod}-{container}")


def index(attempts: Iterable[AttemptResults] = (), logs: Iterable[LogTail] = ()) -> RunIndex:
    return RunIndex(environment="env", namespace="ns", uid="u", run=1, store="configmap", attempts=list(attempts),
                    logs=list(logs))


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under root, links not followed: a file's bytes and inode, a link's target, a directory."""
    seen: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            seen[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            seen[relative] = ("dir",)
        else:
            seen[relative] = ("file", path.read_bytes(), st.st_ino)
    return seen


class Run:
    """write_artifacts into tmp_path/out, with tmp_path/outside as the victim beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"
        self.outside = root / "outside"
        self.outside.mkdir(exist_ok=True)
        (self.outside / "victim").write_bytes(b"keep")
        self.written: list[Path] = []
        self.message: str | None = None

    def __call__(self, the_index: RunIndex, bodies: dict[str, bytes]) -> Run:
        before = snapshot(self.root)
        try:
            for path in write_artifacts(Store(bodies), the_index, self.out):  # type: ignore[arg-type]
                self.written.append(path)
        except CliError as exc:
            self.message = exc.message
        after = snapshot(self.root)
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        escaped = [p for p in changed if not p.startswith("out/") and p != "out"]
        assert not escaped, f"written outside {self.out}: {escaped}"
        out = self.out.resolve()
        assert all(p.resolve().is_relative_to(out) for p in self.written), self.written
        return self

    def files(self) -> dict[str, bytes]:
        """What is under out as regular files, links not followed."""
        return {p: v[1] for p, v in snapshot(self.out).items() if v[0] == "file"} if self.out.exists() else {}

    def skipped(self, *words: str) -> None:
        """The run ended in a message that names each word."""
        assert self.message is not None, "nothing was reported as skipped"
        for word in words:
            assert word in self.message, f"{word!r} not in:\n{self.message}"


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def good_files(where: str = "test-unit/shard-0/attempt-0") -> dict[str, bytes]:
    return {f"{where}/{p}": d for p, d in GOOD.items()}


# ---------------------------------------------------------------- the good case


def test_a_clean_index_writes_every_file_and_tail_and_reports_nothing(run: Run) -> None:
    the_index = run_index({
        "environment.json": json.dumps({"environment": "env", "namespace": "ns", "uid": "u", "run": 1}),
        "attempt.test.unit.s0.a0.json": attempt().model_dump_json(),
        "attempt.seed.db.s1.a2.json": attempt("db", kind="seed", shard=1, attempt=2).model_dump_json(),
        "log.api-0.main.json": tail().model_dump_json(),
    })
    run(the_index, {"k/test-unit-0-0": good_archive(), "k/seed-db-1-2": good_archive(), "k/log-api-0-main": TAIL})
    assert run.message is None
    assert run.files() == {**good_files(), **good_files("seed-db/shard-1/attempt-2"), "logs/api-0.main.log": TAIL}
    assert len(run.written) == 5


# ---------------------------------------------------------------- archive members


@pytest.mark.parametrize(("name", "why"), [
    ("files/../../../../outside/x", "'..'"),
    ("files/../../../../outside/victim", "'..'"),
    ("../../../outside/x", "'..'"),
    ("files/a/../../../../../outside/x", "'..'"),
    ("/OUTSIDE/x", "absolute"),
    ("/OUTSIDE/victim", "absolute"),
    ("files//OUTSIDE/x", "empty"),
    ("files/./x", "'.'"),
    ("files/..\\..\\..\\..\\outside\\x", "backslash"),
    ("files/C:\\outside\\x", "backslash"),
    ("files/\\\\server\\share\\x", "backslash"),
    ("outside/x", "not under files/"),
])
def test_an_archive_member_whose_path_would_escape_is_named_and_the_rest_written(
        run: Run, name: str, why: str) -> None:
    name = name.replace("/OUTSIDE", str(run.outside))
    bodies = {"k/test-unit-0-0": archive([*((f"files/{p}", d) for p, d in GOOD.items()), (name, b"pwned")]),
              "k/log-api-0-main": TAIL}
    run(index([attempt()], [tail()]), bodies)
    assert run.files() == {**good_files(), "logs/api-0.main.log": TAIL}
    run.skipped(name, why, "unit", "shard 0, attempt 0")


def test_a_drive_like_member_name_is_an_ordinary_file_name_inside_the_directory(run: Run) -> None:
    run(index([attempt()]), {"k/test-unit-0-0": archive([("files/C:/x", b"c"), ("files/c:x", b"d")])})
    assert run.message is None
    assert run.files() == {"test-unit/shard-0/attempt-0/C:/x": b"c", "test-unit/shard-0/attempt-0/c:x": b"d"}


@pytest.mark.parametrize(("member", "why"), [
    (special("files/link", tarfile.SYMTYPE, "/OUTSIDE/victim"), "symbolic link"),
    (special("files/up", tarfile.SYMTYPE, "../../../../outside"), "symbolic link"),
    (special("files/hard", tarfile.LNKTYPE, "/OUTSIDE/victim"), "hard link"),
    (special("files/dev", tarfile.CHRTYPE), "device"),
    (special("files/fifo", tarfile.FIFOTYPE), "FIFO"),
    (special("files/dir", tarfile.DIRTYPE), "directory"),
])
def test_a_member_that_is_not_a_regular_file_is_named_and_the_rest_written(
        run: Run, member: tarfile.TarInfo, why: str) -> None:
    member.linkname = member.linkname.replace("/OUTSIDE", str(run.outside))
    # A file "through" the link comes after it: it must land in a directory, not the link's target.
    through = (f"{member.name}/x", b"through")
    bodies = {"k/test-unit-0-0": archive([member, through, *((f"files/{p}", d) for p, d in GOOD.items())])}
    run(index([attempt()]), bodies)
    assert run.files() == {**good_files(), f"test-unit/shard-0/attempt-0/{through[0][6:]}": b"through"}
    assert not (run.out / "test-unit/shard-0/attempt-0" / member.name[6:]).is_symlink()
    run.skipped(member.name, why)


def test_an_archive_that_cannot_be_read_is_named_and_the_other_entries_written(run: Run) -> None:
    run(index([attempt("broken"), attempt()], [tail()]),
        {"k/test-broken-0-0": b"not gzip at all", "k/test-unit-0-0": good_archive(), "k/log-api-0-main": TAIL})
    assert run.files() == {**good_files(), "logs/api-0.main.log": TAIL}
    run.skipped("broken", "cannot be read")


# ---------------------------------------------------------------- names from the index


HOSTILE_NAMES = ["..", "../../outside", "../../../../outside/x", "/OUTSIDE", "a/b", "a/../../outside", ".",
                 "", "a\\..\\..\\b", "C:", "C:\\outside", "x\x00y", "Up", "a\nb", "up\n", "-up", "up-"]


@pytest.mark.parametrize("value", HOSTILE_NAMES)
@pytest.mark.parametrize("field", ["kind", "component"])
def test_an_attempt_whose_index_names_are_not_kubernetes_names_is_named_and_the_rest_written(
        run: Run, field: str, value: str) -> None:
    value = value.replace("/OUTSIDE", str(run.outside))
    bad = attempt().model_copy(update={field: value, "key": "k/bad"})
    run(index([bad, attempt()], [tail()]),
        {"k/bad": archive([("files/pwned", b"pwned")]), "k/test-unit-0-0": good_archive(), "k/log-api-0-main": TAIL})
    assert run.files() == {**good_files(), "logs/api-0.main.log": TAIL}
    run.skipped(repr(value), field)


@pytest.mark.parametrize("value", HOSTILE_NAMES)
@pytest.mark.parametrize("field", ["pod", "container"])
def test_a_log_tail_whose_pod_or_container_is_not_a_kubernetes_name_is_named_and_the_rest_written(
        run: Run, field: str, value: str) -> None:
    value = value.replace("/OUTSIDE", str(run.outside))
    bad = tail().model_copy(update={field: value, "key": "k/bad"})
    run(index([attempt()], [bad, tail("api-1")]),
        {"k/bad": b"pwned", "k/test-unit-0-0": good_archive(), "k/log-api-1-main": TAIL})
    assert run.files() == {**good_files(), "logs/api-1.main.log": TAIL}
    run.skipped(repr(value), field)


def test_a_kind_other_than_test_or_seed_is_named_and_the_rest_written(run: Run) -> None:
    # "test-x" + "y" would share a directory with "test" + "x-y".
    run(index([attempt("y", kind="test-x", key="k/bad"), attempt("x-y", key="k/good")]),
        {"k/bad": archive([("files/junit.xml", b"other")]), "k/good": good_archive()})
    assert run.files() == good_files("test-x-y/shard-0/attempt-0")
    run.skipped("'test-x'", "kind")


# ---------------------------------------------------------------- what is already in DIR


def test_a_directory_symlink_in_dir_pointing_outside_is_not_written_through(run: Run) -> None:
    run.out.mkdir()
    (run.out / "test-unit").symlink_to(run.outside, target_is_directory=True)
    (run.out / "logs").symlink_to("../outside", target_is_directory=True)
    run(index([attempt(), attempt("db", kind="seed")], [tail()]),
        {"k/test-unit-0-0": good_archive(), "k/seed-db-0-0": good_archive(), "k/log-api-0-main": TAIL})
    assert run.files() == good_files("seed-db/shard-0/attempt-0")
    assert sorted(os.listdir(run.outside)) == ["victim"]
    run.skipped("test-unit/shard-0/attempt-0/junit.xml", "logs/api-0.main.log", "outside")


def test_a_file_symlink_in_dir_pointing_outside_is_replaced_not_written_through(run: Run) -> None:
    where = run.out / "test-unit/shard-0/attempt-0"
    where.mkdir(parents=True)
    (where / "junit.xml").symlink_to(run.outside / "victim")
    (where / "screens").mkdir()
    (where / "screens/a.png").symlink_to(run.outside / "not-there-yet")  # dangling
    (run.out / "logs").mkdir()
    (run.out / "logs/api-0.main.log").symlink_to("../../outside/victim")
    run(index([attempt()], [tail()]), {"k/test-unit-0-0": good_archive(), "k/log-api-0-main": TAIL})
    assert (run.outside / "victim").read_bytes() == b"keep"
    assert sorted(os.listdir(run.outside)) == ["victim"]
    # Whether replaced or skipped, nothing went through; here they are replaced by the real files.
    assert run.message is None
    assert run.files() == {**good_files(), "logs/api-0.main.log": TAIL}


def test_a_hard_link_in_dir_to_a_file_outside_is_replaced_not_written_through(run: Run) -> None:
    (run.out / "logs").mkdir(parents=True)
    os.link(run.outside / "victim", run.out / "logs/api-0.main.log")
    run(index(logs=[tail()]), {"k/log-api-0-main": TAIL})
    assert (run.outside / "victim").read_bytes() == b"keep"
    assert run.files() == {"logs/api-0.main.log": TAIL}
    assert run.message is None


def test_a_symlink_loop_in_dir_is_named_and_the_rest_written(run: Run) -> None:
    run.out.mkdir()
    (run.out / "logs").symlink_to("logs")
    (run.out / "test-unit").symlink_to("test-loop")
    (run.out / "test-loop").symlink_to("test-unit")
    run(index([attempt(), attempt("db", kind="seed")], [tail()]),
        {"k/test-unit-0-0": good_archive(), "k/seed-db-0-0": good_archive(), "k/log-api-0-main": TAIL})
    assert run.files() == good_files("seed-db/shard-0/attempt-0")
    run.skipped("logs/api-0.main.log", "test-unit/shard-0/attempt-0/junit.xml")


def test_a_symlink_in_dir_pointing_inside_it_is_followed(run: Run) -> None:
    (run.out / "elsewhere").mkdir(parents=True)
    (run.out / "logs").symlink_to("elsewhere", target_is_directory=True)
    run(index(logs=[tail()]), {"k/log-api-0-main": TAIL})
    assert run.message is None
    assert run.files() == {"elsewhere/api-0.main.log": TAIL}


def test_a_dir_that_is_itself_a_symlink_is_the_users_choice(run: Run, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    run.out.symlink_to(tmp_path / "real", target_is_directory=True)
    run.root = tmp_path / "outside"  # watch only the victim: the real directory is where DIR points
    run(index(logs=[tail()]), {"k/log-api-0-main": TAIL})
    assert run.message is None
    assert (tmp_path / "real/logs/api-0.main.log").read_bytes() == TAIL


# ---------------------------------------------------------------- duplicates


def test_two_index_entries_for_the_same_attempt_do_not_overwrite_each_other(run: Run) -> None:
    # The index's keys are free-form: a second entry may claim an attempt already listed.
    the_index = run_index({
        "attempt.test.unit.s0.a0.json": attempt(key="k/one").model_dump_json(),
        "attempt.zz-forged.json": attempt(key="k/two").model_dump_json(),
    })
    run(the_index, {"k/one": good_archive(), "k/two": archive([("files/junit.xml", b"forged"),
                                                               ("files/extra.txt", b"extra")])})
    files = run.files()
    assert files["test-unit/shard-0/attempt-0/junit.xml"] == GOOD["junit.xml"]
    assert files["test-unit/shard-0/attempt-0/extra.txt"] == b"extra"
    run.skipped("test-unit/shard-0/attempt-0/junit.xml", "lists it twice")


def test_two_log_tails_that_make_the_same_file_name_do_not_overwrite_each_other(run: Run) -> None:
    # pod "a.b" + container "c" and pod "a" + container "b.c": both logs/a.b.c.log.
    run(index(logs=[tail("a.b", "c", key="k/one"), tail("a", "b.c", key="k/two"), tail()]),
        {"k/one": b"one", "k/two": b"two", "k/log-api-0-main": TAIL})
    assert run.files() == {"logs/a.b.c.log": b"one", "logs/api-0.main.log": TAIL}
    run.skipped("logs/a.b.c.log", "already written")


def test_a_file_and_a_directory_of_one_name_in_an_archive_keep_the_first_and_name_the_other(run: Run) -> None:
    run(index([attempt()]), {"k/test-unit-0-0": archive([("files/a", b"file"), ("files/a/b", b"under"),
                                                         ("files/z", b"z")])})
    where = "test-unit/shard-0/attempt-0"
    assert run.files() == {f"{where}/a": b"file", f"{where}/z": b"z"}
    run.skipped(f"{where}/a/b")


def test_a_second_run_into_the_same_directory_overwrites_its_own_files(run: Run) -> None:
    bodies = {"k/test-unit-0-0": good_archive(), "k/log-api-0-main": TAIL}
    run(index([attempt()], [tail()]), bodies)
    run(index([attempt()], [tail()]), {**bodies, "k/log-api-0-main": b"newer"})
    assert run.message is None
    assert run.files() == {**good_files(), "logs/api-0.main.log": b"newer"}


def test_the_message_is_capped_but_counts_every_skip(run: Run) -> None:
    members = [(f"files/../{i}", b"x") for i in range(60)]
    run(index([attempt()]), {"k/test-unit-0-0": archive([*members, ("files/ok", b"ok")])})
    assert run.files() == {"test-unit/shard-0/attempt-0/ok": b"ok"}
    assert run.message is not None and "60" in run.message and len(run.message) < 8000


# ---------------------------------------------------------------- anything at all


PARTS = st.sampled_from(["..", ".", "", "a", "b", "outside", "victim", "\\", "..\\..", "C:", "/", "logs"])
NAMES = st.lists(PARTS, min_size=1, max_size=6).map("/".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=st.lists(st.tuples(NAMES, st.sampled_from([b"", b"x"])), max_size=6),
       links=st.lists(st.tuples(NAMES, NAMES), max_size=3),
       names=st.lists(st.tuples(NAMES, NAMES), max_size=3),
       planted=st.lists(st.tuples(NAMES, st.sampled_from(["../outside", "../../outside/victim", "/OUTSIDE", "."])),
                        max_size=3))
def test_whatever_the_index_archives_and_directory_hold_nothing_lands_outside(
        members: list[tuple[str, bytes]], links: list[tuple[str, str]], names: list[tuple[str, str]],
        planted: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as temp:
        run = Run(Path(temp))
        run.out.mkdir()
        for where, target in planted:  # symlinks already in DIR, some pointing outside
            link = run.out / where.strip("/").replace("\\", "_")
            try:
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target.replace("/OUTSIDE", str(run.outside)))
            except (OSError, ValueError):
                pass
        tar_members: list[Member] = [(f"files/{n}", d) for n, d in members]
        tar_members += [special(f"files/{n}", tarfile.SYMTYPE, t) for n, t in links]
        attempts = [attempt(c or "x", kind=k or "test", key=f"k/{i}") for i, (k, c) in enumerate(names)]
        logs = [tail(p or "p", c or "c", key=f"k/log{i}") for i, (p, c) in enumerate(names)]
        bodies = {f"k/{i}": archive(tar_members) for i in range(len(names))}
        bodies |= {f"k/log{i}": TAIL for i in range(len(names))}
        run(index([*attempts, attempt()], [*logs, tail()]),
            {**bodies, "k/test-unit-0-0": archive(tar_members), "k/log-api-0-main": TAIL})
        assert (run.outside / "victim").read_bytes() == b"keep"
