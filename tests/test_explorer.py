"""The latent-space explorer: its API on image, sentence and table runs, its refusals of hostile requests over
a real socket, the command line, and the page itself in Chromium driven by Playwright."""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_data
from vaekit.cli import main as cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir, german_csv):
    """Small runs of the three modalities, trained on real data in seconds."""
    root = tmp_path_factory.mktemp("explore")
    brown = require_data("text", "brown", "brown_sentences.txt")
    corpus = root / "brown.txt"
    corpus.write_text("\n".join(brown.read_text(encoding="utf-8").splitlines()[:600]) + "\n", encoding="utf-8")
    assert cli(["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "1000", "--epochs", "1",
                "--latent-dim", "4", "--hidden", "64", "--quiet", "--out", str(root / "image")]) == 0
    assert cli(["text", "train", "--data", str(corpus), "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "32",
                "--embed-dim", "16", "--quiet", "--out", str(root / "text")]) == 0
    assert cli(["tabular", "fit", "--data", str(german_csv), "--epochs", "2", "--quiet",
                "--out", str(root / "table")]) == 0
    return {kind: str(root / kind) for kind in ("image", "text", "table")}


@pytest.fixture(scope="module")
def servers(runs):
    from vaekit.explorer import Explorer, open_space

    started = {kind: Explorer(open_space(run, points=300), port=0).start() for kind, run in runs.items()}
    yield started
    for ex in started.values():
        ex.stop()


def request(ex, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One raw HTTP request, the path sent exactly as given (no client-side normalisation of '..')."""
    conn = http.client.HTTPConnection(ex.host, ex.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def post(ex, path: str, doc) -> tuple[int, dict]:
    status, body = request(ex, "POST", path, json.dumps(doc).encode(), {"content-type": "application/json"})
    return status, json.loads(body)


def get(ex, path: str) -> tuple[int, dict]:
    status, body = request(ex, "GET", path)
    return status, json.loads(body)


def png(item: dict) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(item["image"].split(",", 1)[1]))))


# -- the API, one run of each modality -------------------------------------------------------------------------
def test_an_image_run_decodes_what_the_model_decodes_and_a_slider_move_changes_it(servers):
    ex = servers["image"]
    status, info = get(ex, "/api/info")
    assert status == 200 and info["kind"] == "image" and info["dim"] == 4 and len(info["points"]) == 300
    assert sorted(info["classes"]) == [str(d) for d in range(10)]
    space = _space(ex)
    z = np.asarray(info["origin"], dtype=np.float32)
    status, item = post(ex, "/api/decode", {"z": z.tolist()})
    assert status == 200
    expected = np.clip(space.model.inverse_transform(z[None])[0, 0], 0, 1) * 255 + 0.5
    assert np.array_equal(png(item), expected.astype(np.uint8))
    moved = z.copy()
    d = info["sliders"][0]
    moved[d] = info["high"][d]
    _, item2 = post(ex, "/api/decode", {"z": moved.tolist()})
    assert np.abs(png(item2).astype(int) - png(item).astype(int)).sum() > 1000  # the digit changed


def test_an_example_carries_its_code_and_the_map_point_under_it_decodes_that_code(servers):
    ex = servers["image"]
    space = _space(ex)
    _, info = get(ex, "/api/info")
    status, example = get(ex, "/api/example/7")
    assert status == 200 and example["index"] == 7
    assert np.allclose(example["z"], space.model.transform(space.images[7:8])[0], atol=1e-3)
    u, v = info["points"][7]
    status, at = post(ex, "/api/point", {"u": u, "v": v, "k": 5})
    assert status == 200 and len(at["neighbours"]) == 5
    # PCA's inverse of the example's own point lies on the plane through the codes' mean; projected back
    # onto the map it is the same point
    comp, mean = np.asarray(info["projection"]["components"]), np.asarray(info["projection"]["mean"])
    assert np.allclose(comp @ (np.asarray(at["z"]) - mean), [u, v], atol=1e-2)
    dists = [n["distance"] for n in at["neighbours"]]
    assert dists == sorted(dists)


def test_interpolation_runs_from_a_to_b_and_samples_repeat_with_their_seed(servers):
    ex = servers["image"]
    space = _space(ex)
    status, doc = post(ex, "/api/interpolate", {"a": 3, "b": 11, "steps": 6, "method": "spherical"})
    assert status == 200 and len(doc["items"]) == 6
    ends = space.model.inverse_transform(space.codes[[3, 11]])
    for item, x in zip([doc["items"][0], doc["items"][-1]], ends):
        assert np.abs(png(item) / 255 - x[0]).max() < 2e-3
    _, s1 = post(ex, "/api/sample", {"n": 4, "seed": 5})
    _, s2 = post(ex, "/api/sample", {"n": 4, "seed": 5})
    _, s3 = post(ex, "/api/sample", {"n": 4, "seed": 6})
    assert s1 == s2 and s1 != s3 and len(s1["items"]) == 4


def test_a_sentence_run_decodes_sentences_and_colours_its_map_by_length(servers):
    ex = servers["text"]
    _, info = get(ex, "/api/info")
    assert info["kind"] == "text" and info["label_name"] == "length" and all("words" in c for c in info["classes"])
    status, item = post(ex, "/api/decode", {"z": info["origin"]})
    assert status == 200 and isinstance(item["text"], str) and item["text"]
    _, example = get(ex, "/api/example/0")
    assert example["text"] == _space(ex).sentences[0]
    _, doc = post(ex, "/api/interpolate", {"a": 0, "b": 1, "steps": 4})
    assert [type(i["text"]) for i in doc["items"]] == [str] * 4


def test_a_table_run_decodes_rows_and_samples_under_a_condition(servers):
    ex = servers["table"]
    _, info = get(ex, "/api/info")
    assert info["kind"] == "table" and info["label_name"] == "class" and info["columns"][-1] == "class"
    status, item = post(ex, "/api/decode", {"z": info["origin"]})
    assert status == 200 and list(item["row"]) == info["columns"]
    column = "a1"
    value = info["conditions"][column][1]
    status, doc = post(ex, "/api/sample", {"n": 12, "seed": 0, "conditions": {column: value}})
    assert status == 200 and [r["row"][column] for r in doc["items"]] == [value] * 12
    status, doc = post(ex, "/api/sample", {"n": 2, "conditions": {column: "no such value"}})
    assert status == 422 and "cannot condition" in doc["error"]


# -- hostile requests --------------------------------------------------------------------------------------------
TRAVERSALS = ["/static/../space.py", "/static/..%2fserver.py", "/static/%2e%2e/%2e%2e/runs.py",
              "/static/%2e%2e%2f%2e%2e%2fconfig.json", "/%2e%2e/%2e%2e/etc/passwd", "/static/....//....//etc/passwd",
              "/static/%252e%252e/space.py", "/static//etc/passwd", "/static/..\\space.py", "/config.json",
              "/model.safetensors", "/static/%00", "/api/example/..%2f..%2fconfig.json"]


def test_path_traversal_and_unknown_paths_get_4xx_and_never_a_file_outside_the_static_folder(servers, runs):
    ex = servers["image"]
    secret = (Path(runs["image"]) / "config.json").read_bytes()[:40]
    for path in TRAVERSALS:
        status, body = request(ex, "GET", path)
        assert 400 <= status < 500, (path, status)
        assert b"import " not in body and secret not in body and b"root:" not in body, path
    assert request(ex, "GET", "/static/app.js")[0] == 200
    assert get(ex, "/api/info")[0] == 200


@pytest.mark.parametrize("body", [
    b'{"z": [NaN, 0, 0, 0]}', b'{"z": [Infinity, 0, 0, 0]}', b'{"z": [1e999, 0, 0, 0]}', b'{"z": [1e9, 0, 0, 0]}',
    b'{"z": ["0", 0, 0, 0]}', b'{"z": [true, 0, 0, 0]}', b'{"z": [0, 0, 0]}', b'{"z": null}', b'{}', b'[0, 0]',
    b'{"z": [0, 0, 0, 0', b'\xff\xfe', b'[' * 30000, b'{"z": [[0], 0, 0, 0]}'])
def test_malformed_or_non_finite_latents_get_4xx_and_the_server_keeps_answering(servers, body):
    ex = servers["image"]
    status, answer = request(ex, "POST", "/api/decode", body, {"content-type": "application/json"})
    assert 400 <= status < 500 and "error" in json.loads(answer)
    assert get(ex, "/api/info")[0] == 200


def test_huge_bodies_bad_fields_wrong_methods_and_foreign_hosts_get_4xx(servers):
    ex = servers["image"]
    status, _ = request(ex, "POST", "/api/decode", b"[" + b"0," * 2_000_000 + b"0]",
                        {"content-type": "application/json"})
    assert status == 413
    # a body that streams past the limit without a Content-Length
    conn = http.client.HTTPConnection(ex.host, ex.port, timeout=30)
    conn.putrequest("POST", "/api/decode")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for _ in range(100):
        conn.send(b"1000\r\n" + b" " * 4096 + b"\r\n")
    conn.send(b"0\r\n\r\n")
    assert conn.getresponse().status == 413
    conn.close()
    for path, doc in [("/api/interpolate", {"a": 0, "b": 10 ** 9}), ("/api/interpolate", {"a": 0, "b": 1, "steps": 10 ** 6}),
                      ("/api/interpolate", {"a": 0, "b": 1, "method": "cubic"}), ("/api/sample", {"n": -1}),
                      ("/api/sample", {"n": 2, "seed": 1.5}), ("/api/point", {"u": "1", "v": 0}),
                      ("/api/neighbours", {"z": [0, 0, 0, 0], "k": 10 ** 6}), ("/api/sample", {"conditions": [1]})]:
        status, answer = post(ex, path, doc)
        assert 400 <= status < 500 and answer["error"], (path, doc)
    assert request(ex, "GET", "/api/example/-1")[0] == 404
    assert request(ex, "GET", "/api/example/100000")[0] == 404
    assert request(ex, "GET", "/api/decode")[0] == 405
    assert request(ex, "DELETE", "/api/info")[0] == 405
    assert request(ex, "GET", "/api/info", headers={"Host": "evil.example"})[0] == 400  # DNS rebinding
    conn = http.client.HTTPConnection(ex.host, ex.port, timeout=30)
    conn.request("GET", "/")
    res = conn.getresponse()
    assert res.status == 200 and b"vaekit explorer" in res.read()
    assert "default-src 'self'" in res.getheader("content-security-policy")
    assert res.getheader("x-content-type-options") == "nosniff" and res.getheader("x-frame-options") == "DENY"
    conn.close()
    assert get(ex, "/api/info")[0] == 200


# -- the command line ------------------------------------------------------------------------------------------
def test_the_command_prints_its_url_serves_the_run_and_warns_off_loopback(runs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "explore", runs["table"], "--port", "0",
                             "--host", "0.0.0.0", "--points", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"http://[^\s]+/", line)
            if m:
                url = m.group()
                break
        assert url is not None, proc.stderr.read()
        host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        conn.request("GET", "/api/info")
        res = conn.getresponse()
        assert res.status == 200 and json.loads(res.read())["kind"] == "table"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "anyone who can reach this machine" in err


def test_the_command_refuses_a_language_model_and_a_port_in_use(runs, tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert cli(["explore", runs["image"], "--port", str(taken.getsockname()[1]), "--points", "50"]) == 2
    assert "cannot listen on" in capsys.readouterr().err
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c .\nb c a .\nc a b .\n" * 20)
    assert cli(["text", "train", "--data", str(corpus), "--model", "lstm-lm", "--epochs", "1", "--hidden-dim", "8",
                "--embed-dim", "8", "--quiet", "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    assert cli(["explore", str(tmp_path / "lm")]) == 2
    assert "no latent space to explore" in capsys.readouterr().err


# -- the page in a real browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or not _has_playwright():
        msg = "the browser tests need Chromium (apt-get install chromium) and Playwright (pip install playwright)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; CI's set-up installs both (scripts/setup.sh)")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, ex, hash_: str = ""):
    # Playwright's waits evaluate strings, which the page's Content-Security-Policy forbids the page itself
    page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(ex.url + hash_)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, errors


def _decoded_src(page) -> str:
    return page.get_attribute("#decoded img", "src")


def _wait_decodes(page, n: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.decodes || 0) >= {n}", timeout=30_000)


def test_in_the_browser_a_slider_a_map_click_an_interpolation_and_a_reload_all_work(servers, browser):
    ex = servers["image"]
    page, errors = _open(browser, ex)
    _wait_decodes(page, 1)
    before = _decoded_src(page)
    seen = int(page.evaluate("document.body.dataset.decodes"))
    d = _space(ex).sliders[0]
    page.eval_on_selector(f"#slider-{d}", "(s) => { s.value = s.max; s.dispatchEvent(new Event('input')); }")
    _wait_decodes(page, seen + 1)
    assert _decoded_src(page) != before  # the slider decoded a new image
    # a click on the map decodes the point under it and lists its nearest examples
    seen = int(page.evaluate("document.body.dataset.decodes"))
    page.click("#map", position={"x": 100, "y": 250})
    _wait_decodes(page, seen + 1)
    assert page.locator("#neighbours img").count() == 8
    # an interpolation from A to B fills the strip
    page.fill("#a", "4")
    page.fill("#b", "9")
    page.fill("#steps", "5")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('#strip img').length === 5")
    page.click("#sample")
    assert page.locator("#samples img").count() == 8
    # the view lives in the URL: a new page on it shows the same code, image and interpolation
    url = page.url
    z = page.evaluate("z")
    image = _decoded_src(page)
    strip = page.eval_on_selector_all("#strip img", "(els) => els.map((e) => e.src)")
    again, errors2 = _open(browser, ex, "#" + url.split("#", 1)[1])
    _wait_decodes(again, 1)
    assert np.allclose(again.evaluate("z"), z, atol=1e-3)
    assert _decoded_src(again) == image
    assert again.eval_on_selector_all("#strip img", "(els) => els.map((e) => e.src)") == strip
    assert again.input_value("#a") == "4" and again.input_value("#b") == "9"
    assert errors == [] and errors2 == []
    page.close()
    again.close()


def test_in_the_browser_fast_slider_moves_never_pile_up_requests(servers, browser):
    ex = servers["image"]
    page, _ = _open(browser, ex)
    _wait_decodes(page, 1)
    sent = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/api/decode") else None)
    d = _space(ex).sliders[0]
    final = page.evaluate(f"""() => {{
        const s = document.getElementById('slider-{d}');
        const lo = +s.min, hi = +s.max;
        for (let i = 0; i <= 60; i++) {{ s.value = lo + (hi - lo) * i / 60; s.dispatchEvent(new Event('input')); }}
        return z.slice();
    }}""")
    page.wait_for_function(f"document.getElementById('value-{d}').textContent !== ''")
    # 61 moves in one go: one request in flight and the latest one pending, so at most two go out
    page.wait_for_load_state("networkidle")
    assert 1 <= len(sent) <= 2
    _, expected = post(ex, "/api/decode", {"z": final})
    page.wait_for_function("(src) => document.querySelector('#decoded img').src === src", arg=expected["image"])
    page.close()


def test_in_the_browser_a_sentence_run_and_a_table_run_show_their_items(servers, browser):
    page, errors = _open(browser, servers["text"])
    assert page.locator("#decoded .sentence").count() == 1
    assert page.locator("#strip .sentence").count() == 8 and page.locator("#neighbours .sentence").count() == 8
    page.close()
    page, errors2 = _open(browser, servers["table"])
    assert page.locator("#decoded table.record tr").count() == 21  # German credit: 21 columns
    page.select_option("#cond-column", "a1")
    page.select_option("#cond-value", "0")
    value = page.evaluate("info.conditions.a1[0]")
    page.click("#sample")
    page.wait_for_function("location.hash.includes('cond=')")
    column = page.evaluate("info.columns.indexOf('a1')")
    cells = page.eval_on_selector_all(f"#samples tr td:nth-child({column + 1})", "(els) => els.map((e) => e.textContent)")
    assert cells == [str(value)] * 8
    assert errors == [] and errors2 == []
    page.close()


def _space(ex):
    return ex.space


def _has_playwright() -> bool:
    import importlib.util

    return importlib.util.find_spec("playwright") is not None
