"""Uploaded MLflow model archives: checked before anything is unpacked, unpacked with a running
byte count, and fingerprinted over the canonical file set (so the same model packed twice, in
either format, has the same digest)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from app.core.errors import ArtifactTooLarge, InvalidArtifact

CHUNK = 1 << 20
MLMODEL = "MLmodel"
# Written by MLflow into a `models:/` download; not part of the model.
GENERATED = frozenset({"registered_model_meta"})


def unpack(archive: Path, destination: Path, *, max_bytes: int, max_ratio: int) -> Path:
    """Unpack a `.tar.gz`, `.tgz`, `.tar` or `.zip` MLflow model into `destination` and return the
    model directory (the root, or its single top-level folder). Refuses absolute paths, `..`,
    links that leave the tree, special files, more than `max_bytes` unpacked or a compression
    ratio above `max_ratio` (a zip bomb), and a tree without an MLmodel file."""
    packed = max(archive.stat().st_size, 1)
    limit = min(max_bytes, packed * max_ratio)
    with archive.open("rb") as head:
        magic = head.read(4)
    if magic.startswith(b"PK"):
        _unpack_zip(archive, destination, limit)
    elif magic.startswith(b"\x1f\x8b") or _is_tar(archive):
        _unpack_tar(archive, destination, limit)
    else:
        raise InvalidArtifact("The artifact must be a .tar.gz or .zip archive of an MLflow model")
    return model_root(destination)


def model_root(directory: Path) -> Path:
    if (directory / MLMODEL).is_file():
        return directory
    entries = [entry for entry in directory.iterdir() if not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MLMODEL).is_file():
        return entries[0]
    raise InvalidArtifact("No MLmodel file at the root of the archive (or of its one folder)")


def _is_tar(archive: Path) -> bool:
    try:
        return tarfile.is_tarfile(archive)
    except OSError:
        return False


def _checked_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidArtifact(f"Absolute path in archive: {name!r}")
    if ".." in path.parts:
        raise InvalidArtifact(f"Path escapes the archive: {name!r}")
    return path


def _inside(base: PurePosixPath, link: str) -> bool:
    """Whether a link at `base` pointing to `link` stays inside the tree."""
    if link.startswith("/"):
        return False
    depth = 0
    for part in (*base.parent.parts, *PurePosixPath(link).parts):
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return False
    return True


class _Budget:
    def __init__(self, root: Path, limit: int) -> None:
        self.root = root.resolve()
        self.left = limit
        self.limit = limit

    def copy(self, source: IO[bytes], target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(self.root):
            raise InvalidArtifact(f"Path escapes the archive through a link: {target.name!r}")
        with target.open("wb") as out:
            while chunk := source.read(CHUNK):
                self.left -= len(chunk)
                if self.left < 0:
                    raise ArtifactTooLarge(
                        f"The archive unpacks to more than {self.limit} bytes "
                        "(size limit or compression-ratio limit)"
                    )
                out.write(chunk)


def _unpack_tar(archive: Path, destination: Path, limit: int) -> None:
    budget = _Budget(destination, limit)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                path = _checked_name(member.name)
                target = destination.joinpath(*path.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    budget.copy(source, target)
                elif member.issym() or member.islnk():
                    base = path if member.issym() else PurePosixPath(".")
                    if not _inside(base, member.linkname):
                        raise InvalidArtifact(f"Link leaves the archive: {member.name!r}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if member.issym():
                        os.symlink(member.linkname, target)
                    else:
                        shutil.copyfile(destination / member.linkname, target)
                else:
                    raise InvalidArtifact(f"Special file in archive: {member.name!r}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidArtifact(f"Unreadable tar archive: {exc}") from exc


def _unpack_zip(archive: Path, destination: Path, limit: int) -> None:
    budget = _Budget(destination, limit)
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                path = _checked_name(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    link = zipped.read(info).decode()
                    if not _inside(path, link):
                        raise InvalidArtifact(f"Link leaves the archive: {info.filename!r}")
                    target = destination.joinpath(*path.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(link, target)
                elif info.is_dir():
                    destination.joinpath(*path.parts).mkdir(parents=True, exist_ok=True)
                else:
                    with zipped.open(info) as source:
                        budget.copy(source, destination.joinpath(*path.parts))
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise InvalidArtifact(f"Unreadable zip archive: {exc}") from exc


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    for directory, folders, files in os.walk(root):
        folders.sort()
        links = [name for name in folders if (Path(directory) / name).is_symlink()]
        for name in sorted(files + links):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative not in GENERATED:
                yield relative, path


def digest(root: Path) -> str:
    """`sha256:` over the sorted (relative path, content sha256) pairs of the model directory;
    a link counts as its target path. Independent of archive format, order and timestamps."""
    total = hashlib.sha256()
    for relative, path in sorted(_files(root)):
        if path.is_symlink():
            content = ("link:" + os.readlink(path)).encode()
            file_digest = hashlib.sha256(content).hexdigest()
        else:
            file_hash = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    file_hash.update(chunk)
            file_digest = file_hash.hexdigest()
        total.update(f"{relative}\0{file_digest}\n".encode())
    return "sha256:" + total.hexdigest()


def pack(root: Path, archive: Path) -> Path:
    """A .tar.gz of the model directory, for downloads."""
    with tarfile.open(archive, "w:gz") as tar:
        for relative, path in sorted(_files(root)):
            tar.add(path, arcname=relative, recursive=False)
    return archive
