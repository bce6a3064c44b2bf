"""Pictures of a model and its latent space, written atomically in the format their suffix names.

Image grids are tiled once from arrays in the model's layout (as_images converts (N, C, H, W) to displayable
(N, H, W[, 3]) exactly once) and written by Pillow; charts are matplotlib figures.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import VaekitError
from .io import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works with no display
    import matplotlib.pyplot as plt

    return plt


# suffix -> (Pillow's format for image grids, matplotlib's for charts); SVG grids embed their pixels
FORMATS = {".png": ("PNG", "png"), ".jpg": ("JPEG", "jpg"), ".jpeg": ("JPEG", "jpg"), ".webp": ("WEBP", "webp"),
           ".pdf": ("PDF", "pdf"), ".svg": (None, "svg"), ".tif": ("TIFF", "tiff"), ".tiff": ("TIFF", "tiff")}


def picture_format(path) -> str:
    """The suffix of a picture path, checked: a name vaekit cannot write in its own format is refused (a .jpg
    holding PNG bytes confuses every program that opens it)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise VaekitError(f"cannot write a picture as '{Path(path).name}': its suffix names no format vaekit writes; "
                          f"use one of {', '.join(sorted(FORMATS))}")
    return suffix


def _save_figure(fig, path, dpi: int = 120, bbox_inches: str | None = "tight") -> None:
    plt = _pyplot()
    fmt = FORMATS[picture_format(path)][1]
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches=bbox_inches))
    plt.close(fig)


def save_pixels(img, path) -> None:
    """A Pillow image in the format of path's suffix (JPEG at quality 95, so small digits stay legible)."""
    pil_format = FORMATS[picture_format(path)][0]
    if pil_format is None:  # SVG: the pixels inside a vector file, at their size
        fig = _pyplot().figure(figsize=(img.width / 100, img.height / 100), dpi=100)
        fig.figimage(np.asarray(img), cmap="gray" if img.mode == "L" else None, vmin=0, vmax=255, resize=True)
        _save_figure(fig, path, dpi=100, bbox_inches=None)
        return
    options = {"quality": 95} if pil_format in ("JPEG", "WEBP") else {}
    atomic_write(path, lambda tmp: img.save(tmp, format=pil_format, **options))


def as_images(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) -> (N, H, W[, 3]) floats in [0, 1]; flat vectors of square length become squares."""
    raw = np.asarray(x)
    x = raw.astype(np.float32)
    if x.ndim == 2:
        side = int(round(math.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise VaekitError(f"these data are vectors of {x.shape[1]} features, not images: nothing to draw")
        x = x.reshape(-1, 1, side, side)
    if x.ndim == 3:
        x = x[:, None]
    x = x[:, 0] if x.shape[1] == 1 else x[:, :3].transpose(0, 2, 3, 1)
    # integers are 0-255; floats a little over 1 are an unbounded decoder's [0, 1] output, not 0-255
    if np.issubdtype(raw.dtype, np.integer) or x.max() > 2.0:
        x = x / 255.0
    return np.clip(x, 0.0, 1.0)


def image_grid(x, path, ncol: int | None = None, scale: int | None = None, pad: int = 2,
               row_labels: list[str] | None = None) -> Path:
    """Tile images (in the model's layout) row by row into one picture, enlarged by an integer factor so small
    images stay crisp; row_labels names each row in a margin on the left."""
    return _tile(as_images(x), path, ncol, scale, pad, row_labels)


def _tile(imgs: np.ndarray, path, ncol: int | None = None, scale: int | None = None, pad: int = 2,
          row_labels: list[str] | None = None) -> Path:
    """Displayable images (N, H, W[, 3]) in [0, 1], tiled: the one place pixels become a picture."""
    from PIL import Image

    n, h, w = imgs.shape[:3]
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    scale = scale or max(1, 56 // max(h, w))
    canvas = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, *imgs.shape[3:]), np.float32)
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncol)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    img = Image.fromarray((canvas * 255).round().astype(np.uint8))
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if row_labels:
        img = _label_rows(img, row_labels, (h + pad) * scale, pad * scale)
    save_pixels(img, path)
    return Path(path)


def _label_rows(img, labels: list[str], row_height: int, top: int):
    """img with a white margin on its left holding one label per row, centred on the row."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(10, min(16, row_height // 3)))
    draw = ImageDraw.Draw(img)
    margin = int(max(draw.textlength(t, font=font) for t in labels)) + 12
    out = Image.new(img.mode, (img.width + margin, img.height), 255 if img.mode == "L" else (255, 255, 255))
    out.paste(img, (margin, 0))
    draw = ImageDraw.Draw(out)
    for r, text in enumerate(labels):
        draw.text((6, top + r * row_height + row_height // 2), text, fill=0 if img.mode == "L" else (0, 0, 0),
                  font=font, anchor="lm")
    return out


def paired_rows(top, bottom, path, per_row: int = 10) -> Path:
    """Inputs above their reconstructions, per_row pairs to a band; each array is converted for display once."""
    top, bottom = as_images(top), as_images(bottom)
    bands = []
    for i in range(0, len(top), per_row):
        t, b = top[i:i + per_row], bottom[i:i + per_row]
        fill = per_row - len(t)
        if fill:  # white cells fill the last band
            blank = np.ones((fill, *t.shape[1:]), np.float32)
            t, b = np.concatenate([t, blank]), np.concatenate([b, blank])
        bands += [t, b]
    return _tile(np.concatenate(bands), path, ncol=per_row)


def latent_map(codes: np.ndarray, labels, classes, path, title: str = "latent space") -> Path:
    """Scatter of codes coloured by label; codes with more than 2 dimensions are projected by PCA."""
    plt = _pyplot()
    xlabel, ylabel = "z[0]", "z[1]"
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(2).fit(codes)
        codes = pca.transform(codes)
        ev = pca.explained_variance_ratio_ * 100
        xlabel, ylabel = f"PC 1 ({ev[0]:.0f}% of variance)", f"PC 2 ({ev[1]:.0f}%)"
        title += f" (PCA of {pca.n_features_in_}-D codes)"
    elif codes.shape[1] == 1:
        codes = np.column_stack([codes[:, 0], np.zeros(len(codes))])
    fig, ax = plt.subplots(figsize=(7, 6))
    if labels is None:
        ax.scatter(codes[:, 0], codes[:, 1], s=3, alpha=0.6)
    else:
        cmap = plt.get_cmap("tab10" if len(np.unique(labels)) <= 10 else "tab20")
        for i, lab in enumerate(np.unique(labels)):
            m = labels == lab
            name = classes[lab] if classes is not None and 0 <= lab < len(classes) else str(lab)
            ax.scatter(codes[m, 0], codes[m, 1], s=3, alpha=0.6, color=cmap(i % cmap.N), label=name)
        ax.legend(markerscale=4, fontsize=8, loc="best", framealpha=0.8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    _save_figure(fig, path)
    return Path(path)


def training_curve(history: list[dict], path) -> Path:
    """Train (and validation) loss per epoch, and beside it the KL term where the history has one (a VAE's
    KL falling to 0 is posterior collapse)."""
    plt = _pyplot()
    kl = bool(history) and any(k in history[0] for k in ("train_kl", "val_kl"))
    fig, axes = plt.subplots(1, 2 if kl else 1, figsize=(11 if kl else 6, 4), squeeze=False)
    epochs = [r["epoch"] for r in history]
    panels = [(axes[0, 0], "loss", "loss (nats per example)", "training curve")]
    if kl:
        panels.append((axes[0, 1], "kl", "KL(q(z|x) || p(z)) (nats per example)", "KL term"))
    for ax, term, ylabel, title in panels:
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{term}"
            if history and key in history[0]:
                ax.plot(epochs, [r[key] for r in history], style, marker="o", ms=3, label=key.replace("_", " "))
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
        ax.legend()
    _save_figure(fig, path)
    return Path(path)


def gaussian_grid(n: int, dims: tuple[int, int], latent_dim: int, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """(n*n, latent_dim) codes on a plane: two dimensions at Gaussian quantiles, the rest 0."""
    from scipy.stats import norm

    q = norm.ppf(np.linspace(lo, hi, n))
    z = np.zeros((n * n, latent_dim), np.float32)
    for r, yv in enumerate(q[::-1]):  # top row = high z[1], like a plot's y axis
        for c, xv in enumerate(q):
            z[r * n + c, dims[0]], z[r * n + c, dims[1]] = xv, yv
    return z


def metric_bars(rows: list[dict], keys: list[str], path, title: str = "", label: str = "model") -> Path:
    """One horizontal bar chart per metric, a bar per row (e.g. per model), side by side."""
    plt = _pyplot()
    names = [str(r[label]) for r in rows]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 0.32 * len(rows) + 1.2), sharey=True)
    for ax, key in zip(np.atleast_1d(axes), keys):
        values = [r[key] for r in rows]
        ax.barh(range(len(rows)), values, color=plt.get_cmap("tab20")(np.arange(len(rows)) % 20))
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        lo, hi = min(values), max(values)
        if lo > 0 and hi / max(lo, 1e-12) < 3:  # zoom in where all bars are long and close
            ax.set_xlim(lo - 0.1 * (hi - lo) - 1e-9, hi + 0.05 * (hi - lo) + 1e-9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path)
    return Path(path)


def roc_pr_curves(y_true: np.ndarray, scores: np.ndarray, roc_path, pr_path, metrics: dict, title: str = "") -> None:
    """ROC and precision-recall curves of anomaly scores (y_true 0/1, 1 = anomaly), as two pictures. The
    legends print metrics' auroc and auprc, so a plot says what metrics.json says."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _pyplot()
    fpr, tpr, _ = roc_curve(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUROC {metrics['auroc']:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8, label="chance")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=f"ROC {title}".strip())
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save_figure(fig, roc_path)
    precision, recall, _ = precision_recall_curve(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.step(recall, precision, where="post", label=f"AUPRC {metrics['auprc']:.3f}")
    ax.axhline(metrics["anomaly_rate"], ls="--", color="grey", lw=0.8, label="chance (anomaly rate)")
    ax.set(xlabel="recall", ylabel="precision", title=f"precision-recall {title}".strip(), ylim=(0, 1.02))
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    _save_figure(fig, pr_path)
