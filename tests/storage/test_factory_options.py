"""The SQLite storage URL's tuning options (docs/storage.md)."""

from __future__ import annotations

import pytest

from fhir_server.storage.factory import UnsupportedStorage, open_store


def test_options_set_each_connections_cache_and_mapping(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/evi.db?cache_mb=128&reader_cache_mb=8&mmap_mb=64")
    try:
        writer = store._writer
        assert writer.execute("PRAGMA cache_size").fetchone()[0] == -128 * 1024
        assert writer.execute("PRAGMA mmap_size").fetchone()[0] == 64 * 1024**2
        with store.unit_of_work(write=False, deadline=None) as uow:
            assert uow._raw.execute("PRAGMA cache_size").fetchone()[0] == -8 * 1024
        assert (tmp_path / "evi.db").exists() and not (tmp_path / "evi.db?cache_mb=128").exists()
    finally:
        store.close()


def test_defaults_without_options(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/evi.db")
    try:
        assert store._writer.execute("PRAGMA cache_size").fetchone()[0] == -256 * 1024
        assert store._writer.execute("PRAGMA mmap_size").fetchone()[0] == 0  # no mapping
    finally:
        store.close()


@pytest.mark.parametrize("query", ["cache_mb=-1", "cache_mb=abc", "cache_mb=0", "pagesize=4", "mmap_mb=99999999"])
def test_bad_options_are_refused(tmp_path, query):
    with pytest.raises(UnsupportedStorage):
        open_store(f"sqlite:///{tmp_path}/evi.db?{query}")
    assert not (tmp_path / "evi.db").exists()
