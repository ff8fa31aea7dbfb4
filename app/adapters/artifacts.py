"""Uploaded MLflow model archives: checked before anything is unpacked, unpacked with a running
byte count, and fingerprinted over the canonical file set (so the same model packed twice, in
either format, has the same digest)."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

import yaml
from hokusai import measure

from app.core.errors import ArtifactTooLarge, InvalidArtifact

CHUNK = 1 << 20
MLMODEL = "MLmodel"
# A model folder's digest, shared with `hokusai verify --recompute` (which checks it offline).
digest = measure.artifact_digest


def unpack(
    archive: Path, destination: Path, *, max_bytes: int, max_ratio: int, max_entries: int = 10_000
) -> Path:
    """Unpack a `.tar.gz`, `.tgz`, `.tar` or `.zip` MLflow model into `destination` and return the
    model directory (the root, or its single top-level folder). Refuses absolute paths, `..`,
    links that leave the tree, special files, more than `max_bytes` unpacked or a compression
    ratio above `max_ratio` (a zip bomb), more than `max_entries` entries (20,000 empty files
    cost MLflow minutes to store), and a tree without an MLmodel file."""
    packed = max(archive.stat().st_size, 1)
    limit = min(max_bytes, packed * max_ratio)
    with archive.open("rb") as head:
        magic = head.read(4)
    if magic.startswith(b"PK"):
        _unpack_zip(archive, _Tree(destination, limit, max_entries))
    elif magic.startswith(b"\x1f\x8b") or _is_tar(archive):
        _unpack_tar(archive, _Tree(destination, limit, max_entries))
    else:
        raise InvalidArtifact("The artifact must be a .tar.gz or .zip archive of an MLflow model")
    return model_root(destination)


# An MLmodel file is a few kilobytes; a signature of more columns than this is not one to show.
MAX_MLMODEL_BYTES = 1 << 20
MAX_SIGNATURE_COLUMNS = 10_000


def input_signature(model_dir: Path) -> list[dict[str, Any]] | None:
    """The model's input columns (`name`, `type`, `required`) as its MLmodel file declares them,
    read as data (YAML, then the signature's JSON; no code of the model runs); None when it
    declares none, or a tensor signature, or something that does not parse."""
    path = model_dir / MLMODEL
    try:
        if path.stat().st_size > MAX_MLMODEL_BYTES:
            return None
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        inputs = json.loads(document["signature"]["inputs"])
    except (
        OSError,
        UnicodeDecodeError,
        yaml.YAMLError,
        ValueError,
        KeyError,
        TypeError,
        RecursionError,  # YAML or JSON nested deeper than a parser recurses
    ):
        return None
    if not isinstance(inputs, list) or not 0 < len(inputs) <= MAX_SIGNATURE_COLUMNS:
        return None
    columns = []
    for spec in inputs:
        if not isinstance(spec, dict):
            return None
        name, kind, required = spec.get("name"), spec.get("type"), spec.get("required", True)
        if not (isinstance(name, str) and isinstance(kind, str) and isinstance(required, bool)):
            return None  # a tensor spec, or unnamed columns
        columns.append({"name": name[:250], "type": kind[:32], "required": required})
    return columns


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
    if "\x00" in name:
        raise InvalidArtifact(f"NUL character in an archive path: {name!r}")
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidArtifact(f"Absolute path in archive: {name!r}")
    if ".." in path.parts:
        raise InvalidArtifact(f"Path escapes the archive: {name!r}")
    return path


def _inside(base: PurePosixPath, link: str) -> bool:
    """Whether a link at `base` pointing to `link` stays inside the tree, read as text (a first,
    cheap check; `_Tree.finish` checks where every link really leads)."""
    if link.startswith("/") or "\x00" in link:
        return False
    depth = 0
    for part in (*base.parent.parts, *PurePosixPath(link).parts):
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return False
    return True


class _Tree:
    """The unpacked tree, written one archive entry at a time. Nothing is ever written through a
    link, an entry never replaces another, every byte written (hardlink copies included) counts
    against the limit, and when the archive is done every symlink must lead, on the real file
    system, to a regular file inside the tree (its bytes counted too: MLflow uploads the file a
    link leads to). Link text alone proves nothing: a link inside the tree can make a later
    link's `..` climb out of it."""

    def __init__(self, root: Path, limit: int, max_entries: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.left = limit
        self.limit = limit
        self.entries_left = max_entries
        self.max_entries = max_entries
        self.files: dict[PurePosixPath, Path] = {}

    def entry(self) -> None:
        """One more archive entry, of any kind."""
        self.entries_left -= 1
        if self.entries_left < 0:
            raise ArtifactTooLarge(f"The archive holds more than {self.max_entries} entries")

    def _parent(self, path: PurePosixPath) -> Path:
        """The real directory `path` goes in, made as needed; never a link or through one."""
        current = self.root
        for part in path.parts[:-1]:
            current = current / part
            if current.is_symlink():
                raise InvalidArtifact(f"Entry below a link in archive: {path.as_posix()!r}")
            if current.exists() and not current.is_dir():
                raise InvalidArtifact(f"Entry below a file in archive: {path.as_posix()!r}")
            current.mkdir(exist_ok=True)
        return current

    def _target(self, path: PurePosixPath) -> Path:
        """Where a new entry goes: never onto an existing one."""
        if not path.parts:
            raise InvalidArtifact("An archive entry has an empty path")
        target = self._parent(path) / path.parts[-1]
        if os.path.lexists(target):
            raise InvalidArtifact(f"Duplicate entry in archive: {path.as_posix()!r}")
        return target

    def directory(self, path: PurePosixPath) -> None:
        if not path.parts:  # "./": the root itself
            return
        target = self._parent(path) / path.parts[-1]
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise InvalidArtifact(f"Duplicate entry in archive: {path.as_posix()!r}")
        target.mkdir(exist_ok=True)

    def file(self, path: PurePosixPath, source: IO[bytes]) -> None:
        target = self._target(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
            while chunk := source.read(CHUNK):
                self._spend(len(chunk))
                out.write(chunk)
        self.files[path] = target

    def symlink(self, path: PurePosixPath, link: str) -> None:
        if not _inside(path, link):
            raise InvalidArtifact(f"Link leaves the archive: {path.as_posix()!r}")
        os.symlink(link, self._target(path))

    def hardlink(self, path: PurePosixPath, link: str) -> None:
        """A tar hardlink names an earlier regular file of the archive; it is written as a copy."""
        source = self.files.get(_checked_name(link))
        if source is None:
            raise InvalidArtifact(
                f"Hardlink to no earlier file of the archive: {path.as_posix()!r}"
            )
        with source.open("rb") as handle:
            self.file(path, handle)

    def finish(self) -> None:
        for directory, folders, names in os.walk(self.root):
            for name in (*folders, *names):
                entry = Path(directory) / name
                if not entry.is_symlink():
                    continue
                try:
                    real = Path(os.path.realpath(entry, strict=True))
                except OSError as exc:
                    raise InvalidArtifact(f"Link to nothing in archive: {name!r}") from exc
                if not real.is_relative_to(self.root):
                    raise InvalidArtifact(f"Link leaves the archive: {name!r}")
                if not real.is_file():
                    raise InvalidArtifact(f"Link to something other than a file: {name!r}")
                self._spend(real.stat().st_size)

    def _spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise ArtifactTooLarge(
                f"The archive unpacks to more than {self.limit} bytes "
                "(size limit or compression-ratio limit)"
            )


def _unpack_tar(archive: Path, tree: _Tree) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                tree.entry()
                path = _checked_name(member.name)
                if member.isdir():
                    tree.directory(path)
                elif member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    tree.file(path, source)
                elif member.issym():
                    tree.symlink(path, member.linkname)
                elif member.islnk():
                    tree.hardlink(path, member.linkname)
                else:
                    raise InvalidArtifact(f"Special file in archive: {member.name!r}")
        tree.finish()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidArtifact(f"Unreadable tar archive: {exc}") from exc


MAX_LINK_TEXT = 4096


def _unpack_zip(archive: Path, tree: _Tree) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            if len(zipped.infolist()) > tree.max_entries:  # the central directory says so
                raise ArtifactTooLarge(f"The archive holds more than {tree.max_entries} entries")
            for info in zipped.infolist():
                tree.entry()
                path = _checked_name(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    with zipped.open(info) as source:
                        link = source.read(MAX_LINK_TEXT + 1)
                    if len(link) > MAX_LINK_TEXT:
                        raise InvalidArtifact(f"Link text too long: {info.filename!r}")
                    tree.symlink(path, link.decode())
                elif info.is_dir():
                    tree.directory(path)
                else:
                    with zipped.open(info) as source:
                        tree.file(path, source)
        tree.finish()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise InvalidArtifact(f"Unreadable zip archive: {exc}") from exc


def pack(root: Path, archive: Path) -> Path:
    """A .tar.gz of the model directory, for downloads."""
    with tarfile.open(archive, "w:gz") as tar:
        for relative, path in sorted(measure.artifact_files(root)):
            tar.add(path, arcname=relative, recursive=False)
    return archive
