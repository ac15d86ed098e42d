"""Objects as the API server's apply reader takes them.

A server-side apply body is read as YAML. Python's json.dumps either escapes
a character beyond the BMP as a surrogate pair, which that reader refuses,
or (ensure_ascii=False) writes C1 control characters raw, which YAML does
not allow. So: UTF-8 JSON with only the controls escaped.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C1 controls and DEL; json.dumps escapes the C0 ones itself. U+0085 (NEL)
# is allowed in YAML but a line break there; escaped too.
_CONTROLS = re.compile("[\u007f-\u009f]")


def apply_body(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False)
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()
