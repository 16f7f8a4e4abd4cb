"""LeRobotDataset v3 read/write: round trip, append, crash safety, and foreign datasets with video features."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vla_bench.data.lerobot import (ACTION, DatasetReader, DatasetWriter, Episode, VideoNotSupported, read_tasks,
                                    vector_stats)
from vla_bench.embodiment import get_embodiment

LIBERO = get_embodiment("libero_panda")  # 7 actions (gripper binary), 8 state dims, two camera views


def random_episodes(n, seed=0, image_size=12, spec=LIBERO):
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(n):
        t = int(rng.integers(3, 9))
        images = {v: rng.integers(0, 256, (t, image_size, image_size, 3), dtype=np.uint8)
                  for v in spec.view_tags} if image_size else {}
        eps.append(Episode(task=f"put the bowl number {i % 3} on the plate",
                           state=rng.normal(size=(t, spec.state_dim)).astype(np.float32),
                           action=rng.normal(size=(t, spec.action_dim)).astype(np.float32),
                           images=images, extras={"init_index": i, "suite": "libero_object"}))
    return eps


def assert_same_episode(got: Episode, want: Episode):
    assert got.task == want.task and got.extras == want.extras
    assert np.array_equal(got.state, want.state) and np.array_equal(got.action, want.action)
    assert got.images.keys() == want.images.keys()
    for view in want.images:
        assert got.images[view].dtype == np.uint8 and np.array_equal(got.images[view], want.images[view])


def test_round_trip_is_exact_and_stats_are_numpys(tmp_path):
    eps = random_episodes(5)
    with DatasetWriter(tmp_path, LIBERO, image_size=12, flush_every=2) as writer:
        for ep in eps:
            writer.add(ep)
    # 2 + 2 + 1 episodes: three data files, in the v3 layout
    assert sorted(p.name for p in (tmp_path / "data" / "chunk-000").iterdir()) == [
        "file-000.parquet", "file-001.parquet", "file-002.parquet"]
    ds = DatasetReader(tmp_path)
    assert ds.num_episodes == 5 and ds.num_frames == sum(len(e) for e in eps)
    assert ds.embodiment == LIBERO and ds.view_tags == ["cam_front", "cam_wrist"] and ds.fps == 20
    assert ds.tasks == [f"put the bowl number {i} on the plate" for i in range(3)]
    for i, ep in enumerate(eps):
        assert_same_episode(ds.episode(i, images=True), ep)
    np.testing.assert_array_equal(ds.episode_lengths, [len(e) for e in eps])
    np.testing.assert_array_equal(ds.episode_starts, np.cumsum([0] + [len(e) for e in eps[:-1]]))
    np.testing.assert_array_equal(ds.frame_index, np.concatenate([np.arange(len(e)) for e in eps]))

    info = ds.info
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 5 and info["splits"] == {"train": "0:5"}
    assert info["features"]["observation.images.cam_front"]["dtype"] == "image"
    assert info["features"][ACTION]["names"] == list(LIBERO.action_names)
    assert info["vla_bench"]["embodiment"] == "libero_panda"
    rows = pq.read_table(tmp_path / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [
        (int(s), int(s + n)) for s, n in zip(ds.episode_starts, ds.episode_lengths)]
    frames = pq.read_table(tmp_path / "data/chunk-000/file-001.parquet")
    assert frames.column("index").to_pylist() == list(range(rows[2]["dataset_from_index"], rows[3]["dataset_to_index"]))
    assert frames.schema.field("observation.images.cam_wrist").type == pa.struct(
        [("bytes", pa.binary()), ("path", pa.string())])

    actions = np.concatenate([e.action for e in eps]).astype(np.float64)
    stats = json.loads((tmp_path / "meta/stats.json").read_text())
    np.testing.assert_array_equal(stats[ACTION]["q01"], np.quantile(actions, 0.01, axis=0))
    np.testing.assert_array_equal(stats[ACTION]["q99"], np.quantile(actions, 0.99, axis=0))
    np.testing.assert_array_equal(stats[ACTION]["mean"], actions.mean(0))
    assert stats[ACTION]["count"] == [len(actions)]
    pixels = np.concatenate([e.images["cam_front"] for e in eps]).reshape(-1, 3) / 255.0
    assert np.shape(stats["observation.images.cam_front"]["mean"]) == (3, 1, 1)
    np.testing.assert_allclose(np.ravel(stats["observation.images.cam_front"]["mean"]), pixels.mean(0), atol=1e-9)
    norm = ds.norm_stats()
    np.testing.assert_allclose(norm.action.q01, np.quantile(actions, 0.01, axis=0), rtol=1e-6)
    assert norm.action.binary == (6,) and norm.embodiment == "libero_panda" and norm.state.dim == 8


def test_random_image_access_across_row_groups(tmp_path):
    rng = np.random.default_rng(4)
    frames = {v: rng.integers(0, 256, (150, 6, 6, 3), dtype=np.uint8) for v in LIBERO.view_tags}
    ep = Episode("stack the cups", np.zeros((150, 8), np.float32), np.zeros((150, 7), np.float32), frames)
    with DatasetWriter(tmp_path, LIBERO, image_size=6) as writer:
        writer.add(random_episodes(1, image_size=6)[0])
        writer.add(ep)
    assert pq.read_metadata(tmp_path / "data/chunk-000/file-000.parquet").num_row_groups > 2
    ds = DatasetReader(tmp_path)
    start = int(ds.episode_starts[1])
    for t in rng.permutation(150)[:40]:
        np.testing.assert_array_equal(ds.image("cam_wrist", start + t), frames["cam_wrist"][t])
    assert_same_episode(ds.episode(1, images=True), ep)


def test_append_after_reopen_and_mismatch_is_refused(tmp_path):
    eps = random_episodes(6, image_size=0)
    with DatasetWriter(tmp_path, LIBERO, flush_every=10) as writer:
        for ep in eps[:4]:
            writer.add(ep)
    with DatasetWriter(tmp_path, LIBERO) as writer:
        assert len(writer.episodes) == 4 and [x["init_index"] for x in writer.recorded_extras()] == [0, 1, 2, 3]
        for ep in eps[4:]:
            writer.add(ep)
    ds = DatasetReader(tmp_path)
    assert ds.num_episodes == 6 and len(ds.tasks) == 3  # the task table grew without duplicates
    for i, ep in enumerate(eps):
        assert_same_episode(ds.episode(i), ep)
    index = np.concatenate([pq.read_table(p).column("index").to_numpy()
                            for p in sorted((tmp_path / "data/chunk-000").iterdir())])
    np.testing.assert_array_equal(index, np.arange(ds.num_frames))
    assert json.loads((tmp_path / "meta/stats.json").read_text())[ACTION]["count"] == [ds.num_frames]
    with pytest.raises(ValueError, match="cannot append"):
        DatasetWriter(tmp_path, LIBERO, image_size=32)
    with pytest.raises(ValueError, match="cannot append"):
        DatasetWriter(tmp_path, get_embodiment("toy_point"))


def test_a_kill_loses_only_the_unflushed_batch(tmp_path):
    eps = random_episodes(5, image_size=8)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        from tests.test_lerobot_dataset import random_episodes, LIBERO
        from vla_bench.data.lerobot import DatasetWriter
        writer = DatasetWriter({str(tmp_path)!r}, LIBERO, image_size=8, flush_every=2)
        for ep in random_episodes(5, image_size=8):
            writer.add(ep)
        os.kill(os.getpid(), signal.SIGKILL)  # episode 4 is still in memory
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    ds = DatasetReader(tmp_path)
    assert ds.num_episodes == 4
    for i in range(4):
        assert_same_episode(ds.episode(i, images=True), eps[i])

    # A kill between a data file's rename and the commit leaves an unlisted data file, and one mid-write a .tmp:
    # the reader ignores both, a reopening writer removes them and writes its batch in their place.
    data = tmp_path / "data/chunk-000"
    shutil.copy(data / "file-000.parquet", data / "file-002.parquet")
    (data / "file-003.parquet.tmp").write_bytes(b"PAR1 torn")
    assert DatasetReader(tmp_path).num_frames == ds.num_frames
    with DatasetWriter(tmp_path, LIBERO, image_size=8) as writer:
        assert not (data / "file-003.parquet.tmp").exists() and not (data / "file-002.parquet").exists()
        writer.add(eps[4])
    ds = DatasetReader(tmp_path)
    assert ds.num_episodes == 5 and sorted(p.name for p in data.iterdir())[-1] == "file-002.parquet"
    assert_same_episode(ds.episode(4, images=True), eps[4])


def write_foreign_video_dataset(root):
    """A LeRobot-written v3 dataset as found on the Hub: variable-length list columns, a video camera, stats without
    quantiles, and the tasks table as pandas writes it."""
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    features = {
        "observation.images.front": {"dtype": "video", "shape": [64, 64, 3], "names": ["height", "width", "channels"],
                                     "info": {"video.codec": "av1", "video.fps": 10}},
        "observation.state": {"dtype": "float32", "shape": [8], "names": {"motors": [f"m{i}" for i in range(8)]}},
        "action": {"dtype": "float32", "shape": [7], "names": {"motors": list("xyzabcg")}},
        **{k: {"dtype": d, "shape": [1], "names": None} for k, d in
           [("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"), ("index", "int64"),
            ("task_index", "int64")]},
    }
    info = {"codebase_version": "v3.0", "robot_type": "panda", "total_episodes": 2, "total_frames": 7,
            "total_tasks": 2, "chunks_size": 1000, "fps": 10, "splits": {"train": "0:2"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", "features": features}
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/stats.json").write_text(json.dumps({"action": {"min": [0] * 7, "max": [1] * 7}}))
    pq.write_table(pa.table({"task_index": [0, 1], "__index_level_0__": ["open the drawer", "close the drawer"]}),
                   root / "meta/tasks.parquet")
    pq.write_table(pa.table({"episode_index": [0, 1], "tasks": [["close the drawer"], ["open the drawer"]],
                             "length": [3, 4], "data/chunk_index": [0, 0], "data/file_index": [0, 0],
                             "dataset_from_index": [0, 3], "dataset_to_index": [3, 7],
                             "videos/observation.images.front/chunk_index": [0, 0]}),
                   root / "meta/episodes/chunk-000/file-000.parquet")
    rng = np.random.default_rng(1)
    action, state = rng.normal(size=(7, 7)), rng.normal(size=(7, 8))
    # frames stored out of order: the reader orders them by (episode_index, frame_index)
    order = [4, 0, 6, 1, 3, 2, 5]
    ep, frame = np.array([0, 0, 0, 1, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2, 3])
    pq.write_table(pa.table({
        "observation.state": pa.array([list(state[i]) for i in order], pa.list_(pa.float32())),
        "action": pa.array([list(action[i]) for i in order], pa.list_(pa.float64())),
        "timestamp": pa.array(frame[order] / 10, pa.float32()), "frame_index": frame[order],
        "episode_index": ep[order], "index": np.array(order), "task_index": np.array([1, 1, 1, 0, 0, 0, 0])[order]}),
        root / "data/chunk-000/file-000.parquet")
    return action.astype(np.float32), state.astype(np.float32)


def test_foreign_dataset_with_video_loads_and_only_video_frames_error(tmp_path):
    action, state = write_foreign_video_dataset(tmp_path)
    ds = DatasetReader(tmp_path)
    assert ds.embodiment is None and ds.num_episodes == 2 and ds.view_tags == ["front"] and ds.image_views == []
    np.testing.assert_array_equal(ds.action, action)
    np.testing.assert_array_equal(ds.state, state)
    assert read_tasks(tmp_path) == ["open the drawer", "close the drawer"]
    assert [ds.episode_task(i) for i in range(2)] == ["close the drawer", "open the drawer"]
    assert len(ds.episode(1)) == 4 and ds.episode(1).extras == {}
    with pytest.raises(VideoNotSupported, match="video decoding is not supported yet"):
        ds.image("front", 0)
    with pytest.raises(VideoNotSupported):
        ds.episode(0, images=True)
    with pytest.raises(KeyError, match="no camera view 'left'"):
        ds.image("left", 0)
    with pytest.raises(ValueError, match="pass embodiment="):
        ds.norm_stats()
    # stats.json has no quantiles: they are fitted from the data
    norm = DatasetReader(tmp_path, embodiment="libero_panda").norm_stats()
    np.testing.assert_allclose(norm.action.q99, np.quantile(action.astype(np.float64), 0.99, axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="7 channels, embodiment 'toy_point' has 4"):
        DatasetReader(tmp_path, embodiment="toy_point")


def test_vector_stats_quantiles_match_numpy():
    x = np.random.default_rng(3).normal(size=(101, 4))
    s = vector_stats(x)
    for name, q in (("q01", 0.01), ("q10", 0.1), ("q50", 0.5), ("q90", 0.9), ("q99", 0.99)):
        np.testing.assert_array_equal(s[name], np.quantile(x, q, axis=0))
    assert s["count"] == [101] and np.allclose(s["std"], x.std(0))
