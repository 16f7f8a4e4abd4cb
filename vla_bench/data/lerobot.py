"""LeRobotDataset v3 on disk: `DatasetWriter` records episodes, `DatasetReader` loads them (ours or LeRobot's).

Layout (codebase_version "v3.0", as LeRobot writes it):
  meta/info.json        fps, robot_type, features {key: dtype/shape/names}, path templates, totals, splits; vla-bench's
                        own fields under "vla_bench" (the whole embodiment spec, so a dataset describes itself)
  meta/stats.json       per feature: min/max/mean/std/count and the quantiles q01/q10/q50/q90/q99 (exact for vectors;
                        images pooled from the per-episode statistics, as LeRobot does)
  meta/tasks.parquet    task strings (the pandas index "task") -> task_index
  meta/episodes/chunk-CCC/file-FFF.parquet   one row per episode: tasks, length, its data file, its frame range, the
                                             episode's statistics of every feature ("stats/<feature>/<stat>", typed
                                             and shaped as LeRobot 0.4.4 writes them: images [3, 1, 1], count [n]),
                                             and vla-bench extras as "vla_bench/<key>" columns
  data/chunk-CCC/file-FFF.parquet            one row per frame: observation.state, action,
                                             observation.images.<view>, timestamp, frame_index, episode_index,
                                             index, task_index

Images are PNG frames inside the data parquet (feature dtype "image", a struct {bytes, path}, the way LeRobot and
HF `datasets` store image features): lossless and no video codec needed, at ~10-30 kB per 128 px frame. Datasets
whose cameras are videos (dtype "video", mp4 files beside the parquet) load all the same; only asking for an image
of such a feature raises `VideoNotSupported`.

Sharing a dataset with LeRobot's own tools (resume recording, delete-episodes, merge): a writer session never touches
episodes files it did not write. It lists its episodes in a new episodes file of its own (rewritten at each flush),
so rows another writer (LeRobot's) appended stay where they are and are listed once. LeRobot reads all episodes files
with the first one's columns, so a later file may not add columns: a reopening writer refuses extras keys that the
first episodes file has no column for.

Crash safety: the writer keeps finished episodes in memory and flushes them in batches, each batch to a new data
file; every file is written under a temporary name and renamed into place. The episodes file is the commit point:
a batch exists once an episodes file lists it. A kill thus loses at most the unflushed batch; a data file the table does
not list (killed between the two renames) is ignored by the reader and deleted when a writer reopens the dataset.
stats.json and info.json are derived, rewritten after each commit and again on reopen.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image
except ImportError as e:  # the core package runs without them; only datasets need them
    raise ImportError(f"vla_bench.data needs the 'data' extra: pip install -e '.[data]' ({e})") from e

from vla_bench import __version__
from vla_bench.actions import NormStats, QuantileNormalizer
from vla_bench.atomic_write import replace_atomically, write_json_atomically
from vla_bench.embodiment import EMBODIMENTS, EmbodimentSpec, get_embodiment

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH, STATS_PATH, TASKS_PATH = "meta/info.json", "meta/stats.json", "meta/tasks.parquet"
CHUNKS_SIZE = 1000  # data files per chunk folder, LeRobot's default
STATE, ACTION, IMAGE_PREFIX = "observation.state", "action", "observation.images."
EXTRA_PREFIX = "vla_bench/"  # episode-level extras are episodes-table columns under this prefix
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                  "task_index": "int64"}
IMAGE_STATS_FRAMES = 16  # frames per episode the image statistics look at (decoding every frame is not needed)
ROW_GROUP_ROWS = 64  # frames per parquet row group: a random image read loads one group, not a whole file
# Encoded image bytes a reader keeps in memory (default 1 GiB: ~150k frames of 64 px, every view of a CPU-scale
# dataset); $VLA_BENCH_IMAGE_CACHE_MB overrides it.
IMAGE_CACHE_BYTES = int(os.environ.get("VLA_BENCH_IMAGE_CACHE_MB", "1024")) << 20
_IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


class VideoNotSupported(NotImplementedError):
    """The dataset stores this camera as video; decoding video frames is not supported yet."""


@dataclass
class Episode:
    """One episode in memory: what the writer takes and the reader returns."""

    task: str  # the instruction
    state: np.ndarray  # float32 [T, S]
    action: np.ndarray  # float32 [T, c], native units
    images: dict[str, np.ndarray] = field(default_factory=dict)  # view tag -> uint8 [T, H, W, 3]
    extras: dict = field(default_factory=dict)  # episode-level facts (suite, init index, seed...): JSON scalars

    def __len__(self) -> int:
        return len(self.action)


def make_features(spec: EmbodimentSpec, image_size: int = 0) -> dict:
    """info.json features for `spec`, with square images of `image_size` px per view tag (0: no images)."""
    features = {}
    if spec.state_dim:
        features[STATE] = {"dtype": "float32", "shape": [spec.state_dim], "names": None}
    features[ACTION] = {"dtype": "float32", "shape": [spec.action_dim], "names": list(spec.action_names)}
    for tag in spec.view_tags if image_size else ():
        features[IMAGE_PREFIX + tag] = {"dtype": "image", "shape": [image_size, image_size, 3],
                                        "names": ["height", "width", "channel"]}
    for key, dtype in INDEX_FEATURES.items():
        features[key] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """PNG (or any format PIL reads) bytes -> uint8 [H, W, 3]."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def vector_stats(data: np.ndarray) -> dict:
    """LeRobot-style statistics per channel of rows [N, d]: min/max (in the data's dtype), mean/std, exact numpy
    quantiles, and count as a one-element list."""
    raw = np.asarray(data).reshape(len(data), -1)
    x = raw.astype(np.float64)
    stats = {"min": raw.min(0), "max": raw.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    stats.update(zip(QUANTILES, np.quantile(x, list(QUANTILES.values()), axis=0)))
    return {k: v.tolist() for k, v in stats.items()}


def image_episode_stats(frames: np.ndarray) -> dict:
    """Per-channel statistics of an episode's frames in [0, 1] over up to IMAGE_STATS_FRAMES evenly spaced frames, in
    LeRobot's layout: every statistic [3, 1, 1], count [frames looked at]."""
    idx = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), IMAGE_STATS_FRAMES)).round().astype(int))
    px = frames[idx].reshape(-1, 3).astype(np.float64) / 255.0
    stats = {"min": px.min(0), "max": px.max(0), "mean": px.mean(0), "std": px.std(0), "count": [len(idx)]}
    stats.update(zip(QUANTILES, np.quantile(px, list(QUANTILES.values()), axis=0)))
    return {k: v if k == "count" else v.reshape(3, 1, 1).tolist() for k, v in stats.items()}


def aggregate_image_stats(parts: list[dict]) -> dict:
    """Pool per-episode image statistics into LeRobot's [3, 1, 1] layout: count-weighted mean and variance, extremes,
    and quantiles as the count-weighted mean of the episodes' quantiles (what LeRobot's aggregate_stats does)."""
    n = np.array([np.ravel(p["count"])[0] for p in parts], dtype=np.float64)[:, None]
    channel = {k: np.array([np.ravel(p[k]) for p in parts], dtype=np.float64)
               for k in ("min", "max", "mean", "std", *QUANTILES) if all(p.get(k) is not None for p in parts)}
    mean = (n * channel["mean"]).sum(0) / n.sum()
    var = (n * (channel["std"] ** 2 + (channel["mean"] - mean) ** 2)).sum(0) / n.sum()
    out = {"min": channel["min"].min(0), "max": channel["max"].max(0), "mean": mean, "std": np.sqrt(var),
           "count": [int(n.sum())]}
    out.update({q: (n * channel[q]).sum(0) / n.sum() for q in QUANTILES if q in channel})
    return {k: v if k == "count" else v.reshape(3, 1, 1).tolist() for k, v in out.items()}


def _stats_column_type(feature: dict, stat: str) -> pa.DataType:
    """The arrow type LeRobot 0.4.4 gives the episodes-table column stats/<feature>/<stat>."""
    if stat == "count":
        return pa.list_(pa.int64())
    if feature["dtype"] in ("image", "video"):
        return pa.list_(pa.list_(pa.list_(pa.float64())))
    integer = stat in ("min", "max") and np.issubdtype(np.dtype(feature["dtype"]), np.integer)
    return pa.list_(pa.int64() if integer else pa.float64())


def _write_parquet(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    replace_atomically(path, lambda tmp: pq.write_table(table, tmp, row_group_size=row_group_size))


def _vector_array(rows: np.ndarray) -> pa.Array:
    """[N, d] -> fixed_size_list<float32>[d], the arrow type of a HF `Sequence(length=d)` feature."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), rows.shape[1])


def _column_to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A list, fixed-size-list or scalar column as numpy: [N, d] for lists, [N] for scalars."""
    arr = column.combine_chunks()
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), -1)
    return arr.to_numpy(zero_copy_only=False)


def _tasks_table(tasks: list[str]) -> pa.Table:
    # LeRobot reads this file with pandas and expects the task strings as the index named "task"; the pandas schema
    # metadata below says so (written by hand, so pandas is not a dependency).
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_tasks(root: Path) -> list[str]:
    """Task strings by task_index (the column "task", or the unnamed pandas index of older writers)."""
    table = pq.read_table(root / TASKS_PATH)
    name = "task" if "task" in table.column_names else "__index_level_0__"
    tasks: list[str | None] = [None] * table.num_rows
    for i, text in zip(table.column("task_index").to_pylist(), table.column(name).to_pylist()):
        tasks[i] = text
    return tasks


def episodes_files(root: Path) -> list[Path]:
    """The episodes tables of a dataset, in the order LeRobot reads them."""
    return sorted((Path(root) / "meta" / "episodes").glob("chunk-*/file-*.parquet"))


def read_episode_rows(root: Path, stats_of: tuple[str, ...] = ()) -> list[dict]:
    """All rows of the episodes tables, sorted by episode_index, without the per-episode statistics except those of
    the features `stats_of`. An episode listed twice is refused: the dataset would be counted wrong."""
    rows, seen = [], {}
    keep_stats = tuple(f"stats/{k}/" for k in stats_of)
    for path in episodes_files(root):
        names = pq.read_schema(path).names
        columns = [c for c in names if not c.startswith("stats/") or c.startswith(keep_stats)]
        for row in pq.read_table(path, columns=columns).to_pylist():
            first = seen.setdefault(row["episode_index"], path)
            if first is not path:
                raise ValueError(f"{root}: episode {row['episode_index']} is listed in both {first.relative_to(root)} "
                                 f"and {path.relative_to(root)}; remove the duplicate rows (e.g. with LeRobot's "
                                 "delete-episodes tool on a copy) before using the dataset")
            rows.append(row)
    return sorted(rows, key=lambda r: r["episode_index"])


# Columns of an episodes-table row other than statistics and extras, in LeRobot's order (statistics come between the
# data columns and the meta/episodes ones).
_ROW_HEAD = ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
             "dataset_to_index")
_ROW_TAIL = ("meta/episodes/chunk_index", "meta/episodes/file_index")


def _rows_table(rows: list[dict], features: dict) -> pa.Table:
    """Episodes-table rows -> table with LeRobot's column types; extras columns typed from their values (null where
    an episode lacks the key)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    arrays = {}
    for key in keys:
        values = [r.get(key) for r in rows]
        if key == "tasks":
            arrays[key] = pa.array(values, pa.list_(pa.string()))
        elif key in _ROW_HEAD or key in _ROW_TAIL:
            arrays[key] = pa.array(values, pa.int64())
        elif key.startswith("stats/"):
            feature, stat = key[len("stats/"):].rsplit("/", 1)
            arrays[key] = pa.array(values, _stats_column_type(features[feature], stat))
        else:
            arrays[key] = pa.array(values)
    return pa.table(arrays)


def _extras(row: dict) -> dict:
    """The vla-bench extras of an episodes-table row; null means the episode did not have that key."""
    return {k[len(EXTRA_PREFIX):]: v for k, v in row.items() if k.startswith(EXTRA_PREFIX) and v is not None}


def _data_file_number(row: dict) -> int:
    return row["data/chunk_index"] * CHUNKS_SIZE + row["data/file_index"]


def _data_path(number: int) -> str:
    chunk, file = divmod(number, CHUNKS_SIZE)
    return DATA_PATH.format(chunk_index=chunk, file_index=file)


def _file_number(path: Path) -> int:
    """chunk-CCC/file-FFF.parquet -> CCC * CHUNKS_SIZE + FFF."""
    return int(path.parent.name.split("-")[1]) * CHUNKS_SIZE + int(path.stem.split("-")[1])


def _fps_value(fps: float) -> float | int:
    return int(fps) if float(fps).is_integer() else float(fps)


class DatasetWriter:
    """Appends episodes to a LeRobotDataset v3 directory, creating it or reopening it (same embodiment and features).

    Episodes are buffered and flushed every `flush_every` episodes, each flush to a new data file; `close()` (or
    leaving the `with` block, also on an exception such as Ctrl-C) flushes the rest. A reopened dataset keeps its
    fps and robot_type; it may hold episodes another writer (LeRobot's) appended, which are kept as they are.
    """

    def __init__(self, root: str | Path, embodiment: EmbodimentSpec, image_size: int = 0, fps: float | None = None,
                 robot_type: str | None = None, flush_every: int = 10):
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.root, self.embodiment, self.flush_every = Path(root), embodiment, flush_every
        self.features = make_features(embodiment, image_size)
        self.image_keys = [k for k, f in self.features.items() if f["dtype"] == "image"]
        self.fps, self.robot_type = _fps_value(fps or embodiment.control_hz), robot_type or embodiment.name
        self.episodes: list[dict] = []  # committed rows of the episodes tables (statistics: of the images only)
        self.tasks: list[str] = []
        self._task_ids: dict[str, int] = {}
        self._numeric: dict[str, list[np.ndarray]] = {k: [] for k in self.features if k not in self.image_keys}
        self._pending: list[Episode] = []
        self._session_rows: list[dict] = []  # rows this writer committed: the content of its own episodes file
        self._columns: set[str] | None = None  # columns of the first episodes file, when this writer did not write it
        if (self.root / INFO_PATH).exists():
            self._reopen()
        existing = episodes_files(self.root)
        self._episodes_file = _file_number(existing[-1]) + 1 if existing else 0
        if existing:
            self._columns = set(pq.read_schema(existing[0]).names)

    def _reopen(self) -> None:
        info = json.loads((self.root / INFO_PATH).read_text())
        saved = _resolve_embodiment(info, None)
        saved_name = saved.name if saved else info.get("robot_type")
        if saved_name != self.embodiment.name or info["features"] != self.features:
            raise ValueError(f"{self.root} holds a dataset of embodiment {saved_name!r} with features "
                             f"{_shapes(info['features'])}; cannot append episodes of {self.embodiment.name!r} with "
                             f"{_shapes(self.features)}")
        self.fps, self.robot_type = info["fps"], info["robot_type"]
        self.episodes = read_episode_rows(self.root, stats_of=tuple(self.image_keys))
        self.tasks = read_tasks(self.root)
        self._task_ids = {t: i for i, t in enumerate(self.tasks)}
        listed = {_data_path(n) for n in {_data_file_number(r) for r in self.episodes}}
        for path in sorted((self.root / "data").glob("chunk-*/*")):  # orphans of a kill mid-flush
            if str(path.relative_to(self.root)) not in listed:
                path.unlink()
        for rel in sorted(listed):
            table = pq.read_table(self.root / rel, columns=list(self._numeric))
            for key in self._numeric:
                self._numeric[key].append(_column_to_numpy(table.column(key)))
        self._write_derived_meta()

    @property
    def num_frames(self) -> int:
        return sum(r["length"] for r in self.episodes)

    def recorded_extras(self) -> list[dict]:
        """Extras of every episode given so far, flushed or not (e.g. to skip what is recorded already)."""
        return [_extras(r) for r in self.episodes] + [dict(e.extras) for e in self._pending]

    def _check(self, ep: Episode) -> None:
        t = len(ep.action)
        if t < 1 or np.shape(ep.action) != (t, self.embodiment.action_dim):
            raise ValueError(f"action must be [T>=1, {self.embodiment.action_dim}], got {np.shape(ep.action)}")
        if np.shape(ep.state) != (t, self.embodiment.state_dim):
            raise ValueError(f"state must be [{t}, {self.embodiment.state_dim}], got {np.shape(ep.state)}")
        views = {IMAGE_PREFIX + v for v in ep.images}
        if views != set(self.image_keys):
            raise ValueError(f"episode has images {sorted(views)}, the dataset stores {self.image_keys}")
        for view, frames in ep.images.items():
            want = (t, *self.features[IMAGE_PREFIX + view]["shape"])
            if np.shape(frames) != want or np.asarray(frames).dtype != np.uint8:
                raise ValueError(f"images {view!r} must be uint8 {want}, got {np.asarray(frames).dtype} "
                                 f"{np.shape(frames)}")
        new = sorted(k for k in ep.extras if self._columns is not None and EXTRA_PREFIX + k not in self._columns)
        if new:
            raise ValueError(f"{self.root}: extras {new} have no column in the first episodes file, and LeRobot reads "
                             "every episodes file with that file's columns; record them into a new dataset")

    def add(self, episode: Episode) -> None:
        """Buffer one finished episode; flushes when `flush_every` episodes are waiting."""
        self._check(episode)
        self._pending.append(episode)
        if len(self._pending) >= self.flush_every:
            self.flush()

    def _task_index(self, task: str) -> int:
        if task not in self._task_ids:  # a dict: synthetic corpora have about one task per episode
            self._task_ids[task] = len(self.tasks)
            self.tasks.append(task)
        return self._task_ids[task]

    def flush(self) -> None:
        """Write the buffered episodes to a new data file and commit them to this writer's episodes file."""
        if not self._pending:
            return
        number = max((_data_file_number(r) for r in self.episodes), default=-1) + 1
        chunk, file = divmod(number, CHUNKS_SIZE)
        meta_chunk, meta_file = divmod(self._episodes_file, CHUNKS_SIZE)
        columns: dict[str, list[np.ndarray]] = {k: [] for k in self._numeric}
        images: dict[str, list[bytes]] = {k: [] for k in self.image_keys}
        rows, frame0 = [], self.num_frames
        for ep in self._pending:
            t, e = len(ep), len(self.episodes) + len(rows)
            per_frame = {STATE: np.asarray(ep.state, np.float32), ACTION: np.asarray(ep.action, np.float32),
                         "timestamp": (np.arange(t) / self.fps).astype(np.float32),
                         "frame_index": np.arange(t), "episode_index": np.full(t, e),
                         "index": frame0 + np.arange(t), "task_index": np.full(t, self._task_index(ep.task))}
            for key in columns:
                columns[key].append(per_frame[key])
            stats = {}
            for key in self.features:
                view = key[len(IMAGE_PREFIX):]
                stats[key] = image_episode_stats(ep.images[view]) if key in self.image_keys else \
                    vector_stats(per_frame[key])
                if key in self.image_keys:
                    images[key] += [encode_png(f) for f in ep.images[view]]
            row = {"episode_index": e, "tasks": [ep.task], "length": t, "data/chunk_index": chunk,
                   "data/file_index": file, "dataset_from_index": frame0, "dataset_to_index": frame0 + t}
            row.update({f"stats/{key}/{name}": value for key, s in stats.items() for name, value in s.items()})
            row.update({"meta/episodes/chunk_index": meta_chunk, "meta/episodes/file_index": meta_file})
            row.update({EXTRA_PREFIX + k: v for k, v in ep.extras.items()})
            rows.append(row)
            frame0 += t
        merged = {k: np.concatenate(v) for k, v in columns.items()}
        arrays = {k: _vector_array(v) if v.ndim == 2 else pa.array(v) for k, v in merged.items()}
        arrays.update({k: pa.array([{"bytes": b, "path": None} for b in v], _IMAGE_TYPE) for k, v in images.items()})
        _write_parquet(pa.table({k: arrays[k] for k in self.features}), self.root / _data_path(number),
                       row_group_size=ROW_GROUP_ROWS)
        _write_parquet(_tasks_table(self.tasks), self.root / TASKS_PATH)  # before the commit: extra tasks are harmless
        session = self._session_rows + rows
        _write_parquet(_rows_table(session, self.features),
                       self.root / EPISODES_PATH.format(chunk_index=meta_chunk, file_index=meta_file))
        self._session_rows, self._pending = session, []  # committed
        self.episodes += [{k: v for k, v in r.items() if not k.startswith("stats/")
                           or k.startswith(tuple(f"stats/{i}/" for i in self.image_keys))} for r in rows]
        for key, value in merged.items():
            self._numeric[key].append(value)
        self._write_derived_meta()

    def _write_derived_meta(self) -> None:
        stats = {k: vector_stats(np.concatenate(v)) for k, v in self._numeric.items() if v}
        for key in self.image_keys:
            parts = [{s: r.get(f"stats/{key}/{s}") for s in ("min", "max", "mean", "std", "count", *QUANTILES)}
                     for r in self.episodes]
            if parts:
                stats[key] = aggregate_image_stats(parts)
        write_json_atomically(self.root / STATS_PATH, stats, indent=2)
        n_ep = len(self.episodes)
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type, "total_episodes": n_ep,
                "total_frames": self.num_frames, "total_tasks": len(self.tasks), "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": self.fps,
                "splits": {"train": f"0:{n_ep}"}, "data_path": DATA_PATH, "video_path": None,
                "features": self.features,
                "vla_bench": {"embodiment": self.embodiment.name, "embodiment_spec": self.embodiment.to_dict(),
                              "image_encoding": "png", "writer_version": __version__}}
        write_json_atomically(self.root / INFO_PATH, info, indent=2)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.flush()  # finished episodes are complete even when the loop around them was interrupted


def _shapes(features: dict) -> dict:
    """Feature key -> (dtype, shape), for messages."""
    return {k: (f["dtype"], list(f["shape"])) for k, f in features.items()}


def _resolve_embodiment(info: dict, embodiment: EmbodimentSpec | str | None) -> EmbodimentSpec | None:
    """An explicit embodiment, else the spec the dataset was written with, else the registered embodiment its
    robot_type names (LeRobot's tools rewrite info.json without vla-bench's own key), else None."""
    if isinstance(embodiment, str):
        return get_embodiment(embodiment)
    if embodiment is not None:
        return embodiment
    saved = info.get("vla_bench", {}).get("embodiment_spec")
    if saved:
        return EmbodimentSpec.from_dict(saved)
    return EMBODIMENTS.get(info.get("robot_type") or "")


class DatasetReader:
    """A LeRobotDataset v3 directory in memory: low-dimensional columns as numpy arrays, images decoded on request.

    Rows are ordered episode by episode (episodes in episode_index order, frames in frame_index order); episode `i`
    is the i-th listed episode and covers rows `episode_starts[i] : episode_starts[i] + episode_lengths[i]`.
    """

    def __init__(self, root: str | Path, embodiment: EmbodimentSpec | str | None = None):
        self.root = Path(root)
        self.info = json.loads((self.root / INFO_PATH).read_text())
        if not str(self.info.get("codebase_version", "")).startswith("v3"):
            raise ValueError(f"{self.root}: codebase_version {self.info.get('codebase_version')!r}; only "
                             "LeRobotDataset v3.x is supported (convert older datasets with LeRobot's v2.1 -> v3.0 "
                             "script)")
        self.features: dict = self.info["features"]
        self.fps = self.info["fps"]
        self.embodiment = _resolve_embodiment(self.info, embodiment)
        self.tasks = read_tasks(self.root)
        self.episodes = read_episode_rows(self.root)
        stats_path = self.root / STATS_PATH
        self.stats: dict | None = json.loads(stats_path.read_text()) if stats_path.exists() else None
        self._load_frames()
        if self.embodiment is not None and self.action.shape[1] != self.embodiment.action_dim:
            raise ValueError(f"{self.root}: actions have {self.action.shape[1]} channels, embodiment "
                             f"{self.embodiment.name!r} has {self.embodiment.action_dim}")
        # Row groups of image columns (encoded bytes), most recently used kept within a byte budget: training
        # draws revisit every group, and a count limit thrashed (64 groups of 64 rows held 2 views of 32 episodes).
        self._image_groups: OrderedDict[tuple, pa.StructArray] = OrderedDict()
        self._image_cache_bytes = 0
        self._group_starts = lru_cache(maxsize=None)(self._read_group_starts)

    def _load_frames(self) -> None:
        numbers = sorted({_data_file_number(r) for r in self.episodes})
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (STATE, ACTION, "episode_index", "frame_index",
                                                              "task_index", "file_id", "row_in_file")}
        for file_id, number in enumerate(numbers):
            path = self.root / _data_path(number)
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[k for k in parts if k in names])
            n = table.num_rows
            for key in parts:
                if key in names:
                    parts[key].append(_column_to_numpy(table.column(key)))
            if STATE not in names:
                parts[STATE].append(np.zeros((n, 0), np.float32))
            parts["file_id"].append(np.full(n, file_id))
            parts["row_in_file"].append(np.arange(n))
        cols = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in parts.items()}
        ids = np.array([r["episode_index"] for r in self.episodes], dtype=np.int64)
        keep = np.isin(cols["episode_index"], ids)  # rows of unlisted episodes are not part of the dataset
        order = np.lexsort((cols["frame_index"][keep], cols["episode_index"][keep]))
        cols = {k: v[keep][order] for k, v in cols.items()}
        self._data_files = [_data_path(n) for n in numbers]
        state_dim = self.features[STATE]["shape"][0] if STATE in self.features else 0
        self.state = cols[STATE].astype(np.float32).reshape(len(order), state_dim)
        self.action = cols[ACTION].astype(np.float32).reshape(len(order), self.features[ACTION]["shape"][0])
        self.task_index = cols["task_index"].astype(np.int64)
        self.frame_index = cols["frame_index"].astype(np.int64)
        self._file_id, self._row_in_file = cols["file_id"], cols["row_in_file"]
        self.episode_starts = np.searchsorted(cols["episode_index"], ids, side="left")
        self.episode_lengths = np.searchsorted(cols["episode_index"], ids, side="right") - self.episode_starts
        for row, n in zip(self.episodes, self.episode_lengths):
            if n != row["length"]:
                raise ValueError(f"{self.root}: episode {row['episode_index']} has {n} frames in the data files, "
                                 f"the episodes table says {row['length']}")
        self.episode_of_row = np.repeat(np.arange(len(ids)), self.episode_lengths)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return len(self.action)

    @property
    def view_tags(self) -> list[str]:
        """Camera views (image or video features `observation.images.<view>`)."""
        return [k[len(IMAGE_PREFIX):] for k, f in self.features.items()
                if k.startswith(IMAGE_PREFIX) and f["dtype"] in ("image", "video")]

    @property
    def image_views(self) -> list[str]:
        """The views whose frames this reader can decode (stored as images, not video)."""
        return [v for v in self.view_tags if self.features[IMAGE_PREFIX + v]["dtype"] == "image"]

    def episode_task(self, i: int) -> str:
        """The instruction of episode `i` (the task of its first frame)."""
        return self.tasks[self.task_index[self.episode_starts[i]]]

    def episode_extras(self, i: int) -> dict:
        """vla-bench extras of episode `i` (suite, init index, seed, ...); empty for foreign datasets."""
        return _extras(self.episodes[i])

    def _read_group_starts(self, file_id: int) -> np.ndarray:
        meta = pq.read_metadata(self.root / self._data_files[file_id])
        return np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])

    def _image_group(self, file_id: int, key: str, group: int) -> pa.StructArray:
        cache, k = self._image_groups, (file_id, key, group)
        if k in cache:
            cache.move_to_end(k)
            return cache[k]
        table = pq.ParquetFile(self.root / self._data_files[file_id]).read_row_group(group, columns=[key])
        cache[k] = column = table.column(key).combine_chunks()
        self._image_cache_bytes += column.nbytes
        while self._image_cache_bytes > IMAGE_CACHE_BYTES and len(cache) > 1:
            self._image_cache_bytes -= cache.popitem(last=False)[1].nbytes
        return column

    def image(self, view: str, row: int) -> np.ndarray:
        """The frame of `view` at dataset row `row`: uint8 [H, W, 3]."""
        key = IMAGE_PREFIX + view
        feature = self.features.get(key)
        if feature is None:
            raise KeyError(f"{self.root} has no camera view {view!r}; views: {self.view_tags}")
        if feature["dtype"] == "video":
            raise VideoNotSupported(f"{self.root}: {key} is stored as video ({self.info.get('video_path')}); "
                                    "video decoding is not supported yet. State, actions and tasks load; for images "
                                    "re-encode the dataset with image features")
        file_id, row_in_file = int(self._file_id[row]), int(self._row_in_file[row])
        starts = self._group_starts(file_id)
        group = int(np.searchsorted(starts, row_in_file, side="right")) - 1
        value = self._image_group(file_id, key, group)[row_in_file - int(starts[group])].as_py()
        if not value or value.get("bytes") is None:
            raise ValueError(f"{self.root}: row {row} of {key} has no embedded image bytes ({value})")
        return decode_image(value["bytes"])

    def episode(self, i: int, images: bool | list[str] = False) -> Episode:
        """Episode `i` with its state, actions, instruction, extras and, if asked, the frames of the given views."""
        start, stop = int(self.episode_starts[i]), int(self.episode_starts[i] + self.episode_lengths[i])
        views = self.view_tags if images is True else list(images or [])
        frames = {v: np.stack([self.image(v, r) for r in range(start, stop)]) for v in views}
        return Episode(task=self.episode_task(i), state=self.state[start:stop], action=self.action[start:stop],
                       images=frames, extras=self.episode_extras(i))

    def _normalizer(self, key: str, data: np.ndarray, binary: tuple[int, ...]) -> QuantileNormalizer:
        # stats.json quantiles when they describe exactly these rows, else fitted here (foreign datasets without
        # quantiles, or stats left stale by a kill between commit and stats rewrite).
        s = (self.stats or {}).get(key, {})
        if "q01" in s and "q99" in s and np.ravel(s.get("count", [-1]))[0] == len(data):
            return QuantileNormalizer(q01=np.ravel(s["q01"]), q99=np.ravel(s["q99"]), binary=binary)
        return QuantileNormalizer.fit(data, binary=binary)

    def norm_stats(self) -> NormStats:
        """Quantile normalizers of the actions (binary channels from the embodiment) and of the state."""
        if self.embodiment is None:
            raise ValueError(f"{self.root} names no vla-bench embodiment; pass embodiment= to DatasetReader "
                             f"(registered: {', '.join(sorted(EMBODIMENTS))})")
        action = self._normalizer(ACTION, self.action, self.embodiment.binary_channels)
        state = self._normalizer(STATE, self.state, ()) if self.state.shape[1] else None
        return NormStats(embodiment=self.embodiment.name, action=action, state=state)
