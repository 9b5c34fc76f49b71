"""Training on a Dask cluster with XGBoost's own Dask integration (xgboost.dask). The workers read and
validate the files (dask.dataframe.read_csv; s3:// through s3fs), hold the rows and train; the caller
receives row counts, quantiles, validation and hold-out scores with their labels, and the model.

The pipeline is training.py's, distributed: a time-ordered hold-out and validation split, each of Time
and Amount scaled with its own robust parameters (quantiles computed on the cluster), class weighting
(scale_pos_weight), XGBoost "hist", a threshold tuned on the validation scores and a refit on training
+ validation rows. SMOTE has no distributed form (it needs every fraud row's neighbours in one place),
so this backend tries class weighting only; the local backend still compares both."""

from __future__ import annotations

import hashlib
import re
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import dask
import dask.dataframe as dd
import distributed
import fsspec
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score
from xgboost import dask as dxgb
from xgboost.collective import Config as CollectiveConfig

from . import reference
from .artifact import ModelBundle
from .evaluation import evaluate, tune_threshold
from .schema import FEATURES, HEAD_BYTES, LABEL, DataValidationError, check_header, validate_frame
from .training import MIN_PER_CLASS, TrainConfig, TrainResult, library_versions, refit_trees

# Bytes of CSV per partition: a partition parsed as text (only to name a bad cell) stays a few hundred MB.
BLOCKSIZE = 32 * 1024 * 1024
# The client reads this much of each file to learn its header; the rows stay on the workers.
SAMPLE_BYTES = HEAD_BYTES
# A collective operation waiting longer than this on a peer fails the fit: a worker that died mid-training
# closes its sockets at once, but one that hangs would otherwise hold the others for ever.
COLLECTIVE_TIMEOUT_SECONDS = 600
# The monitoring reference's bins come from a sample of the training rows of about this many: the
# bins of a quantile split need no more, and the caller's memory stays bounded.
REFERENCE_SAMPLE_ROWS = 100_000
# Rows are ordered by (_rank, _key): the file's place in time order, then Time (labels: their order).
_RANK, _KEY, _NEW, _DRAW = "_rank", "_key", "_new", "_draw"
# pandas' C parser: "Error tokenizing data. C error: Expected 31 fields in line 6, saw 33"
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class ClusterError(Exception):
    """The cluster failed the training (a worker lost, a fit aborted); the data may be fine."""


@dataclass(frozen=True)
class Source:
    """One data file as the workers read it: ``path`` is s3://bucket/key or a local path."""

    path: str
    fingerprint: str = ""  # the S3 ETag or the sha256 it must still have; "" accepts any content
    new: bool = True  # no model learned its rows


@dataclass
class FileCheck:
    source: Source
    rows: int = 0
    frauds: int = 0
    missing: bool = False
    changed: bool = False
    problem: DataValidationError | None = None  # the first problem, with its line when known

    @property
    def error(self) -> str:
        return str(self.problem) if self.problem is not None else ""


@contextmanager
def open_cluster(
    address: str = "", *, workers: int = 2, threads: int = 1, memory_limit: str = "auto"
) -> Iterator[distributed.Client]:
    """A client of the cluster at ``address``, or of a LocalCluster started for the block and closed after."""
    if address:
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the worker process's largest resident set so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workers_peak_memory(client: distributed.Client) -> dict[str, float]:
    """Each worker's peak resident memory so far, in MiB."""
    return {worker: round(mib) for worker, mib in client.run(_peak_rss_mib).items()}


def describe(client: distributed.Client) -> dict:
    """The cluster's size as a version records it."""
    threads = client.nthreads()
    return {"workers": len(threads), "threads": sum(threads.values())}


# --- Reading and validating, on the workers.


def _fingerprint(fs, path: str) -> str:
    info = fs.info(path)
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return str(etag).strip('"')
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inspect(path: str, expected: str, storage_options: dict) -> dict:
    """On a worker: whether the file is there with the expected content, and its header's problem."""
    fs, fs_path = fsspec.core.url_to_fs(path, **storage_options)
    try:
        if expected and _fingerprint(fs, fs_path) != expected:
            return {"changed": True}
        with fs.open(fs_path, "rb") as handle:
            head = handle.read(HEAD_BYTES + 1)
    except FileNotFoundError:
        return {"missing": True}
    if not head:
        return {"error": "the file is empty", "line": None}
    try:
        check_header(head)
    except DataValidationError as exc:
        return {"error": exc.reason, "line": exc.line}
    return {}


def _read(source: Source, storage_options: dict, *, as_text: bool = False) -> dd.DataFrame:
    """The file as partitions of about BLOCKSIZE bytes, blank lines kept as rows so rows stay lines."""
    text = {"dtype": str, "keep_default_na": False, "na_filter": False} if as_text else {"dtype": np.float64}
    return dd.read_csv(
        source.path,
        blocksize=BLOCKSIZE,
        sample=SAMPLE_BYTES,
        storage_options=storage_options,
        encoding="utf-8",
        skip_blank_lines=False,
        **text,
    )


def _partitions(source: Source, storage_options: dict) -> tuple[list, bool]:
    """(the file's partitions, whether read as text). read_csv parses the file's first rows here to learn
    its columns; if one holds a cell that is no number, every partition is read as text to say where."""
    try:
        return _read(source, storage_options).to_delayed(), False
    except ValueError:
        return _read(source, storage_options, as_text=True).to_delayed(), True


def _summary(part: pd.DataFrame) -> dict:
    """One partition's rows, the rows up to its last non-empty one, frauds, its first empty line among
    those and its first other problem, as row numbers within the partition."""
    blank = (part.isna() | (part == "")).all(axis=1).to_numpy()
    kept = len(blank) - int(np.argmin(blank[::-1])) if not blank.all() else 0
    interior = np.flatnonzero(blank[:kept])
    summary = {"rows": len(part), "kept": kept, "frauds": 0, "blank": int(interior[0]) if interior.size else -1}
    summary.update(error="", row=-1, fatal=False)
    if kept:
        try:
            frame = validate_frame(part.iloc[:kept], require_fraud=False)
            summary["frauds"] = int(frame[LABEL].sum())
        except DataValidationError as exc:
            summary.update(error=exc.reason, row=(exc.line - 2) if exc.line is not None else -1)
    return summary


def _failed_read(exc: BaseException) -> dict:
    """A partition pandas cannot read even as text; as for a whole file, this problem comes first."""
    row = -1
    if isinstance(exc, UnicodeDecodeError) or "can't decode" in str(exc):  # dask may wrap it in a ValueError
        reason = "the file is not UTF-8 text"
    elif counted := _FIELD_COUNT.search(str(exc)):
        expected, line, seen = counted.groups()
        # Each partition is parsed with the header line before its rows.
        reason, row = f"{seen} cells, expected {expected}", int(line) - 2
    else:
        reason = f"not a valid CSV file ({str(exc).strip()})"
    return {"rows": 0, "kept": 0, "frauds": 0, "blank": -1, "error": reason, "row": row, "fatal": True}


def _merge(summaries: list[dict], *, require_fraud: bool) -> tuple[int, int, DataValidationError | None]:
    """(rows, frauds, first problem) of a file from its partitions' summaries, in file order, deciding as
    schema.read_training_csv does: a row pandas cannot read, then an empty line before the last row,
    then the first partition's problem with a value."""

    def problem(reason: str, offset: int, row: int) -> DataValidationError:
        return DataValidationError(reason, line=offset + row + 2 if row >= 0 else None)

    offsets = np.cumsum([0] + [s["rows"] for s in summaries[:-1]]).tolist()
    for summary, offset in zip(summaries, offsets, strict=True):
        if summary["fatal"]:
            return 0, 0, problem(summary["error"], offset, summary["row"])
    with_rows = [i for i, s in enumerate(summaries) if s["kept"]]
    if not with_rows:
        return 0, 0, DataValidationError("the file has a header but no data rows")
    last = with_rows[-1]
    blanks = []
    for index, (summary, offset) in enumerate(zip(summaries, offsets, strict=True)):
        if summary["blank"] >= 0:
            blanks.append(offset + summary["blank"])
        if index < last and summary["kept"] < summary["rows"]:
            blanks.append(offset + summary["kept"])  # its trailing empty lines have rows after them
    if blanks:
        return 0, 0, problem("the line is empty", min(blanks), 0)
    for summary, offset in zip(summaries, offsets, strict=True):
        if summary["error"]:
            return 0, 0, problem(summary["error"], offset, summary["row"])
    rows, frauds = offsets[last] + summaries[last]["kept"], sum(s["frauds"] for s in summaries)
    if require_fraud and frauds == 0:
        return 0, 0, DataValidationError("the file has no fraud rows (Class = 1); a model cannot learn from it")
    return rows, frauds, None


def check_files(
    client: distributed.Client, sources: Sequence[Source], storage_options: dict, *, require_fraud: bool = False
) -> list[FileCheck]:
    """Each file checked on the workers, partition by partition, with schema.py's rules: its rows and
    frauds, or why it cannot be used (gone, changed since scanned, or the first problem and its line)."""
    checks = [FileCheck(source) for source in sources]
    inspected = client.gather(
        client.map(
            _inspect,
            [s.path for s in sources],
            [s.fingerprint for s in sources],
            storage_options=storage_options,
            pure=False,
        )
    )
    readable = []
    for check, found in zip(checks, inspected, strict=True):
        check.missing, check.changed = found.get("missing", False), found.get("changed", False)
        if "error" in found:
            check.problem = DataValidationError(found["error"], line=found["line"])
        if not (check.missing or check.changed or check.problem):
            readable.append(check)
    parts = []
    for check in list(readable):
        try:
            parts.append(_partitions(check.source, storage_options))
        except ValueError as exc:  # its first rows cannot be parsed even as text
            check.problem = _merge([_failed_read(exc)], require_fraud=require_fraud)[2]
            readable.remove(check)
    # Every partition of every file at once, each its own future, so one bad partition fails only itself.
    futures = [client.compute([dask.delayed(_summary)(p) for p in file_parts]) for file_parts, _ in parts]
    distributed.wait([f for file_futures in futures for f in file_futures])
    for check, (_, as_text), file_futures in zip(readable, parts, futures, strict=True):
        summaries, retry = [], []
        for index, future in enumerate(file_futures):
            summaries.append(future.result() if future.status == "finished" else None)
            if future.status != "finished":
                retry.append(index)
        if retry and not as_text:
            # A cell that is no number fails the numeric read: read those partitions as text to say where.
            text_parts = _read(check.source, storage_options, as_text=True).to_delayed()
            text_futures = client.compute([dask.delayed(_summary)(text_parts[i]) for i in retry])
            distributed.wait(text_futures)
            file_futures = dict(zip(retry, text_futures, strict=True))
        for index in retry:
            future = file_futures[index]
            summaries[index] = future.result() if future.status == "finished" else _failed_read(future.exception())
        check.rows, check.frauds, check.problem = _merge(summaries, require_fraud=require_fraud)
    return checks


# --- The rows, held on the workers.


def _tidy(part: pd.DataFrame, rank: int, new: bool) -> pd.DataFrame:
    """A partition in schema order, features as float32 (as the model reads them), ordered by _key."""
    part = part.set_axis([str(c).strip() for c in part.columns], axis=1)
    part = part[~part.isna().all(axis=1)]  # the trailing empty lines validation allowed
    out = pd.DataFrame({name: part[name].to_numpy(dtype=np.float32) for name in FEATURES}, index=part.index)
    out[LABEL] = part[LABEL].to_numpy(dtype=np.int8)
    out[_RANK] = np.int32(rank)
    out[_KEY] = part["Time"].to_numpy(dtype=np.float64)
    out[_NEW] = new
    return _with_draw(out)


def _with_draw(out: pd.DataFrame) -> pd.DataFrame:
    # A uniform number per row from its content: the same rows draw the same on any worker, any run.
    hashed = pd.util.hash_pandas_object(out[[_RANK, _KEY, "V1", "Amount"]], index=False).to_numpy()
    out[_DRAW] = (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return out


def _meta() -> pd.DataFrame:
    columns = {name: pd.Series(dtype=np.float32) for name in FEATURES}
    columns.update({LABEL: pd.Series(dtype=np.int8), _RANK: pd.Series(dtype=np.int32)})
    columns[_KEY] = pd.Series(dtype=np.float64)
    columns.update({_NEW: pd.Series(dtype=bool), _DRAW: pd.Series(dtype=np.float64)})
    return pd.DataFrame(columns)


def load(
    client: distributed.Client,
    sources: Sequence[Source],
    storage_options: dict,
    *,
    extra: pd.DataFrame | None = None,
    extra_new: np.ndarray | None = None,
) -> dd.DataFrame:
    """The checked files' rows (in ``sources`` order, each by Time) then ``extra`` rows (in their order),
    persisted on the workers. ``extra`` is small and local: the analysts' labels from the database."""
    frames = [
        _read(source, storage_options).map_partitions(_tidy, rank, source.new, meta=_meta())
        for rank, source in enumerate(sources)
    ]
    if extra is not None and len(extra):
        out = pd.DataFrame({name: extra[name].to_numpy(dtype=np.float32) for name in FEATURES})
        out[LABEL] = extra[LABEL].to_numpy(dtype=np.int8)
        out[_RANK] = np.int32(len(sources))
        out[_KEY] = np.arange(len(extra), dtype=np.float64)
        out[_NEW] = np.asarray(extra_new, dtype=bool) if extra_new is not None else True
        frames.append(dd.from_pandas(_with_draw(out), npartitions=1))
    return client.persist(dd.concat(frames) if len(frames) > 1 else frames[0])


def counts(*frames: dd.DataFrame) -> list[tuple[int, int]]:
    """(rows, frauds) of each frame, in one pass over the cluster."""
    totals = dask.compute(*[(f[LABEL].size, f[LABEL].astype(np.int64).sum()) for f in frames])
    return [(int(rows), int(frauds)) for rows, frauds in totals]


def _both_classes(count: tuple[int, int], needed: int) -> bool:
    rows, frauds = count
    return frauds >= needed and rows - frauds >= needed


def _cut(frame: dd.DataFrame, fraction: float) -> tuple[int, float]:
    """(rank, key) after which about ``fraction`` of the rows lie: whole files counted from the newest,
    then a quantile of Time (computed on the cluster) within the file the cut falls in. One quantile
    over every file's Time would mix files whose Times each start at 0."""
    sizes = frame.groupby(_RANK)[LABEL].size().compute().sort_index()
    target, after = fraction * int(sizes.sum()), 0
    for rank in reversed(sizes.index.tolist()):
        rows = int(sizes[rank])
        if after + rows >= target:
            within = frame[frame[_RANK] == rank][_KEY]
            return rank, float(within.quantile(1 - (target - after) / rows).compute())
        after += rows
    return int(sizes.index[0]), -np.inf


def newest_split(frame: dd.DataFrame, fraction: float) -> tuple[dd.DataFrame, dd.DataFrame, str]:
    """(older rows, about the newest ``fraction``, method), as training.holdout_split: "time" by the rows'
    order, else "random" when a part would lack MIN_PER_CLASS."""
    rank, key = _cut(frame, fraction)
    newer = (frame[_RANK] > rank) | ((frame[_RANK] == rank) & (frame[_KEY] > key))
    head, tail = frame[~newer], frame[newer]
    if all(_both_classes(c, MIN_PER_CLASS) for c in counts(head, tail)):
        return head, tail, "time"
    # No distributed stratified split: a draw per row keeps each class's share up to chance.
    return frame[frame[_DRAW] >= fraction], frame[frame[_DRAW] < fraction], "random"


def concat(*frames: dd.DataFrame) -> dd.DataFrame:
    return dd.concat(list(frames))


def new_rows(frame: dd.DataFrame) -> dd.DataFrame:
    return frame[frame[_NEW]]


def learned_rows(frame: dd.DataFrame) -> dd.DataFrame:
    return frame[~frame[_NEW]]


# --- Training and scoring.


def _scaled(part: pd.DataFrame, scaling: dict, *, label: bool = False) -> pd.DataFrame:
    """A partition's features as the bundle prepares them (Time and Amount scaled), and its label."""
    out = part[list(FEATURES)].copy()
    for name in ("Time", "Amount"):
        params = scaling[name]
        out[name] = ((out[name] - np.float32(params["center"])) / np.float32(params["scale"])).astype(np.float32)
    if label:
        out[LABEL] = part[LABEL].astype(np.float32)
    return out


def _prepared(frame: dd.DataFrame, scaling: dict):
    """The prepared features as a dask array without names, so the booster is the same as a local one
    (features f0..f29)."""
    return frame.map_partitions(_scaled, scaling, meta=frame._meta[list(FEATURES)]).to_dask_array(lengths=True)


def _fit_arrays(client: distributed.Client, frame: dd.DataFrame, scaling: dict) -> tuple:
    """(features, labels) for a fit, each partition's from one persisted block of both. XGBoost zips
    each partition's features with its labels on one worker, and an array distributed has moved
    between workers can arrive misaligned, which XGBoost refuses ("Input pointer misalignment"): with
    one block behind both, both are cut where the block is, and the features never move."""
    meta = frame._meta[list(FEATURES)].assign(**{LABEL: np.float32(0)})
    both = client.persist(frame.map_partitions(_scaled, scaling, label=True, meta=meta).to_dask_array(lengths=True))
    features = both[:, : len(FEATURES)].map_blocks(np.ascontiguousarray, dtype=np.float32)
    return features, both[:, len(FEATURES)].map_blocks(np.ascontiguousarray, dtype=np.float32)


def scores(client: distributed.Client, bundle: ModelBundle, frame: dd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(fraud probabilities, labels) of ``frame``'s rows, predicted on the workers; only these come back."""
    predicted = dxgb.inplace_predict(client, bundle.booster, _prepared(frame, bundle.scaling))
    labels = frame[LABEL].to_dask_array(lengths=True)
    values, truth = client.compute([predicted, labels], sync=True)
    return np.asarray(values, dtype=np.float64), np.asarray(truth, dtype=np.int8)


def evaluate_on(client: distributed.Client, bundle: ModelBundle, frame: dd.DataFrame) -> dict:
    return evaluate(*reversed(scores(client, bundle, frame)), bundle.threshold)


def fit_scaling(frame: dd.DataFrame) -> dict[str, dict[str, float]]:
    """RobustScaler's parameters (median, interquartile range) for Time and Amount, from quantiles
    computed on the cluster, each column its own."""
    quantiles = frame[["Time", "Amount"]].quantile([0.25, 0.5, 0.75]).compute()
    scaling = {}
    for name in ("Time", "Amount"):
        low, median, high = (float(quantiles[name].iloc[i]) for i in range(3))
        scaling[name] = {"center": median, "scale": (high - low) or 1.0}
    return scaling


def _short(exc: BaseException) -> str:
    """XGBoost's collective errors span a stack trace; its "- [...]: reason" lines say what happened."""
    lines = [line.split("]:", 1)[-1].strip() for line in str(exc).splitlines() if line.lstrip().startswith("- [")]
    text = "; ".join(lines) if lines else (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"{type(exc).__name__}: {text}"[:400]


def _fit(
    client: distributed.Client,
    config: TrainConfig,
    frame: dd.DataFrame,
    scaling: dict,
    weight: float,
    init: xgb.Booster | None,
) -> xgb.Booster:
    classifier = dxgb.DaskXGBClassifier(
        tree_method="hist",
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        scale_pos_weight=weight,
        eval_metric="logloss",
        random_state=config.seed,
        coll_cfg=CollectiveConfig(timeout=COLLECTIVE_TIMEOUT_SECONDS),
    )
    classifier.client = client
    try:
        classifier.fit(*_fit_arrays(client, frame, scaling), xgb_model=init, verbose=False)
    except DataValidationError:
        raise
    except Exception as exc:
        # A worker lost mid-fit surfaces as a socket error on its peers or a moved task, never as bad data.
        raise ClusterError(f"training on the Dask cluster failed: {_short(exc)}") from exc
    return classifier.get_booster()


@dataclass
class Parts:
    train: dd.DataFrame
    validation: dd.DataFrame
    holdout: dd.DataFrame
    method: str
    sizes: dict = field(default_factory=dict)  # (rows, frauds) of each part


def split(frame: dd.DataFrame, config: TrainConfig, *, holdout: dd.DataFrame | None = None) -> Parts:
    """training.split on the cluster, with its messages for data too small to train and evaluate on."""
    needed = (2 if holdout is not None else 3) * MIN_PER_CLASS
    ((rows, frauds),) = counts(frame)
    if frauds < needed:
        raise DataValidationError(f"too few fraud rows to train and evaluate a model: {frauds}, need at least {needed}")
    if rows - frauds < needed:
        raise DataValidationError(
            f"too few legitimate rows (Class = 0) to train and evaluate a model: {rows - frauds}, "
            f"need at least {needed}"
        )
    methods = []
    if holdout is None:
        frame, holdout, method = newest_split(frame, config.holdout_fraction)
        methods.append(method)
    elif not _both_classes(counts(holdout)[0], 1):
        raise DataValidationError("the hold-out needs rows of both classes to evaluate a model on")
    train, validation, method = newest_split(frame, config.validation_fraction)
    methods.append(method)
    sizes = dict(zip(("train", "validation", "holdout"), counts(train, validation, holdout), strict=True))
    return Parts(train, validation, holdout, "time" if set(methods) == {"time"} else "random", sizes)


def _reference(train: dd.DataFrame, rows: int, holdout_scores: np.ndarray, threshold: float) -> dict:
    """reference.build's monitoring reference, its feature bins from a sample of the training rows
    (drawn on the workers) rather than all of them; its "rows" still counts them all."""
    share = min(1.0, REFERENCE_SAMPLE_ROWS / max(1, rows))
    sample = train[train[_DRAW] < share][list(FEATURES)].compute().to_numpy(dtype=np.float64)
    built = reference.build(sample, holdout_scores, threshold=threshold)
    return {**built, "rows": rows, "sampled_rows": len(sample)}


def train(
    client: distributed.Client,
    frame: dd.DataFrame,
    config: TrainConfig | None = None,
    *,
    init: ModelBundle | None = None,
    holdout: dd.DataFrame | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """training.train on the cluster: the same steps, metrics, parameters and artifact metadata, with
    class weighting as the only imbalance strategy. ClusterError if the cluster fails the fit."""
    config = config or TrainConfig()
    started = time.perf_counter()
    parts = split(frame, config, holdout=holdout)
    (train_rows, train_frauds), (val_rows, _), (hold_rows, _) = (
        parts.sizes[p] for p in ("train", "validation", "holdout")
    )
    progress(f"split ({parts.method}): {train_rows} train, {val_rows} validation, {hold_rows} hold-out rows")
    if "smote" in config.strategies:
        progress("smote skipped: it has no distributed form; the local backend compares it")
    scaling = init.scaling if init is not None else fit_scaling(parts.train)
    weight = float((train_rows - train_frauds) / max(1, train_frauds))
    inherited = init.booster.num_boosted_rounds() if init is not None else 0

    step = time.perf_counter()
    booster = _fit(
        client,
        config,
        parts.train,
        scaling,
        weight,
        init.booster if init is not None else None,
    )
    draft = ModelBundle(booster=booster, scaling=scaling, threshold=0.5)
    val_scores, y_val = scores(client, draft, parts.validation)
    val_auprc = float(average_precision_score(y_val, val_scores))
    trees = booster.num_boosted_rounds()
    progress(f"scale_pos_weight: validation AUPRC {val_auprc:.4f}, {trees} trees, {time.perf_counter() - step:.1f}s")
    threshold = tune_threshold(y_val, val_scores, recall_target=config.recall_target)
    params = {"strategy": "scale_pos_weight", "trees": trees, "scale_pos_weight": round(weight, 4)}

    if config.refit:
        step = time.perf_counter()
        grown = refit_trees(trees - inherited, train_rows, val_rows)
        pool = dd.concat([parts.train, parts.validation])
        booster = _fit(
            client,
            replace(config, n_estimators=grown),
            pool,
            scaling,
            weight,
            init.booster if init is not None else None,
        )
        params = {**params, "trees": booster.num_boosted_rounds(), "validated_trees": trees, "refit": True}
        progress(
            f"refit scale_pos_weight on training + validation rows: {params['trees']} trees, "
            f"{time.perf_counter() - step:.1f}s"
        )
    bundle = ModelBundle(booster=booster, scaling=scaling, threshold=threshold)
    holdout_scores, y_hold = scores(client, bundle, parts.holdout)
    metrics = evaluate(y_hold, holdout_scores, threshold)
    metrics["validation_auprc"] = val_auprc
    metrics["split"] = parts.method
    seconds = round(time.perf_counter() - started, 2)
    ((rows, frauds),) = counts(frame)
    params = {
        **params,
        "config": asdict(config),
        "warm_start": init is not None,
        "strategy_comparison": {"scale_pos_weight": round(val_auprc, 5)},
        "feature_importance": {
            name: round(float(booster.get_score(importance_type="gain").get(f"f{i}", 0.0)), 4)
            for i, name in enumerate(FEATURES)
        },
        "training_backend": {"backend": "dask", **describe(client), "seconds": seconds},
    }
    bundle.metadata = {
        "metrics": metrics,
        "params": params,
        "library_versions": {**library_versions(), "dask": dask.__version__, "distributed": distributed.__version__},
        "training_rows": rows,
        "training_frauds": frauds,
        "reference": _reference(parts.train, train_rows, holdout_scores, threshold),
        "training_seconds": seconds,
        "training_backend": params["training_backend"],
    }
    progress(
        f"chose scale_pos_weight; hold-out F1 {metrics['f1']:.4f}, precision {metrics['precision']:.4f}, "
        f"recall {metrics['recall']:.4f}, AUPRC {metrics['auprc'] or 0:.4f} at threshold {threshold:.4f}"
    )
    return TrainResult(bundle=bundle, metrics=metrics, params=params, rows=rows, frauds=frauds)
