"""Datasets: LeRobotDataset v3 read/write (`lerobot`), scripted collection (`collect`), the synthetic text-action
corpus for T2A (`synthetic`) and the training-sample mixtures over them (`mixture`). Needs the `data` extra
(pyarrow, pillow)."""
