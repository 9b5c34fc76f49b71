"""The model artifact: one signed JSON document, no pickle, checked before XGBoost reads it, so a file
fetched from a bucket can at worst be refused; it can never run code or crash the process."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import xgboost as xgb
from scipy.special import expit

from . import signing
from .artifact_checks import ArtifactCheckError, check_document
from .schema import FEATURES
from .signing import SigningKey
from .treewalk import TreeTable, UnsupportedModel

FORMAT = "fraud-model/1"
# Far above any model trained here; a larger file is refused before it is read into memory.
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024
TOP_CONTRIBUTIONS = 5
# Up to this many rows the trees are walked in numpy (treewalk.py), above it XGBoost predicts.
WALK_MAX_ROWS = 16
# From this many rows a one-thread booster (as web workers load it) explains the second half in a
# helper thread: XGBoost releases the GIL, so a large batch can use a second core.
SPLIT_MIN_ROWS = 1_000
log = logging.getLogger(__name__)
_SCALED = {name: FEATURES.index(name) for name in ("Time", "Amount")}


class ArtifactError(Exception):
    """An artifact that must not be used: bad checksum or signature, unknown format, unreadable model."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ModelBundle:
    booster: xgb.Booster
    # {"Time": {"center": c, "scale": s}, "Amount": {...}}: one RobustScaler per column, never shared.
    scaling: dict[str, dict[str, float]]
    threshold: float
    metadata: dict = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    nthread: int = 0
    signed_by: str = ""  # the id of the key whose signature was verified when loaded

    def prepare(self, rows: np.ndarray) -> np.ndarray:
        """Scaled copy of a (n, len(FEATURES)) matrix, in the form the booster was trained on."""
        prepared = np.array(rows, dtype=np.float32, order="C", ndmin=2)
        for name, column in _SCALED.items():
            params = self.scaling[name]
            prepared[:, column] = (prepared[:, column] - params["center"]) / params["scale"]
        return prepared

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Fraud probability per row, for evaluating whole data sets; serving uses score(), which explains."""
        return np.asarray(self.booster.inplace_predict(self.prepare(rows)), dtype=np.float64)

    @functools.cached_property
    def _names(self) -> np.ndarray:
        return np.array(self.features, dtype=object)

    @functools.cached_property
    def walker(self) -> TreeTable | None:
        """The trees as numpy arrays, or None when the walk does not reproduce the booster on probe rows."""
        probe = np.random.default_rng(0).normal(scale=3.0, size=(64, len(self.features))).astype(np.float32)
        try:
            table = TreeTable(self.booster)
            walked = table.contributions(probe)
        except UnsupportedModel as exc:
            log.info("scoring with XGBoost's predict only: %s", exc)
            return None
        except (IndexError, ValueError, ArithmeticError) as exc:
            raise ArtifactError(f"the model's trees cannot be walked: {exc}") from None
        expected = self.booster.predict(xgb.DMatrix(probe, nthread=1), pred_contribs=True, approx_contribs=True)
        if not np.allclose(walked, expected, rtol=1e-4, atol=1e-4):
            log.warning("the numpy tree walk disagrees with XGBoost on this model; scoring with XGBoost only")
            return None
        return table

    def contributions(self, prepared: np.ndarray) -> np.ndarray:
        """Approximate (Saabas) contributions of prepared rows, the bias last."""
        if len(prepared) <= WALK_MAX_ROWS and self.walker is not None and not np.isnan(prepared).any():
            try:
                return self.walker.contributions(prepared)
            except (IndexError, ValueError, ArithmeticError) as exc:
                # Checked when loaded, so never expected: still the artifact's fault, not a 500.
                raise ArtifactError(f"the model's trees cannot be walked: {exc}") from None
        if self.nthread == 1 and len(prepared) >= SPLIT_MIN_ROWS:
            half = len(prepared) // 2
            second = _helper().submit(self._xgboost_contributions, prepared[half:])
            # If the first half fails, its error is the request's; the second half's outcome is dropped.
            first = self._xgboost_contributions(prepared[:half])
            return np.concatenate([first, second.result()])
        return self._xgboost_contributions(prepared)

    def _xgboost_contributions(self, prepared: np.ndarray) -> np.ndarray:
        # Safe from two threads at once: XGBoost's predictions with tree models are thread-safe.
        matrix = xgb.DMatrix(prepared, nthread=self.nthread)
        return self.booster.predict(matrix, pred_contribs=True, approx_contribs=True)

    def score(self, rows: np.ndarray, *, top: int = TOP_CONTRIBUTIONS) -> tuple[np.ndarray, list[list[dict]]]:
        """Fraud probability and the ``top`` signed log-odds contributions of each row, from one pass:
        the contributions and bias sum to the margin. Approximate (Saabas), as exact SHAP is far slower."""
        raw = np.asarray(rows, dtype=np.float64).reshape(-1, len(self.features))
        contribs = self.contributions(self.prepare(raw))
        probability = expit(contribs.sum(axis=1, dtype=np.float64))
        if np.isnan(probability).any():
            # The checks keep every known cause out; a NaN stored as a decision would be worse than a 503.
            raise ArtifactError("the model gave a score that is not a number")
        features = contribs[:, : len(self.features)]
        order = np.argsort(-np.abs(features), axis=1)[:, :top]
        line = np.arange(len(raw))[:, None]
        picked = features[line, order].round(6).tolist()
        values = raw[line, order].tolist()
        names = self._names[order].tolist()
        explanations = [
            [
                {"feature": f, "value": v, "contribution": c}
                for f, v, c in zip(row_names, row_values, row_picked, strict=True)
            ]
            for row_names, row_values, row_picked in zip(names, values, picked, strict=True)
        ]
        return probability, explanations

    def use_threads(self, count: int) -> None:
        self.nthread = count
        self.booster.set_param({"nthread": count})


_helpers: tuple[int, ThreadPoolExecutor] | None = None  # (pid, pool): a forked worker starts its own
_helpers_lock = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """This process's one helper thread for large batches (concurrent gthread batches queue on it)."""
    global _helpers
    with _helpers_lock:
        if _helpers is None or _helpers[0] != os.getpid():
            _helpers = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-contributions"))
        return _helpers[1]


def _payload(document: dict) -> bytes:
    """The canonical bytes of a document: what the signature covers."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def dumps(bundle: ModelBundle, *, key: SigningKey) -> bytes:
    """Serialise and sign a bundle; the bytes are what is stored and what the sha256 covers."""
    document = {
        "format": FORMAT,
        "features": list(bundle.features),
        "scaling": bundle.scaling,
        "threshold": bundle.threshold,
        "metadata": bundle.metadata,
        "booster": json.loads(bytes(bundle.booster.save_raw("json"))),
    }
    document["signature"] = signing.sign(_payload(document), key)
    return _payload(document)


def loads(
    data: bytes, *, sha256: str | None, keys: Sequence[SigningKey], allow_unsigned: bool = False, nthread: int = 1
) -> ModelBundle:
    """Load an artifact after checking its sha256 (None only for a file not yet recorded), its
    signature by one of ``keys`` (``allow_unsigned`` only to sign an artifact stored before signing)
    and its structure; ArtifactError if any check fails or XGBoost cannot read it."""
    try:
        return _loads(data, sha256=sha256, keys=keys, allow_unsigned=allow_unsigned, nthread=nthread)
    except RecursionError:
        raise ArtifactError("artifact is not JSON this service reads: nested too deeply") from None


def _loads(data: bytes, *, sha256: str | None, keys: Sequence[SigningKey], allow_unsigned: bool, nthread: int):
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"artifact is over {MAX_ARTIFACT_BYTES} bytes")
    if sha256 is not None and sha256_hex(data) != sha256:
        raise ArtifactError("artifact checksum does not match: the file was changed or corrupted")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"artifact is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArtifactError(f"unknown artifact format (expected {FORMAT})")
    signature = document.pop("signature", None)
    signed_by = ""
    if signature is not None or not allow_unsigned:
        try:
            signed_by = signing.verify(_payload(document), signature, keys)
        except signing.SignatureError as exc:
            raise ArtifactError(str(exc)) from None
    try:
        check_document(document)
    except ArtifactCheckError as exc:
        raise ArtifactError(f"artifact refused: {exc}") from None
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(json.dumps(document["booster"]).encode()))
    except xgb.core.XGBoostError as exc:
        raise ArtifactError(f"artifact cannot be loaded: {exc}") from None
    bundle = ModelBundle(
        booster=booster,
        scaling={name: {k: float(document["scaling"][name][k]) for k in ("center", "scale")} for name in _SCALED},
        threshold=float(document["threshold"]),
        metadata=document.get("metadata", {}),
        signed_by=signed_by,
    )
    bundle.use_threads(nthread)
    return bundle
