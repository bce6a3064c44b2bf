"""SentenceVAE: the scikit-learn-shaped estimator of the text models (`sentence-vae`, `lstm-lm`), with the
latent-space verbs for sentences: transform, sample, reconstruct, interpolate, neighbours, evaluate.

It trains through the shared core (runs.fit_module, the one trainer) on data.text's batches; the run folder
holds the tokenizer (tokenizer.json) and the training sentences (for neighbours), besides what every model
folder holds. The default against posterior collapse is cyclical KL annealing (Fu et al. 2019) with
batch-normalised posterior means (BN-VAE, Zhu et al. 2020, scale 0.6); word dropout (Bowman et al. 2016) and
free bits (Kingma et al. 2016) are options (docs/text.md has the measurements behind the choice).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ...config import TextDataConfig, TrainConfig
from ...data.text import (TextBatches, encode_sentences, fit_tokenizer, read_sentences,
                          tokenizer_from_dict)
from ...errors import VaekitError, check_count
from ...estimators import entry_trained_by, seed_of
from ...io import atomic_write, atomic_write_json, read_json, replacing_folder
from ...latent import interpolate_codes
from ...models.text import generate
from ...runs import CONFIG_FILE, fit_module, load_module, read_config, write_config
from ...train.lock import run_lock
from ...train import HISTORY_FILE, WEIGHTS_FILE
from ...train import checkpoint as ckpt

TOKENIZER_FILE = "tokenizer.json"
SENTENCES_FILE = "train-sentences.txt"
_MODEL_KEYS = ("latent_dim", "embed_dim", "hidden_dim", "cell", "beta", "word_dropout", "free_bits", "dropout",
               "posterior_bn")
_DATA_KEYS = ("tokenizer", "lower", "vocab_size", "min_count", "max_length")
KL_SCHEDULES = ("cyclical", "linear", "none")


class SentenceVAE(BaseEstimator):
    """A sentence VAE (model='sentence-vae') or its language model (model='lstm-lm') over a list of sentences.

    Model options left at None take the registry entry's defaults. kl_schedule: 'cyclical' (kl_cycles cycles,
    each raising the KL weight over its first half), 'linear' (over the first half of training) or 'none'.
    """

    COMMANDS = "'vaekit text sample|reconstruct|interpolate|neighbours RUN ...' (a model of sentences)"
    TRAIN_COMMAND = "vaekit text train --data SENTENCES.txt --out RUN"

    def __init__(self, *, model="sentence-vae", latent_dim=None, embed_dim=None, hidden_dim=None, cell=None,
                 beta=None, word_dropout=None, free_bits=None, dropout=None, posterior_bn=None, tokenizer="word",
                 lower=True, vocab_size=10000, min_count=2, max_length=50, epochs=10, batch_size=64, lr=1e-3,
                 kl_schedule="cyclical", kl_cycles=4, clip_norm=5.0, device="auto", random_state=None,
                 verbose=False):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # -- configuration ------------------------------------------------------------------------
    def spec(self):
        return entry_trained_by(self.model, type(self).__name__)

    def model_config(self):
        given = {k: getattr(self, k) for k in _MODEL_KEYS if getattr(self, k) is not None}
        return self.spec().config(**given).validate(type(self).__name__)

    def data_config(self) -> TextDataConfig:
        return TextDataConfig(**{k: getattr(self, k) for k in _DATA_KEYS}).validate(type(self).__name__)

    def train_config(self) -> TrainConfig:
        if self.kl_schedule not in KL_SCHEDULES:
            raise VaekitError(f"kl_schedule must be one of {list(KL_SCHEDULES)}; got {self.kl_schedule!r}")
        check_count("epochs", self.epochs)
        variational = self.spec().variational
        cycles = self.kl_cycles if self.kl_schedule == "cyclical" and variational else 0
        warmup = max(1, self.epochs // 2) if self.kl_schedule == "linear" and variational else 0
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, clip_norm=self.clip_norm,
                           kl_cycles=cycles, kl_warmup_epochs=warmup, seed=seed_of(self.random_state),
                           device=self.device).validate(type(self).__name__)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, sentences, *, val_sentences=None, run_dir=None) -> SentenceVAE:
        """Fit on sentences (a list of strings, or a path: a file of one sentence per line or a folder of .txt
        files). The tokenizer is fitted on these sentences only; val_sentences, if given, are scored each epoch."""
        with run_lock(run_dir):  # one writer per run folder
            return self._fit(sentences, val_sentences, run_dir)

    def _fit(self, sentences, val_sentences, run_dir) -> SentenceVAE:
        sentences = _as_sentences(sentences)
        dcfg, mcfg, tcfg = self.data_config(), self.model_config(), self.train_config()
        self.tokenizer_ = fit_tokenizer(dcfg.tokenizer, sentences, dcfg.vocab_size, dcfg.min_count, dcfg.lower)
        data = self._batches(sentences, "training sentences")
        val = None if val_sentences is None else self._batches(_as_sentences(val_sentences), "validation sentences")
        if run_dir is not None:
            self._write_text_artefacts(Path(run_dir), sentences)
        self.module_, self.history_ = fit_module(
            self.model, mcfg, tcfg, data, val, run_dir=run_dir, verbose=self.verbose,
            artefacts={"tokenizer": TOKENIZER_FILE, "sentences": SENTENCES_FILE},
            extra={"estimator": self.get_params()})
        self.train_sentences_ = sentences
        self._train_codes = None
        return self

    def _batches(self, sentences: list[str], what: str | None) -> TextBatches:
        ids = encode_sentences(self.tokenizer_, sentences, self.max_length, what)
        return TextBatches(ids, self.tokenizer_.vocab_size)

    def _write_text_artefacts(self, directory: Path, sentences: list[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / TOKENIZER_FILE, self.tokenizer_.to_dict())
        text = "".join(s.replace("\n", " ") + "\n" for s in sentences)
        atomic_write(directory / SENTENCES_FILE, lambda path: Path(path).write_text(text, encoding="utf-8"))

    # -- latent-space verbs ---------------------------------------------------------------------
    def transform(self, sentences) -> np.ndarray:
        """Posterior means E[z|x], (N, latent_dim); a sentence with no known word is refused."""
        self._check_variational("transform")
        return self._codes(self._known(sentences))

    @torch.no_grad()
    def _codes(self, x: TextBatches) -> np.ndarray:
        return torch.cat([self.module_.posterior_params(x.inputs(slice(i, i + 256)).to(self._device()))[0]
                          for i in range(0, len(x), 256)]).cpu().numpy()

    @torch.no_grad()
    def inverse_transform(self, Z, method: str = "greedy", **kw) -> list[str]:
        """The sentence decoded from each code of Z (N, latent_dim); kw: temperature, beam, allow_unk."""
        self._check_fitted()
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self._device())
        d = self.module_.cfg.latent_dim
        if z.ndim != 2 or z.shape[1] != d:
            raise VaekitError(f"codes must have shape (N, {d}); got {tuple(z.shape)}")
        return self._decode(z, len(z), method, **kw)

    def sample(self, n: int, method: str | None = None, temperature: float = 1.0, beam: int = 5,
               random_state=None, allow_unk: bool = True) -> list[str]:
        """n sentences from the prior: z ~ N(0, I) decoded by method ('greedy', 'sample' or 'beam'); the
        language model (no z) draws tokens ('sample', the default for it). allow_unk=False never writes <unk>."""
        self._check_fitted()
        check_count("n", n)
        gen = torch.Generator().manual_seed(seed_of(random_state))
        kw = {"temperature": temperature, "beam": beam, "generator": gen, "allow_unk": allow_unk}
        if not self.module_.variational:
            return self._decode(None, n, method or "sample", **kw)
        z = torch.randn(n, self.module_.cfg.latent_dim, generator=gen).to(self._device())
        return self._decode(z, n, method or "greedy", **kw)

    def reconstruct(self, sentences, method: str = "greedy", **kw) -> list[str]:
        """Each sentence through its code: x -> E[z|x] -> decoded."""
        return self.inverse_transform(self.transform(sentences), method, **kw)

    def interpolate(self, a: str, b: str, steps: int = 5, kind: str = "linear", method: str = "greedy", **kw
                    ) -> list[str]:
        """Sentences decoded along the line (kind='linear') or great circle ('spherical') between the codes of
        a and b, both ends included; kw are the decoding options of inverse_transform."""
        z = self.transform([a, b])
        kinds = {"linear": "linear", "spherical": "slerp", "slerp": "slerp"}
        if kind not in kinds:
            raise VaekitError(f"unknown interpolation '{kind}'; use 'linear' or 'spherical'")
        return self.inverse_transform(interpolate_codes(z[0], z[1], steps, kinds[kind]), method, **kw)

    def neighbours(self, sentence: str, k: int = 5) -> list[tuple[str, float]]:
        """The k training sentences whose codes lie nearest (Euclidean) to the sentence's, with the distances."""
        check_count("k", k)
        z = self.transform([sentence])[0]
        if self._train_codes is None:
            self._train_codes = self._codes(self._batches(self.train_sentences_, None))  # warned at fit
        dist = np.linalg.norm(self._train_codes - z, axis=1)
        order = np.argsort(dist, kind="stable")[:k]
        return [(self.train_sentences_[i], float(dist[i])) for i in order]

    def evaluate(self, sentences, k: int = 20, seed: int = 0) -> dict:
        """NLL (importance-sampled with k draws for the VAE), perplexity, KL, active units, I(x; z), token
        accuracy and BLEU of the reconstructions, on held-out sentences (see tasks.text.metrics)."""
        from .metrics import text_metrics

        self._check_fitted()
        check_count("k", k)
        data = self._batches(_as_sentences(sentences), "sentences")
        return text_metrics(self.module_, data, self.tokenizer_, k=k, seed=seed)

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """The model folder: config, tokenizer and sentences (JSON, text) and weights (safetensors): no pickle."""
        self._check_fitted()
        with replacing_folder(directory, start_from=(CONFIG_FILE,)) as folder:  # a crash leaves the old folder
            self._write_text_artefacts(folder, self.train_sentences_)
            write_config(folder, self.model, self.module_.shape, self.module_.shape, self.module_.cfg,
                         self.train_config(), artefacts={"tokenizer": TOKENIZER_FILE, "sentences": SENTENCES_FILE,
                                                         "history": HISTORY_FILE},
                         extra={"estimator": self.get_params()})
            ckpt.save_tensors(folder / WEIGHTS_FILE, self.module_.state_dict())
            atomic_write_json(folder / HISTORY_FILE, self.history_)
        return Path(directory)

    @classmethod
    def load_folder(cls, directory, device: str = "auto") -> SentenceVAE:
        """A saved SentenceVAE or a finished `vaekit text train` run. Reads JSON, text and safetensors only."""
        directory = Path(directory)
        doc = read_config(directory)
        for name in (TOKENIZER_FILE, SENTENCES_FILE):
            if not (directory / name).is_file():
                raise VaekitError(f"{directory} has no {name}: the run did not start training; train it again")
        params = doc.get("estimator", {})
        est = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        est.device = device
        est.tokenizer_ = tokenizer_from_dict(read_json(directory / TOKENIZER_FILE), str(directory / TOKENIZER_FILE))
        _, est.module_, est.history_ = load_module(directory, device)
        if est.module_.shape[0] != est.tokenizer_.vocab_size:
            raise VaekitError(f"{directory / TOKENIZER_FILE} has {est.tokenizer_.vocab_size} tokens but the model "
                              f"was trained on {est.module_.shape[0]}: the folder mixes two runs; train it again")
        est.train_sentences_ = (directory / SENTENCES_FILE).read_text(encoding="utf-8").splitlines()
        est._train_codes = None
        return est

    # -- helpers ------------------------------------------------------------------------------
    def _known(self, sentences) -> TextBatches:
        self._check_fitted()
        if isinstance(sentences, str):
            raise VaekitError("give a list of sentences (a single string was given: wrap it in a list)")
        ids = encode_sentences(self.tokenizer_, list(sentences), self.max_length, "sentences", require_known=True)
        return TextBatches(ids, self.tokenizer_.vocab_size)

    def _decode(self, z, n: int, method: str, temperature: float = 1.0, beam: int = 5, generator=None,
                allow_unk: bool = True) -> list[str]:
        if method not in ("greedy", "sample", "beam"):
            raise VaekitError(f"unknown decoding '{method}'; use 'greedy', 'sample' or 'beam'")
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise VaekitError(f"temperature must be a number > 0; got {temperature!r}")
        ids = generate(self.module_.decoder, z, n, self.max_length, method, float(temperature), int(beam), generator,
                       bool(allow_unk))
        return [self.tokenizer_.decode(row) for row in ids]

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise VaekitError("this SentenceVAE is not fitted yet: call fit(sentences) first, or vaekit.load(folder)")

    def _check_variational(self, verb: str) -> None:
        self._check_fitted()
        if not self.module_.variational:
            raise VaekitError(f"model '{self.model}' is a language model with no latent code, so it cannot "
                              f"{verb}; train model='sentence-vae'")


def _as_sentences(data) -> list[str]:
    if isinstance(data, (str, Path)):
        return read_sentences(data)
    sentences = [str(s).strip() for s in data]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise VaekitError("no sentences given (the list is empty, or every one is blank)")
    return sentences
