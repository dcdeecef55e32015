"""Reads the records of an offline W&B run file (``run-<id>.wandb``) so tests can check what was logged.

wandb no longer ships a Python reader for its transaction log, so this follows the documented
LevelDB-log framing that the file uses: a 7-byte file header (``:W&B``, magic 0xBEE1, version 0), then
32 KiB blocks of chunks, each ``crc32 (4) | length (2) | type (1) | data``, with FULL/FIRST/MIDDLE/LAST
chunk types joining into records; each record is a ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes):
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, "not a W&B transaction log"
    pos = HEADER
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # block trailer padding
            pos += left_in_block
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left_in_block
            continue
        payload = data[pos + HEADER : pos + HEADER + length]
        # wandb checksums the type byte followed by the payload (LevelDB's convention).
        assert zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc, "corrupt chunk"
        yield kind, payload
        pos += HEADER + length


def _parse(data: bytes) -> list:
    from wandb.proto import wandb_internal_pb2

    records, parts = [], []
    for kind, payload in _chunks(data):
        parts.append(payload)
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            records.append(record)
            parts = []
    return records


def read_records(path: str | Path, timeout: float = 60.0) -> list:
    """The run's records, once the file is complete (its last record is ``exit``).

    ``wandb.finish()`` can return before the wandb-core service has written the whole file: seen once
    in a full test run on the 2-core machine (the history rows logged before were missing). So this
    waits, up to ``timeout`` seconds, for the ``exit`` record that wandb-core writes last.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            records = _parse(Path(path).read_bytes())
        except AssertionError:  # a chunk still being written
            records = []
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        time.sleep(0.2)
    return _parse(Path(path).read_bytes())


def history_rows(path: str | Path) -> list[dict]:
    """Every ``wandb.log`` row of the run as ``{key: decoded JSON value}``.

    wandb-core flattens media values into ``nested_key`` paths (``samples`` -> ``_type``, ``filenames``,
    ...); they are nested back into one dict per key here.
    """
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict = {}
        for item in record.history.item:
            *parents, leaf = [item.key] if item.key else list(item.nested_key)
            node = row
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = json.loads(item.value_json)
        rows.append(row)
    return rows


def run_config(path: str | Path) -> dict:
    """The run config as logged (``{key: value}``), merged over all config records."""
    config = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") == "config":
            for item in record.config.update:
                config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return config


def records_of(path: str | Path, record_type: str) -> list:
    """The ``record_type`` records of the run (``run``, ``metric``, ``artifact``, ...), in file order."""
    return [getattr(r, record_type) for r in read_records(path) if r.WhichOneof("record_type") == record_type]


def run_record(path: str | Path):
    """The run's ``RunRecord``: id, project, display name, group, job type, tags, ``resume``."""
    (run,) = records_of(path, "run")
    return run


def summary(path: str | Path) -> dict:
    """The run's summary as the runs table shows it, ``{key: value}`` (a metric with a summary of
    ``min``/``max`` and ``last`` holds ``{"min": ..., "last": ...}``); the last update of a key wins."""
    values: dict = {}
    for record in records_of(path, "summary"):
        for item in record.update:
            key = item.key or "/".join(item.nested_key)
            values[key] = json.loads(item.value_json)
    return values


def wandb_file(folder: str | Path) -> Path:
    """The one offline W&B run file below a run folder (``wandb/offline-run-*/run-*.wandb``)."""
    (path,) = Path(folder).glob("wandb/offline-run-*/run-*.wandb")
    return path
