"""Render a deploy/ template: every `${PT_NAME}` is replaced by the value of PT_NAME (from the environment, or from
the mapping given by deploy/cluster.py); an unknown PT_ name is an error, and nginx's own `$variables` are left
alone. The same templates serve `make cluster` (deploy/cluster.py) and docker-compose.yml (its `config` service
runs this file), so both run the same nginx, PgBouncer and PostgreSQL configuration.

Usage: python deploy/render.py TEMPLATE OUTPUT   (values from the environment)
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{(PT_[A-Z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: Mapping[str, str]) -> str:
    missing = sorted(placeholders(text) - set(values))
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        rendered = render(source.read_text(), os.environ)
    except KeyError as exc:
        sys.exit(f"{source}: {exc.args[0]}")
    target.write_text(rendered)


if __name__ == "__main__":
    main()
