"""A resumable results store: JSON Lines, one record per run, keyed by its settings.

Each write replaces the whole file atomically (temporary file, fsync, rename), so
an interrupted process leaves either the old or the new file, never half of one.
Every record carries a checksum of its content; a record that does not parse or
does not match its checksum is reported with a ``DPKitWarning`` and dropped, so
the run that made it is computed again.
"""

import hashlib
import json
import logging
import math
import os
import tempfile
import warnings

from dpkit._checks import DPKitWarning

logger = logging.getLogger(__name__)


def _clean(value):
    """Make a value JSON-safe: NaN and infinities become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _clean(value.item())
    return value


def settings_key(settings):
    """Return a short stable hash of a settings dict (order of keys does not matter)."""
    text = json.dumps(_clean(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _checksum(record):
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def number(value):
    """Read back a float written by the store ("inf" and "nan" strings included)."""
    return float(value) if value is not None else math.nan


class ResultStore:
    """Records of finished runs in one JSON Lines file.

    Parameters
    ----------
    path : str or path
        The ``.jsonl`` file; created with its folder on the first append.

    Examples
    --------
    >>> import tempfile, os
    >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.jsonl"))
    >>> store.append({"key": "a1", "settings": {"seed": 0}, "results": {"accuracy": 0.9}})
    >>> "a1" in store
    True
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._records = None

    def records(self):
        """Return the intact records, in the order they were written."""
        if self._records is None:
            self._records = self._read()
        return list(self._records)

    def _read(self):
        if not os.path.exists(self.path):
            return []
        records = []
        with open(self.path, encoding="utf-8") as handle:
            for number_, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    intact = isinstance(record, dict) and record.get("checksum") == _checksum(record)
                except json.JSONDecodeError:
                    intact = False
                if not intact:
                    warnings.warn(
                        f"record on line {number_} of {self.path} is damaged (it does not parse or its "
                        "checksum does not match); it is ignored and its run will be computed again.",
                        DPKitWarning,
                        stacklevel=3,
                    )
                    continue
                records.append(record)
        return records

    def __contains__(self, key):
        return any(record["key"] == key for record in self.records())

    def __len__(self):
        return len(self.records())

    def get(self, key):
        """Return the record with ``key``, or None."""
        for record in self.records():
            if record["key"] == key:
                return record
        return None

    def append(self, record):
        """Add one record (a dict with a ``key``) and rewrite the file atomically."""
        if "key" not in record:
            raise ValueError("record must contain a 'key' entry, got keys " + ", ".join(sorted(record)) + ". Add key=settings_key(settings).")
        record = _clean(dict(record))
        record["checksum"] = _checksum(record)
        records = [r for r in self.records() if r["key"] != record["key"]] + [record]
        _write_lines(self.path, [json.dumps(r, sort_keys=True) for r in records])
        self._records = records
        logger.info("stored record %s in %s", record["key"], self.path)


def _write_lines(path, lines):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_text_atomic(path, text):
    """Write a text file atomically (used for CSV tables and reports)."""
    _write_lines(path, [text.rstrip("\n")])
