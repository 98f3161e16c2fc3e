"""Drop the project's own entry (``login-etl @ file:///<checkout>``) from a pip-compile lock.

pip-compile lists the project itself when it compiles ``pyproject.toml``'s extras; that line
names this checkout's path and has no hash, so ``pip install --require-hashes`` would refuse it.
The project is installed editable (``pip install --no-deps -e .``) after the lock.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SELF = re.compile(
    r"(?:# WARNING: pip install will require the following package to be hashed\.\n"
    r"# Consider using a hashable URL[^\n]*\n)?login-etl @ file:[^\n]*\n(?:    #[^\n]*\n)*"
)


def main(path: str) -> int:
    lock = Path(path)
    text, count = SELF.subn("", lock.read_text("utf-8"))
    lock.write_text(text, "utf-8")
    print(f"{path}: dropped {count} self-reference(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
