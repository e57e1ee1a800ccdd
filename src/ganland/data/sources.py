"""Where dataset files come from: splits, the user cache folder and checked downloads.

Lookup order used by the file-backed datasets (MNIST, Fashion-MNIST, CIFAR-10):
an explicit `root` folder, then a system copy (Debian's Fashion-MNIST), then the cache folder
`$GANLAND_CACHE/<dataset>/` (default `~/.cache/ganland/<dataset>/`), then a download into that
cache, checked against a published SHA-256.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Optional, Sequence, TypeVar

from ..errors import DataError

T = TypeVar("T")
SPLITS = ("train", "test")
DOWNLOAD_TIMEOUT_S = 20.0  # seconds a connection or a single read may stall before a mirror is given up


def check_split(dataset: str, split: str) -> str:
    """`split` unchanged if it is "train" or "test", else a DataError."""
    if split not in SPLITS:
        raise DataError(f"{dataset}: unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    return split


def cache_root() -> Path:
    """ganland's cache folder: $GANLAND_CACHE when set, else ~/.cache/ganland."""
    env = os.environ.get("GANLAND_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganland"


def cache_dir(dataset: str) -> Path:
    """The cache folder of one dataset (not created here)."""
    return cache_root() / dataset


@dataclass(frozen=True)
class RemoteFile:
    """A file published at `mirror + name` for every mirror, with its known digest and size."""

    name: str
    sha256: str
    size: int  # bytes, for the progress line and a first plausibility check
    mirrors: tuple[str, ...]  # base URLs ending in "/", tried in order


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_url(url: str, out: IO[bytes], timeout: float) -> None:
    """Write the body of `url` into the open binary file `out` (tests replace this function)."""
    request = urllib.request.Request(url, headers={"User-Agent": "ganland"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        while block := response.read(1 << 20):
            out.write(block)


def download(remote: RemoteFile, dest_dir: Path) -> Path:
    """Download `remote` into `dest_dir`, trying each mirror; returns the file's path.

    The bytes go to a temporary file in `dest_dir` that is renamed into place only after its
    SHA-256 matches, so the cache never holds a partial or wrong file.
    """
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder {dest_dir}: {e}") from None
    dest = dest_dir / remote.name
    failures = []
    for base in remote.mirrors:
        url = base + remote.name
        print(f"ganland: downloading {url} ({remote.size / 1e6:.1f} MB) to {dest_dir}", file=sys.stderr)
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{remote.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                fetch_url(url, out, DOWNLOAD_TIMEOUT_S)
            digest = sha256_file(tmp)
            if digest != remote.sha256:
                failures.append(
                    f"{url}: SHA-256 {digest} does not match the published {remote.sha256} "
                    f"({tmp.stat().st_size} bytes received, {remote.size} expected)"
                )
                continue
            os.replace(tmp, dest)
            return dest
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not download {remote.name}:\n  " + "\n  ".join(failures))


def not_found_message(
    what: str, needed: Sequence[str], fixes: Sequence[str], dataset: str, download_error: str | None
) -> str:
    """The error text when no location holds a dataset's files: what is missing and every way out.

    `fixes` are dataset-specific options placed after `--set data.root=DIR`; the cache folder and
    the network option are added here.
    """
    lines = [f"{what}: {', '.join(needed)} not found."]
    if download_error:
        lines.append(f"Downloading failed: {download_error}")
    lines.append("Any one of these fixes it:")
    lines.extend(f"  - {fix}" for fix in fixes)
    lines.append(f"  - put the files in the cache folder {cache_dir(dataset)}/")
    lines.append(
        "  - allow downloads (--set data.download=true) on a machine with network access, and"
        " ganland fetches them into that folder"
        if download_error is None
        else "  - allow network access to one of the mirrors above and try again"
    )
    return "\n".join(lines)


def locate(
    dataset: str,
    split: str,
    root: Optional[str],
    download: bool,
    find: Callable[[Path], tuple[Optional[T], list[str]]],
    fetch: Callable[[Path, list[str]], None],
    fixes: Sequence[str],
    system_dirs: Sequence[Path] = (),
) -> T:
    """A dataset's files, looked for in order: `root`; `system_dirs`; the cache; a download.

    find(folder) -> (what was found, or None; the names still missing there).
    fetch(cache, missing) downloads the missing files into the cache folder.
    fixes: dataset-specific ways out listed in the error when every place fails.
    """
    if root is not None:  # an explicit root is the only place looked at
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise DataError(f"{dataset}: data.root {folder} is not a folder")
        found, missing = find(folder)
        if found is None:
            raise DataError(f"{dataset}: data.root {folder} does not hold {', '.join(missing)}")
        return found
    for folder in system_dirs:
        found, _ = find(folder)
        if found is not None:
            return found
    cache = cache_dir(dataset)
    found, missing = find(cache)
    download_error = None
    if found is None and download:
        try:
            fetch(cache, missing)
            found, missing = find(cache)
        except DataError as e:
            download_error = str(e)
    if found is not None:
        return found
    raise DataError(not_found_message(f"{dataset} ({split})", missing, fixes, dataset, download_error))
