"""Arrow helpers shared by the cache and the live frames.

Frames travel between processes as Arrow IPC streams compressed with zstd, and
the text columns of the canonical frames are Arrow-backed: both sides meet here.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.schema import coerce

# Each merge appends an Arrow chunk to the text columns; thousands of refreshes
# later every column operation would loop over thousands of tiny chunks.
MAX_CHUNKS = 64


def _compact(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The smallest faithful Arrow form of a text column: what zstd inflates costs time."""
    if not (pa.types.is_large_string(column.type) or pa.types.is_string(column.type)):
        return column
    # A sample tells unique ids (most of the work to encode, no gain) from repetitive text.
    sample = column.slice(0, 10_000)
    if pc.count_distinct(sample).as_py() * 2 >= len(sample):
        return column.cast(pa.string())
    encoded = pc.dictionary_encode(column)
    distinct = sum(len(chunk.dictionary) for chunk in encoded.chunks)
    index = pa.int8() if distinct < 2**7 else pa.int16() if distinct < 2**15 else pa.int32()
    return encoded.cast(pa.dictionary(index, pa.string()))


def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    """Arrow IPC stream compressed with zstd.

    Repetitive text (agent ids, roles, statuses, conversation ids) is
    dictionary-encoded with the narrowest index: a cache hit then inflates a
    fraction of the bytes.
    """
    # combine_chunks: Arrow-backed text columns keep one chunk per concat (each refresh
    # adds one), and every chunk would become its own small compressed record batch.
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    table = pa.table(
        [_compact(c) for c in table.columns], names=table.column_names
    ).replace_schema_metadata(table.schema.metadata)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    """The frame :func:`frame_to_bytes` wrote."""
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        table = reader.read_all()
    columns = [
        c.cast(pa.large_string())
        if pa.types.is_dictionary(c.type) or pa.types.is_string(c.type)
        else c
        for c in table.columns
    ]
    table = pa.table(columns, names=table.column_names).replace_schema_metadata(
        table.schema.metadata
    )
    return table.to_pandas()


def chunks(frame: pd.DataFrame) -> int:
    """How many Arrow chunks the frame's ``id`` column is made of."""
    to_arrow = getattr(frame["id"].array, "__arrow_array__", None)
    data = to_arrow() if to_arrow is not None else None
    return data.num_chunks if isinstance(data, pa.ChunkedArray) else 1


def rechunk(frame: pd.DataFrame, container: str) -> pd.DataFrame:
    """The frame with each column in one chunk, in the canonical dtypes of ``container``."""
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    return coerce(table.to_pandas(), container)


def isin(values: pd.Series, candidates: pd.Series) -> pd.Series:
    """``values.isin(candidates)`` through Arrow: pandas' own loops in Python for strings."""
    found = pc.is_in(pa.array(values), value_set=pa.array(candidates, type=pa.string()))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index)
