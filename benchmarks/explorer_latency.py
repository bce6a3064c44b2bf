"""Explorer latency: how long one decode takes through `vaekit explore`'s server, as the page asks for it.

Starts the explorer on an MNIST VAE (the registry's `vae`, 784-400-20, trained here for --epochs unless --run
names a run folder) and hits POST /api/decode --requests times over one keep-alive connection, each with a
new code inside the sliders' ranges; the baseline is the same decode called in this process without the
server (the model's inverse_transform and the PNG the page gets). Prints the median, 95th and 99th
percentiles of both and their ratio; the issue's bar is a 95th percentile of at most 50 ms on 2 cores.

    python benchmarks/explorer_latency.py [--run RUN] [--requests 1000] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="an image run folder (default: train an MNIST VAE here)")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = p.parse_args()

    from vaekit.cli import main as cli
    from vaekit.explorer import Explorer, open_space
    from vaekit.explorer.space import png_data_url

    tmp = tempfile.TemporaryDirectory()
    run = args.run
    if run is None:
        run = str(Path(tmp.name) / "mnist-vae")
        print(f"training the MNIST VAE for {args.epochs} epochs into {run} ...", flush=True)
        assert cli(["train", "--data", "mnist", "--data-dir", args.data_dir, "--epochs", str(args.epochs),
                    "--quiet", "--out", run]) == 0
    space = open_space(run)
    rng = np.random.default_rng(0)
    codes = rng.uniform(space.low, space.high, size=(args.requests + 50, space.dim)).round(4)

    direct = []
    for i, z in enumerate(codes):
        t0 = time.perf_counter()
        x = space.model.inverse_transform(z[None].astype(np.float32))[0]
        png_data_url(x)
        if i >= 50:  # the first calls warm the caches
            direct.append(1000 * (time.perf_counter() - t0))

    served = []
    with Explorer(space, port=0) as ex:
        conn = http.client.HTTPConnection(ex.host, ex.port, timeout=30)
        for i, z in enumerate(codes):
            body = json.dumps({"z": z.tolist()}).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/api/decode", body=body, headers={"content-type": "application/json"})
            res = conn.getresponse()
            doc = json.loads(res.read())
            if res.status != 200 or "image" not in doc:
                raise SystemExit(f"request {i} failed: {res.status} {doc}")
            if i >= 50:
                served.append(1000 * (time.perf_counter() - t0))
        conn.close()

    a, b = percentiles(served), percentiles(direct)
    print(f"\nPOST /api/decode on {Path(run).name} ({space.model.module_.cfg.latent_dim}-D code, "
          f"{args.requests} requests after 50 warm-up ones), milliseconds:\n")
    print("| path | median | p95 | p99 | max |\n|---|---|---|---|---|")
    print(f"| explorer endpoint | {a['median']:.2f} | {a['p95']:.2f} | {a['p99']:.2f} | {a['max']:.2f} |")
    print(f"| in-process decode (baseline) | {b['median']:.2f} | {b['p95']:.2f} | {b['p99']:.2f} | {b['max']:.2f} |")
    print(f"\nendpoint / in-process: median {a['median'] / b['median']:.2f}x, p95 {a['p95'] / b['p95']:.2f}x; "
          f"bar: p95 <= 50 ms: {'met' if a['p95'] <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
