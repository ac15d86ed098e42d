"""`testenv-collect`: the results sidecar of seed and suite pods. It idles
until the kubelet signals the end of the test container, then prints the
results directory as one framed archive on stdout and exits 0, whatever the
directory holds. The format and every check are in collect.py; this runs in
every test pod, so it imports nothing beyond the stdlib and that module.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .collect import RESULTS_DIR, Caps, empty_archive, frame, pack

READY = "testenv-collect: waiting for the end of the test container"
_ENDS = {signal.SIGTERM, signal.SIGINT}


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of bytes")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testenv-collect", description=__doc__)
    parser.add_argument("--dir", default=RESULTS_DIR, help="the results directory (default: %(default)s)")
    parser.add_argument("--max-file-bytes", type=_positive, default=Caps.max_file_bytes,
                        help="a bigger file is skipped (default: %(default)s)")
    parser.add_argument("--max-archive-bytes", type=_positive, default=Caps.max_archive_bytes,
                        help="the compressed archive's cap; files are cut to fit (default: %(default)s)")
    parser.add_argument("--once", action="store_true", help="pack now instead of waiting for SIGTERM")
    return parser


def _wait_for_the_end() -> None:
    # Blocked, then waited for: a signal that comes at any moment after this is
    # kept pending for sigwait, never lost between a check and a pause (and PID 1
    # ignores a signal it has no handler for, which blocking side-steps too).
    signal.pthread_sigmask(signal.SIG_BLOCK, _ENDS)
    print(READY, file=sys.stderr, flush=True)
    signal.sigwait(_ENDS)


def _archive(root: Path, caps: Caps) -> bytes:
    try:
        return pack(root, caps)[0]
    # On purpose: whatever the directory did to the packer, the operator gets a
    # frame saying so rather than a silent, failed sidecar.
    except Exception as exc:  # noqa: BLE001
        return empty_archive(f"the results could not be packed: {type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    caps = Caps(max_file_bytes=args.max_file_bytes, max_archive_bytes=args.max_archive_bytes)
    if not args.once:
        _wait_for_the_end()
    sys.stdout.write(frame(_archive(Path(args.dir), caps)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
