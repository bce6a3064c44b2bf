"""Training from a .npy file that stays on disk (--memmap): rows are read per batch, never copied whole."""
import subprocess
import sys

import numpy as np
import pytest

from vaekit.config import DataConfig
from vaekit.data import DiskRows, load_data
from vaekit.errors import VaekitError
from conftest import ROOT


def test_disk_rows_read_the_requested_rows(tmp_path):
    a = np.arange(20 * 5 * 6 * 3, dtype=np.float64).reshape(20, 5, 6, 3)  # channels-last RGB images
    np.save(tmp_path / "a.npy", a)
    rows = DiskRows.open(tmp_path / "a.npy")
    assert rows.shape == (20, 3, 5, 6) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[[5, 1, 7]], a[[5, 1, 7]].transpose(0, 3, 1, 2))
    sub = rows.subset(np.array([9, 3, 4]))
    np.testing.assert_array_equal(sub[1:], a[[3, 4]].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(np.asarray(sub), sub[:])


def test_memmap_splits_match_the_loaded_splits(tmp_path, mnist_small):
    np.save(tmp_path / "m.npy", mnist_small[0][:300])
    loaded = load_data(DataConfig(str(tmp_path / "m.npy")))
    mapped = load_data(DataConfig(str(tmp_path / "m.npy"), memmap=True))
    assert isinstance(mapped.train.x, DiskRows)
    for a, b in ((loaded.train, mapped.train), (loaded.val, mapped.val), (loaded.test, mapped.test)):
        np.testing.assert_array_equal(a.x, np.asarray(b.x))


def test_bad_memmap_inputs(tmp_path):
    x = np.random.default_rng(0).random((30, 4))
    x[11, 2] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(VaekitError, match="NaN or inf values .first: row 11"):
        DiskRows.open(tmp_path / "nan.npy")
    np.savez(tmp_path / "z.npz", x=x)
    with pytest.raises(VaekitError, match="memmap reads .npy files"):
        load_data(DataConfig(str(tmp_path / "z.npz"), memmap=True))


def test_training_from_disk_holds_no_copy_of_the_data(tmp_path):
    """117 MB of uint8 images: the process's anonymous memory grows by far less while it trains."""
    code = f"""
import sys, threading, time, numpy as np
def anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon'):
            return int(line.split()[1]) / 1024
peak = [0.0]
def watch():
    while True:
        peak[0] = max(peak[0], anon()); time.sleep(0.005)
path = sys.argv[1] + '/big.npy'
np.lib.format.open_memmap(path, 'w+', np.uint8, (150000, 784))[:] = 7  # written through a map: no copy here
from vaekit.cli import main
start = anon()
threading.Thread(target=watch, daemon=True).start()
assert main(['train', '--data', path, '--memmap', '--latent-dim', '2', '--hidden', '8', '--epochs', '1',
             '--batch-size', '512', '--device', 'cpu', '--out', sys.argv[1] + '/run', '--quiet']) == 0
print(peak[0] - start)
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    growth = float(out.stdout.strip().splitlines()[-1])
    assert growth < 60, f"anonymous memory grew by {growth:.0f} MB while training on 117 MB from disk"
