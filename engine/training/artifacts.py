"""Model artifacts: artifacts/<model_id>/<segment>/<version>/ holds the model file and
metadata.json (params, metrics, lineage, and the model file's sha256).

Formats, never pickle: XGBoost in its native UBJ format (model.ubj), scikit-learn with skops
(model.skops; loading trusts only classes from sklearn, numpy and scipy). Every load verifies
the sha256 first; a mismatch is an ArtifactError that names the file. Files go through
pyarrow.fs, so a lakehouse on an object store works the same as a local one.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from engine.errors import ArtifactError

METADATA = "metadata.json"
MODEL_FILES = {"xgboost": "model.ubj", "sklearn": "model.skops"}
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def _fs(uri: str):
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    if uri.startswith("file://"):
        return pafs.LocalFileSystem(), uri[len("file://"):]
    return pafs.FileSystem.from_uri(uri)


def _join(uri: str, name: str) -> str:
    return uri.rstrip("/") + "/" + name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(fs, path: str, data: bytes) -> None:
    """Write a whole file so that readers see the old or the new content, never a part."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, path)


def _read(uri: str) -> bytes:
    fs, path = _fs(uri)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except (FileNotFoundError, OSError) as e:
        raise ArtifactError(f"artifact file {uri}: cannot be read: {e}") from e


def serialize(model: Any, kind: str) -> bytes:
    if kind == "xgboost":
        return bytes(model.get_booster().save_raw(raw_format="ubj"))
    if kind == "sklearn":
        import skops.io as sio

        return sio.dumps(model)
    raise ArtifactError(f"unknown artifact kind {kind!r}; expected xgboost or sklearn")


def deserialize(data: bytes, kind: str, task: str, where: str) -> Any:
    if kind == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier() if task == "classification" else xgboost.XGBRegressor()
        try:
            model.load_model(bytearray(data))
        except Exception as e:
            raise ArtifactError(f"artifact file {where}: not a valid XGBoost model: {e}") from e
        return model
    if kind == "sklearn":
        import skops.io as sio

        try:
            untrusted = sio.get_untrusted_types(data=data)
        except Exception as e:
            raise ArtifactError(f"artifact file {where}: not a valid skops file: {e}") from e
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise ArtifactError(f"artifact file {where}: refuses to load types outside sklearn/numpy/scipy: {refused}")
        return sio.loads(data, trusted=untrusted)
    raise ArtifactError(f"artifact {where}: unknown kind {kind!r}; expected xgboost or sklearn")


def save_artifact(uri: str, model: Any, kind: str, metadata: dict[str, Any]) -> str:
    """Write the model file and metadata.json under `uri`; return the model file's sha256.
    Re-saving the same uri replaces both files."""
    data = serialize(model, kind)
    digest = sha256(data)
    fs, base = _fs(uri)
    fs.create_dir(base, recursive=True)
    name = MODEL_FILES[kind]
    _write(fs, _join(base, name), data)
    meta = {**metadata, "kind": kind, "file": name, "sha256": digest}
    _write(fs, _join(base, METADATA), json.dumps(meta, indent=2, sort_keys=True, default=str).encode())
    return digest


def read_metadata(uri: str) -> dict[str, Any]:
    where = _join(uri, METADATA)
    try:
        meta = json.loads(_read(where))
    except ValueError as e:
        raise ArtifactError(f"artifact file {where}: not valid JSON: {e}") from e
    for key in ("kind", "file", "sha256", "task"):
        if key not in meta:
            raise ArtifactError(f"artifact file {where}: has no {key!r}")
    return meta


def load_artifact(uri: str, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, metadata) of the artifact at `uri`, after checking the model file's sha256
    against metadata.json (and against `expected_sha256`, e.g. the registry's, if given)."""
    meta = read_metadata(uri)
    where = _join(uri, meta["file"])
    if expected_sha256 is not None and meta["sha256"] != expected_sha256:
        raise ArtifactError(
            f"artifact file {_join(uri, METADATA)}: records sha256 {meta['sha256']}, "
            f"expected {expected_sha256} (from the registry)"
        )
    data = _read(where)
    found = sha256(data)
    if found != meta["sha256"]:
        raise ArtifactError(f"artifact file {where}: sha256 mismatch: expected {meta['sha256']}, found {found}")
    return deserialize(data, meta["kind"], meta["task"], where), meta
