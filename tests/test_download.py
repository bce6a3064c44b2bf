"""The download path, against a local HTTP server on 127.0.0.1 serving the shared data (never the internet)."""
import functools
import gzip
import http.server
import threading

import numpy as np
import pytest

from vaekit.data import load_idx_set
from vaekit.errors import VaekitError
from conftest import require_data


@pytest.fixture()
def server(tmp_path):
    """Serves tmp_path/www over HTTP on a free loopback port; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_verifies_checksums_and_caches(server, tmp_path):
    src = require_data("mnist")
    www, url = server
    for f in src.iterdir():
        (www / f.name).write_bytes(f.read_bytes())
    target = tmp_path / "cache"
    xtr, ytr, xte, yte = load_idx_set("mnist", target, mirrors=(url,))
    assert xtr.shape == (60000, 28, 28) and yte.shape == (10000,)
    assert sorted(p.name for p in (target / "mnist").iterdir()) == sorted(p.name for p in src.iterdir())
    # a second load reads the cache: with the server gone it still works
    for f in www.iterdir():
        f.unlink()
    np.testing.assert_array_equal(load_idx_set("mnist", target, mirrors=(url,))[3], yte)


def test_download_rejects_wrong_bytes_and_keeps_nothing(server, tmp_path):
    src = require_data("mnist")
    www, url = server
    for f in src.iterdir():
        (www / f.name).write_bytes(f.read_bytes())
    # a tampered label file: valid IDX, wrong content
    labels = gzip.decompress((src / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (www / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:-1] + bytes([(labels[-1] + 1) % 10])))
    target = tmp_path / "cache"
    with pytest.raises(VaekitError, match="checksum"):
        load_idx_set("mnist", target, mirrors=(url,))
    assert not (target / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_unreachable_mirror_gives_a_fix(tmp_path, server):
    _, url = server  # serves nothing: every file is a 404
    with pytest.raises(VaekitError, match=r"not found in .*downloading it failed.*--data-dir"):
        load_idx_set("fashion-mnist", tmp_path / "empty", mirrors=(url,))
