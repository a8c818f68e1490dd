"""Where the team's shared reference material is: `../shared` beside the checkout (recorded gateway payloads, the
official ISO 20022 schemas and samples), or `PAYTRUST_SHARED_DIR`. Read, never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("PAYTRUST_SHARED_DIR") or REPO.parent / "shared")


def missing_message() -> str | None:
    """Why the shared directory cannot be used, or None when it can."""
    needed = [SHARED_DIR / "gateway_samples", SHARED_DIR / "iso20022"]
    absent = [str(path) for path in needed if not path.is_dir()]
    if not absent:
        return None
    return (
        f"The shared reference material is missing: {', '.join(absent)}. The tests replay the recorded gateway "
        "payloads and validate against the official ISO 20022 schemas found in ../shared beside the checkout; "
        "clone the project beside it or set PAYTRUST_SHARED_DIR to its path."
    )
