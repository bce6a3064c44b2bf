"""Objects in scenes: the Multi-Entity VAE against a convolutional VAE of similar size on Multi-dSprites-like
scenes, and the VAE against beta-VAEs on dSprites-like sprites (both generated here from
../shared/data/dsprites/SPEC.md).

    python benchmarks/objects_benchmark.py [--variants binarized ...] [--seeds 0 1] [--epochs 20] [--run-dir DIR]
        [--betas 1 4 8] [--parts scenes dsprites]

Per variant and seed, each model trains on the variant's 20,000 training scenes and is scored on its test
scenes: -ELBO and reconstruction (nats per scene), and for the MEVAE the foreground ARI of its segmentation
(the object whose decoded image is largest at each pixel) against the true masks and the object-count
accuracy (objects with KL above --count-threshold nats against the visible objects), with the training time.
Writes OUT.md, OUT.json and OUT-scenes-VARIANT.png: test scenes, their KL maps, the K decoded objects, their
merge and the masks.

dSprites-like: a 4096-512-256-10 VAE per beta (--betas; beta 1 is the plain VAE) trained on the 60,000
training sprites, scored by the FactorVAE metric and MIG from the true factors and by its -ELBO on the test
sprites; OUT-traversal-beta-B.png: each latent moved from -3 to 3 from one test sprite's code.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import vaekit  # noqa: E402 (after the path to this checkout)
from vaekit.data.scenes import load_scene_split  # noqa: E402
from vaekit.data.scenes.multi import VARIANTS  # noqa: E402
from vaekit.evaluate import evaluate  # noqa: E402
from vaekit.tasks.objects import count_accuracy, foreground_ari, object_segmentation  # noqa: E402
from vaekit.train import to_unit_float  # noqa: E402


def _model(kind: str, variant: str, seed: int, args, x):
    run = Path(args.run_dir) / f"{variant}-{kind}-{seed}" if args.run_dir else None
    if run is not None and (run / "config.json").is_file():
        model = vaekit.load(run, device="cpu")
        return model, json.loads((run / "seconds.json").read_text())["fit_s"]
    objects = VARIANTS[variant][1]
    if kind == "mevae":
        grid = {k: v for k, v in (("conv_channels", args.conv_channels and tuple(args.conv_channels)), ("context_convs", args.context_convs),
                                  ("object_patch", args.object_patch)) if v is not None}
        model = vaekit.estimator_for("mevae", objects=objects, epochs=args.epochs, random_state=seed,
                                     verbose=True, **grid)
    else:  # a convolutional VAE with the MEVAE's latent size in all (objects x latent_dim)
        model = vaekit.estimator_for("conv-vae", latent_dim=objects * 8, conv_channels=(32, 64, 64),
                                     hidden=(256,), epochs=args.epochs, random_state=seed, verbose=True)
    t0 = time.perf_counter()
    model.fit(x)
    seconds = time.perf_counter() - t0
    if run is not None:
        model.save(run)
        (run / "seconds.json").write_text(json.dumps({"fit_s": seconds}))
    return model, seconds


def one(variant: str, seed: int, args) -> dict:
    name = f"multi-dsprites-{variant}"
    train = load_scene_split(name, "train", args.limit)
    test = load_scene_split(name, "test", args.test_limit)
    out = {"variant": variant, "seed": seed}
    for kind in args.models:
        model, seconds = _model(kind, variant, seed, args, train.images)
        scores = evaluate(model, test.images, k=args.k, seed=0)
        row = {"fit_s": seconds, "neg_elbo": scores["neg_elbo_nats"], "rec": scores.get("rec_nats"),
               "nll": scores.get("nll_nats")}
        if kind == "mevae":
            labels, kl = object_segmentation(model.module_, test.images)
            ari = foreground_ari(test.scenes.segmentation, labels)
            row.update(ari=float(np.nanmean(ari)), count_accuracy=count_accuracy(kl, test.scenes.visible,
                                                                                args.count_threshold))
            if seed == args.seeds[0]:
                scene_figure(model, test, labels, kl, Path(f"{args.out}-scenes-{variant}.png"))
        out[kind] = row
        print(json.dumps({variant: {kind: row}}), flush=True)
    return out


@torch.no_grad()
def scene_figure(model, test, labels, kl, path: Path, n: int = 6) -> None:
    """Rows per scene: the input, the KL map, each decoded object, their merge, the predicted and true masks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = model.module_.eval()
    x = to_unit_float(torch.as_tensor(test.images[:n]))
    kl_map = m.kl_map(*m.encode(x))
    chosen, _, cells = m.objects(x)
    objects = torch.sigmoid(m.object_params(chosen, cells))  # (n, K, C, H, W)
    merged = m.likelihood(m.decode(chosen, cells)).mean
    k = objects.shape[1]
    cols = 5 + k
    fig, axes = plt.subplots(n, cols, figsize=(1.3 * cols, 1.35 * n), squeeze=False)
    titles = ["input", "KL map", *[f"object {j + 1}" for j in range(k)], "merged", "predicted", "true masks"]
    for i in range(n):
        shown = np.where(merged[i].amax(0).numpy() > 0.5, labels[i], 0)  # the objects where the merge is on
        panels = [x[i], kl_map[i].view(*m.grid), *objects[i], merged[i],
                  shown, test.scenes.segmentation[i]]
        for j, (ax, im) in enumerate(zip(axes[i], panels)):
            im = np.asarray(im)
            if im.ndim == 3:
                im = np.moveaxis(im, 0, -1).squeeze()
            cmap = "tab10" if j >= cols - 2 else ("magma" if j == 1 else "gray")
            ax.imshow(im, cmap=cmap, vmin=0, vmax=9 if j >= cols - 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=7)
        axes[i][1].set_xlabel(" ".join(f"{v:.0f}" for v in kl[i]), fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dsprites_part(args) -> list[dict]:
    from vaekit.tasks.disentanglement import factor_vae_metric, mig

    train = load_scene_split("dsprites", "train", args.limit)
    test = load_scene_split("dsprites", "test", args.test_limit)
    rows = []
    kinds = [("beta-vae" if b != 1 else "vae", b) for b in args.betas] + ([("aae", None)] if args.aae else [])
    for seed in args.seeds:
        for name, beta in kinds:
            label = f"beta{beta:g}" if beta is not None else name
            run = Path(args.run_dir) / f"dsprites-{label}-{seed}" if args.run_dir else None
            if run is not None and (run / "config.json").is_file():
                model = vaekit.load(run, device="cpu")
                seconds = json.loads((run / "seconds.json").read_text())["fit_s"]
            else:
                extra = {"beta": beta} if beta is not None else {}
                model = vaekit.estimator_for(name, latent_dim=10, hidden=(512, 256), epochs=args.epochs_dsprites,
                                             random_state=seed, verbose=True, **extra)
                t0 = time.perf_counter()
                model.fit(train.images)
                seconds = time.perf_counter() - t0
                if run is not None:
                    model.save(run)
                    (run / "seconds.json").write_text(json.dumps({"fit_s": seconds}))
            scores = evaluate(model, test.images, k=1, seed=0)
            row = {"model": name, "beta": beta, "label": label, "seed": seed, "fit_s": seconds,
                   "neg_elbo": scores.get("neg_elbo_nats"), "reconstruction": scores["reconstruction_nats"],
                   "factor_vae": factor_vae_metric(model, seed=seed)["accuracy"], "mig": mig(model, seed=seed)}
            rows.append(row)
            print(json.dumps({"dsprites": row}), flush=True)
            if seed == args.seeds[0]:
                z = model.transform(test.images[:2000]).reshape(2000, -1)  # the codes' own spread: an AAE's
                span = 3 if beta is not None else float(np.abs(z).max())  # prior is N(0, I) only roughly
                grid = model.traverse(test.images[0], values=np.linspace(-span, span, 9))
                from vaekit import plots

                plots.image_grid(grid.reshape(-1, *grid.shape[2:]), f"{args.out}-traversal-{label.replace('beta', 'beta-')}.png",
                                 ncol=9, row_labels=[f"z{d}" for d in range(len(grid))])
    return rows


def write(args, rows: list[dict], sprites_rows: list[dict]) -> None:
    lines = [f"# Objects in scenes: the Multi-Entity VAE\n\nWritten by `python benchmarks/objects_benchmark.py "
             f"{' '.join(sys.argv[1:])}` on {os.cpu_count()} CPU cores ({torch.get_num_threads()} torch threads), "
             f"on dSprites-like scenes generated by vaekit. Nats per scene; ARI: foreground ARI against the "
             f"true masks; count: objects with KL > {args.count_threshold} nats against the visible objects.\n",
             "| variant | seed | model | fit s | -ELBO | ARI | count accuracy |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        for kind in args.models:
            v = r[kind]
            ari = f"{v['ari']:.3f}" if "ari" in v else "-"
            count = f"{v['count_accuracy']:.3f}" if "count_accuracy" in v else "-"
            lines.append(f"| {r['variant']} | {r['seed']} | {kind} | {v['fit_s']:.0f} | {v['neg_elbo']:.1f} | "
                         f"{ari} | {count} |")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        lines.append(f"\n![{variant}]({Path(args.out).name}-scenes-{variant}.png)")
    if sprites_rows:
        lines += ["\n## dSprites-like sprites: VAE, beta-VAE and AAE\n",
                  "| model | seed | fit s | -ELBO | reconstruction | FactorVAE metric | MIG | MIG per factor |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in sprites_rows:
            per = ", ".join(f"{k} {v:.2f}" for k, v in r["mig"]["per_factor"].items())
            elbo = f"{r['neg_elbo']:.1f}" if r.get("neg_elbo") is not None else "-"
            lines.append(f"| {r['label'] if 'label' in r else r['beta']} | {r['seed']} | {r['fit_s']:.0f} | {elbo} | "
                         f"{r.get('reconstruction', float('nan')):.1f} | {r['factor_vae']:.3f} | {r['mig']['mig']:.3f} | "
                         f"{per} |")
        for label in dict.fromkeys(r["label"] if "label" in r else f"beta{r['beta']:g}" for r in sprites_rows):
            name = label.replace("beta", "beta-")
            lines.append(f"\n![traversal, {label}]({Path(args.out).name}-traversal-{name}.png)")
    out = Path(args.out)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"scenes": rows, "dsprites": sprites_rows}, indent=1))
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--limit", type=int, default=None, help="training scenes (default: all 20,000)")
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--k", type=int, default=1, help="importance samples of the NLL (1: the ELBO only)")
    p.add_argument("--count-threshold", type=float, default=5.0,
                   help="nats an object needs to count (a sprite's place, shape, size and angle take more)")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--out", default=str(ROOT / "docs" / "objects-benchmark"))
    p.add_argument("--models", nargs="+", default=["mevae", "conv-vae"], choices=["mevae", "conv-vae"])
    p.add_argument("--parts", nargs="+", default=["scenes", "dsprites"], choices=["scenes", "dsprites"])
    p.add_argument("--betas", nargs="+", type=float, default=[1.0, 4.0, 8.0])
    p.add_argument("--epochs-dsprites", type=int, default=10)
    p.add_argument("--aae", action="store_true", help="dSprites: add the adversarial autoencoder beside the betas")
    p.add_argument("--conv-channels", nargs="+", type=int, default=None,
                   help="MEVAE: the stride-2 convolutions' channels (their count sets the grid; default: the registry's)")
    p.add_argument("--context-convs", type=int, default=None, help="MEVAE: 3 x 3 stride-1 convolutions after them")
    p.add_argument("--object-patch", type=int, default=None, help="MEVAE: each object's patch side in pixels")
    args = p.parse_args()
    rows = [one(v, s, args) for v in args.variants for s in args.seeds] if "scenes" in args.parts else []
    sprites_rows = dsprites_part(args) if "dsprites" in args.parts else []
    write(args, rows, sprites_rows)


if __name__ == "__main__":
    main()
