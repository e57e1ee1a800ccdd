"""Splits, the cache folder and checked downloads."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ganland.data import sources
from ganland.errors import DataError


def test_check_split():
    assert sources.check_split("x", "train") == "train"
    assert sources.check_split("x", "test") == "test"
    with pytest.raises(DataError, match="x: unknown split 'val'"):
        sources.check_split("x", "val")


def test_cache_root_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("GANLAND_CACHE", raising=False)
    assert sources.cache_root() == Path.home() / ".cache" / "ganland"
    monkeypatch.setenv("GANLAND_CACHE", str(tmp_path))
    assert sources.cache_dir("cifar10") == tmp_path / "cifar10"


def remote_for(data: bytes, mirrors=("https://one/", "https://two/")) -> sources.RemoteFile:
    return sources.RemoteFile("file.bin", hashlib.sha256(data).hexdigest(), len(data), mirrors)


def test_download_tries_mirrors_in_order_and_renames_into_place(monkeypatch, tmp_path):
    calls = []

    def fetch(url, out, timeout):
        calls.append(url)
        if "one" in url:
            raise OSError("connection refused")
        out.write(b"payload")

    monkeypatch.setattr(sources, "fetch_url", fetch)
    path = sources.download(remote_for(b"payload"), tmp_path / "c")
    assert calls == ["https://one/file.bin", "https://two/file.bin"]
    assert path == tmp_path / "c" / "file.bin" and path.read_bytes() == b"payload"
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["file.bin"]


def test_download_failure_names_each_mirror_and_leaves_no_partial_file(monkeypatch, tmp_path):
    def fetch(url, out, timeout):
        out.write(b"half")
        if "one" in url:
            raise TimeoutError("timed out")

    monkeypatch.setattr(sources, "fetch_url", fetch)
    with pytest.raises(DataError) as info:
        sources.download(remote_for(b"payload"), tmp_path / "c")
    message = str(info.value)
    assert "https://one/file.bin: timed out" in message
    assert "https://two/file.bin: SHA-256" in message and "4 bytes received, 7 expected" in message
    assert list((tmp_path / "c").iterdir()) == []
