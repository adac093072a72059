"""Model artifacts: artifacts/<model_id>/<segment>/<version>/ holds the model file and
metadata.json (engine.records.ArtifactMetadata: params, metrics, lineage, and the model file's
sha256).

Formats, never pickle: XGBoost in its native UBJ format (model.ubj), scikit-learn with skops
(model.skops). Loading a skops file trusts only the exact types the engine's estimators write
beyond skops' own defaults (TRUSTED_TYPES, extended by `register_estimator(...,
trusted_types=...)`); any other type is refused before anything is built, and the model
must be of the class of the estimator metadata.json names (alone or as the last step of the
engine's one-hot Pipeline): an artifact of another class is refused. Every load verifies
the sha256 first; a mismatch is an ArtifactError that names the file. Files go through
pyarrow.fs (engine.catalog.filesystem), so a lakehouse on an object store works the same as a
local one.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from typing import Any

from engine.catalog import filesystem, join
from engine.errors import ArtifactError
from engine.records import ArtifactMetadata

METADATA = "metadata.json"
MODEL_FILES = {"xgboost": "model.ubj", "sklearn": "model.skops"}
# What skops does not trust by default in the artifacts of the built-in scikit-learn
# estimators (with and without the one-hot pipeline): found by serializing each of them.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
})


def trusted_types() -> frozenset[str]:
    """TRUSTED_TYPES plus those of every registered estimator."""
    from engine.training.estimators import ESTIMATORS

    return TRUSTED_TYPES.union(*(spec.trusted_types for spec in ESTIMATORS.values()))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(fs, path: str, data: bytes) -> None:
    """Write a whole file so that readers see the old or the new content, never a part."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, path)


def _read(uri: str) -> bytes:
    fs, path = filesystem(uri)
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

        return canonical_skops(sio.dumps(model))
    raise ArtifactError(f"unknown artifact kind {kind!r}; expected xgboost or sklearn")


def canonical_skops(data: bytes) -> bytes:
    """The same skops archive, byte-identical for the same model. skops numbers objects and
    names array files after Python object ids, writes attributes in no fixed order and stamps
    the zip with the current time, so two dumps of one model differ. Here ids and files are
    renumbered in a fixed traversal (sorted keys), the schema is written with sorted keys and
    every entry gets a fixed timestamp: equal models give equal sha256, so re-running a night
    reproduces its artifacts."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    schema = json.loads(entries.pop("schema.json"))
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def canon(node: Any) -> Any:
        if isinstance(node, list):
            return [canon(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key in sorted(node):
            value = node[key]
            if key == "__id__" and isinstance(value, int):
                out[key] = ids.setdefault(value, len(ids))
            elif key == "file" and isinstance(value, str) and value in entries:
                out[key] = files.setdefault(value, f"{len(files)}.npy")
            else:
                out[key] = canon(value)
        return out

    text = json.dumps(canon(schema), sort_keys=True).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, payload in [("schema.json", text)] + sorted((files.get(k, k), v) for k, v in entries.items()):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), payload,
                       compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_class(model: Any, estimator: str, where: str) -> Any:
    """`model` unless it is something other than `estimator`'s class (alone, or as the last
    step of the engine's one-hot Pipeline): a tampered artifact of another class is refused."""
    from sklearn.pipeline import Pipeline

    from engine.training.estimators import get_estimator

    try:
        expected = type(get_estimator(estimator).factory())
    except ValueError as e:
        raise ArtifactError(f"artifact file {where}: metadata names estimator {estimator!r}: {e}") from e
    final = model.steps[-1][1] if isinstance(model, Pipeline) and model.steps else model
    if type(final) is not expected:
        found = _class_name(type(model)) + (f" ending in {_class_name(type(final))}" if final is not model else "")
        raise ArtifactError(f"artifact file {where}: holds a {found}, expected {_class_name(expected)} "
                            f"(the artifact's estimator {estimator!r})")
    return model


def _root_class(data: bytes) -> str | None:
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            schema = json.loads(z.read("schema.json"))
        return f"{schema.get('__module__')}.{schema.get('__class__')}"
    except Exception:
        return None  # skops' own reader names what is wrong with the file


def deserialize(data: bytes, kind: str, task: str, where: str, estimator: str | None = None) -> Any:
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
        refused = sorted(set(untrusted) - trusted_types())
        if refused:
            raise ArtifactError(f"artifact file {where}: refuses to load types the engine does not write: {refused}")
        if estimator is not None:
            from engine.training.estimators import get_estimator

            root = _root_class(data)
            try:
                expected = _class_name(type(get_estimator(estimator).factory()))
            except ValueError as e:
                raise ArtifactError(f"artifact file {where}: metadata names estimator {estimator!r}: {e}") from e
            if root is not None and root not in (expected, "sklearn.pipeline.Pipeline"):
                raise ArtifactError(f"artifact file {where}: holds a {root}, expected {expected} "
                                    f"(the artifact's estimator {estimator!r}); refused before loading")
        model = sio.loads(data, trusted=list(untrusted))
        return model if estimator is None else _check_class(model, estimator, where)
    raise ArtifactError(f"artifact {where}: unknown kind {kind!r}; expected xgboost or sklearn")


def save_artifact(uri: str, model: Any, kind: str, metadata: ArtifactMetadata) -> ArtifactMetadata:
    """Write the model file and metadata.json under `uri`; return the metadata as written
    (with kind, file and the model file's sha256). Re-saving the same uri replaces both files."""
    data = serialize(model, kind)
    fs, base = filesystem(uri)
    fs.create_dir(base, recursive=True)
    meta = replace(metadata, kind=kind, file=MODEL_FILES[kind], sha256=sha256(data))
    _write(fs, join(base, meta.file), data)
    _write(fs, join(base, METADATA), meta.dumps())
    return meta


def read_metadata(uri: str) -> ArtifactMetadata:
    where = join(uri, METADATA)
    try:
        return ArtifactMetadata.from_json(json.loads(_read(where)))
    except ValueError as e:
        raise ArtifactError(f"artifact file {where}: not valid metadata JSON: {e}") from e
    except (KeyError, TypeError) as e:
        raise ArtifactError(f"artifact file {where}: malformed metadata: {type(e).__name__}: {e}") from e


def load_artifact(uri: str, expected_sha256: str | None = None) -> tuple[Any, ArtifactMetadata]:
    """(model, metadata) of the artifact at `uri`, after checking the model file's sha256
    against metadata.json (and against `expected_sha256`, e.g. the registry's, if given)."""
    meta = read_metadata(uri)
    where = join(uri, meta.file)
    if expected_sha256 is not None and meta.sha256 != expected_sha256:
        raise ArtifactError(
            f"artifact file {join(uri, METADATA)}: records sha256 {meta.sha256}, "
            f"expected {expected_sha256} (from the registry)"
        )
    data = _read(where)
    found = sha256(data)
    if found != meta.sha256:
        raise ArtifactError(f"artifact file {where}: sha256 mismatch: expected {meta.sha256}, found {found}")
    return deserialize(data, meta.kind, meta.task, where, estimator=meta.estimator), meta
