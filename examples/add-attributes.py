"""Give a copy of the default sweep's data two attribute columns, as datasets/README.md shows for your own file.

The default sweep prepares datasets/data/wordnet-en-minilm-20k.hdf5 (run it once first). This copies it to
datasets/data/mydocs.hdf5 and adds, seeded, a department (fx 1%, loans 50%, cards) and a year per row, so
examples/filters-own-file.yaml can filter at about 1% and 50%:
    .venv/bin/python examples/add-attributes.py && .venv/bin/python -m vdbbench sweep -c examples/filters-own-file.yaml
"""

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from vdbbench.data.datasets import data_dir

source, target = data_dir() / "wordnet-en-minilm-20k.hdf5", data_dir() / "mydocs.hdf5"
if not source.exists():
    sys.exit(f"{source} is missing: run the default sweep once (python -m vdbbench sweep) to prepare it")
shutil.copyfile(source, target)
with h5py.File(target, "a") as f:  # values in train's row order, len(train) each
    n = f["train"].shape[0]
    rng = np.random.default_rng(0)
    depts = rng.choice(["loans", "cards", "fx"], size=n, p=[0.5, 0.49, 0.01])
    g = f.require_group("attributes")
    g["year"] = rng.integers(2000, 2025, size=n).astype(np.int64)
    g.create_dataset("dept", data=depts.tolist(), dtype=h5py.string_dtype())  # UTF-8 strings
print(f"{Path(target)}: {n} rows; dept fx {np.mean(depts == 'fx'):.3f}, loans {np.mean(depts == 'loans'):.3f}")
