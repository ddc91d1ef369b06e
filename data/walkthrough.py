"""Run data/walkthrough.txt: each command printed as a user would type it, then its output.

``make run`` runs this. Commands run in bash from the repository root with the virtualenv's
``logstore`` first on PATH; a command that fails stops the walkthrough with its exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def steps(path: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: "title" for ``# ...`` lines, "command" for the rest."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            out.append(("title", line[1:].strip()) if line.startswith("#") else ("command", line))
    return out


def main() -> int:
    root = os.path.dirname(HERE)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for kind, text in steps(os.path.join(HERE, "walkthrough.txt")):
        if kind == "title":
            print(f"\n# {text}", flush=True)
            continue
        print(f"$ {text}", flush=True)
        rc = subprocess.run(["bash", "-c", text], cwd=root, env=env).returncode
        if rc != 0:
            print(f"(the command above exited with {rc}; stopping)", file=sys.stderr)
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
