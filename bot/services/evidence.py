"""Evidence files: checked against the configured limits, and kept as a local copy named by
its sha256 in the data folder so that evidence outlives the bot's token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePath


@dataclass(frozen=True)
class StoredCopy:
    sha256: str
    local_path: str


class EvidenceStore:
    def __init__(self, folder: Path, max_mb: int, extensions: list[str]) -> None:
        self.folder = folder
        self.max_bytes = max_mb * 1024 * 1024
        self.extensions = {e.lower().lstrip(".") for e in extensions}

    @staticmethod
    def extension(file_name: str) -> str:
        return PurePath(file_name).suffix.lower().lstrip(".")

    def refusal(self, file_name: str, size: int) -> str | None:
        """Why the file is refused ("too_big", "bad_type"), or None when it is fine."""
        if size > self.max_bytes:
            return "too_big"
        if self.extension(file_name) not in self.extensions:
            return "bad_type"
        return None

    def keep(self, content: bytes, file_name: str) -> StoredCopy:
        digest = hashlib.sha256(content).hexdigest()
        ext = self.extension(file_name) or "bin"
        path = self.folder / digest[:2] / f"{digest}.{ext}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(content)
            temporary.replace(path)  # atomic: a crash leaves no half file under the real name
        return StoredCopy(digest, str(path))
