"""Hash-while-copying: the pipelined copy must equal a plain hash at any chunk boundary."""

from __future__ import annotations

import io
from pathlib import Path

import blake3
from hypothesis import given
from hypothesis import strategies as st

from keel.artifacts.hashing import copy_and_hash, hash_bytes, hash_file, reader_of


@given(
    data=st.binary(max_size=2000),
    chunk_size=st.integers(1, 300),
    with_flush=st.booleans(),
)
def test_copy_and_hash_copies_and_hashes_every_byte(
    data: bytes, chunk_size: int, with_flush: bool
) -> None:
    out = bytearray()
    seen: list[int] = []
    flushes: list[int] = []

    digest, size = copy_and_hash(
        reader_of(io.BytesIO(data)),
        out.extend,
        flush=(lambda: flushes.append(len(out))) if with_flush else None,
        progress=seen.append,
        chunk_size=chunk_size,
        flush_every=500,
    )

    assert digest.hex == blake3.blake3(data).hexdigest()
    assert size == len(data) == sum(seen)
    assert bytes(out) == data
    if with_flush and len(data) >= 500 + chunk_size:
        assert flushes


def test_hash_bytes_and_hash_file_agree(tmp_path: Path) -> None:
    data = b"keel" * 100_000
    path = tmp_path / "f"
    path.write_bytes(data)

    assert hash_bytes(data) == hash_file(path) == hash_file(path, chunk_size=777)
    assert hash_bytes(data).hex == blake3.blake3(data).hexdigest()
