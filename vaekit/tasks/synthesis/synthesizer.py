"""`TabularVAE`: synthetic tables from a VAE, in SDV's shape (fit a DataFrame, sample rows, save and load).

The network is the registry's `tabular-vae` entry (the shared VAE module with the table likelihood), trained
by the shared trainer on the table's codes (data.tables.encoding). Two things make its samples follow the data
more closely than a VAE sampled from its N(0, I) prior:

- samples are drawn from a Gaussian mixture fitted to the aggregate posterior, one code z ~ q(z|x) per
  training row ("ex-post density estimation", Ghosh et al., "From Variational to Deterministic Autoencoders",
  ICLR 2020): the prior's regions that no row encodes to decode to rows that no table holds;
- a condition (income='>50K') is met inside the model, not by rejecting rows: codes are drawn from
  p(z | value), proportional to p(z) p(value | z), by importance resampling (the mixture reweighted towards
  the components whose training rows hold the value proposes, the decoder's own p(value | z) weighs), and
  decoded with the conditioned column's code fixed. The other columns follow the rows of that class because
  the codes come from where those rows encode (numbers on UCI Adult: docs/tabular.md).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ...config import TrainConfig
from ...data.tables.encoding import TableBatches, TableEncoding
from ...data.tables.reader import Table, read_table
from ...errors import VaekitError, check_count
from ...io import atomic_write_json, read_json, replacing_folder
from ...models import noise
from ...models.likelihoods import TableLikelihood
from ...estimators import entry_trained_by, seed_of
from ...runs import CONFIG_FILE, fit_module, load_module, read_config, write_config
from ...train.lock import run_lock
from ...train import HISTORY_FILE, WEIGHTS_FILE
from ...train import checkpoint as ckpt
from ...config import ModelConfig

ENCODING_FILE = "encoding.json"
PRIOR_FILE = "latent-prior.safetensors"
SAMPLE_CHUNK = 2048  # rows decoded at a time (a chunk that stays in the caches is drawn fastest)
MIXTURE_ROWS = 20_000  # codes the latent mixture is fitted on (a random subset of larger tables)
CANDIDATES = 64  # latent draws per conditioned row, of which importance resampling keeps one
TRAIN_STEPS = 3000  # default training length: this many minibatch steps (a small table takes many epochs)
MAX_EPOCHS = 50  # but no more than this many passes: more do not help a small table, and cost time


class TabularVAE(BaseEstimator):
    """A synthesizer of tables: fit(df), sample(n, random_state=, conditions=), save(dir), vaekit.load(dir).

    Parameters override the `tabular-vae` registry entry (latent_dim, hidden, beta) and the trainer (epochs,
    batch_size, lr, schedule, weight_decay; None: sized to the table, see train_config).
    prior_components: the latent mixture's size. autoregressive: the width of the likelihood's masked layer
    that makes each column depend on the ones before it (0: columns independent given z; see TableLikelihood).
    types: column -> type
    (tables.COLUMN_TYPES), overriding inference. After fit: history_ (one row per epoch), encoding_,
    columns_ (the fitted column order).
    """

    COMMANDS = "'vaekit tabular sample RUN -n N --out rows.csv' or 'vaekit tabular report'"  # a model of tables
    TRAIN_COMMAND = "vaekit tabular fit --data TABLE --out RUN"

    def __init__(self, *, model="tabular-vae", latent_dim=16, hidden=(128, 128), beta=1.0, epochs=None,
                 batch_size=None, lr=2e-3, schedule="cosine", weight_decay=0.0, prior_components=30,
                 autoregressive=512, types=None, device="auto", random_state=None, verbose=False):
        self.model = model
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.prior_components = prior_components
        self.autoregressive = autoregressive
        self.types = types
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- configuration ------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        spec = entry_trained_by(self.model, type(self).__name__)
        return spec.config(latent_dim=self.latent_dim, hidden=tuple(self.hidden), beta=float(self.beta)) \
            .validate(type(self).__name__)

    def train_config(self, rows: int | None = None) -> TrainConfig:
        """The trainer's settings for a table of rows (None: those of the last fit). batch_size=None: a fifth of
        the rows, 50 to 500; epochs=None: about TRAIN_STEPS steps, 10 to MAX_EPOCHS epochs."""
        if rows is None:
            batch, epochs = self.fitted_batch_size_, self.epochs_
        else:
            batch = self.batch_size or min(500, max(50, rows // 5))
            epochs = self.epochs or min(MAX_EPOCHS, max(10, math.ceil(TRAIN_STEPS / math.ceil(rows / batch))))
        return TrainConfig(epochs=epochs, batch_size=batch, lr=self.lr, schedule=self.schedule,
                           weight_decay=self.weight_decay,
                           seed=seed_of(self.random_state), device=self.device).validate(type(self).__name__)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, data, *, run_dir=None) -> TabularVAE:
        """Fit on a DataFrame, a vaekit Table or a table file (.csv / .parquet). Every column is modelled,
        missing values included; run_dir keeps the training run (checkpoints, history) there."""
        with run_lock(run_dir), noise.caller_rng_kept():  # one writer per run folder; the caller's RNG kept
            return self._fit(data, run_dir)

    def _fit(self, data, run_dir) -> TabularVAE:
        check_count("prior_components", self.prior_components)
        check_count("autoregressive", self.autoregressive, minimum=0)  # the masked layer's width; 0: none
        table, dtypes = _as_table(data, self.types)
        seed = seed_of(self.random_state)
        mcfg, tcfg = self.model_config(), self.train_config(len(table))
        self.epochs_, self.fitted_batch_size_ = tcfg.epochs, tcfg.batch_size
        self.encoding_ = TableEncoding.fit(table, dtypes, seed)
        codes, scalars = self.encoding_.encode(table, seed)
        data = TableBatches(self.encoding_, codes, scalars)
        if run_dir is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            atomic_write_json(Path(run_dir) / ENCODING_FILE, self.encoding_.to_dict())
        torch.manual_seed(seed)  # the likelihood's masked layer is initialised here, before fit_module seeds
        likelihood = TableLikelihood.of(self.encoding_, self.autoregressive)
        # warn_collapse off: a table of a dozen columns uses a few units of the code; history_ says how many
        self.module_, self.history_ = fit_module(
            self.model, mcfg, tcfg, data, run_dir=run_dir, verbose=self.verbose, likelihood=likelihood,
            artefacts={"encoding": ENCODING_FILE}, extra={"estimator": self._params_doc()}, warn_collapse=False)
        self.columns_ = list(table.columns)
        self._fit_latent_mixture(data.to(self._module_device()), seed)
        if run_dir is not None:
            self._save_prior(Path(run_dir))
        return self

    @torch.no_grad()
    def _fit_latent_mixture(self, data: TableBatches, seed: int) -> None:
        """A Gaussian mixture over one z ~ q(z|x) per training row, and how often each component's rows hold
        each code (what conditions reweight components by)."""
        from sklearn.mixture import GaussianMixture

        gen = torch.Generator(device=data.codes.device).manual_seed(seed)
        zs = []
        for i in range(0, len(data), SAMPLE_CHUNK):
            mu, log_var = self.module_.posterior_params(data.inputs(slice(i, i + SAMPLE_CHUNK)))
            zs.append(mu + (0.5 * log_var).exp() * torch.randn(mu.shape, generator=gen, device=mu.device))
        z = torch.cat(zs).cpu().double().numpy()
        k = min(self.prior_components, len(z))
        fit_on = z if len(z) <= MIXTURE_ROWS else z[np.random.default_rng(seed).choice(len(z), MIXTURE_ROWS, False)]
        gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed, max_iter=200).fit(fit_on)
        resp = gm.predict_proba(z)  # (N, K)
        codes = data.codes.cpu().numpy()
        per_code = []
        for j, n_codes in enumerate(self.encoding_.blocks):  # block by block, from the compact codes
            counts = resp.T @ np.eye(n_codes)[codes[:, j]] + 1e-3  # (K, codes); a little mass keeps rare values
            per_code.append(counts / counts.sum(1, keepdims=True))
        per_code = np.concatenate(per_code, 1)
        # contiguous, as load_tensors gives them back: a strided factor takes another matmul kernel, whose last
        # bits differ, and a saved model's draws must equal the in-memory model's
        self.latent_prior_ = {"weights": torch.tensor(gm.weights_, dtype=torch.float32),
                              "means": torch.tensor(gm.means_, dtype=torch.float32),
                              "scale_tril": torch.linalg.cholesky(torch.tensor(gm.covariances_)).float().contiguous(),
                              "code_given_component": torch.tensor(per_code, dtype=torch.float32)}

    # -- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, random_state: int | None = None, conditions: dict | None = None):
        """n synthetic rows as a DataFrame with the fitted columns and dtypes. conditions: column -> value
        of a categorical, boolean or few-valued column; every row then holds those values, and the others
        follow the rows of that value (see the module's docstring)."""
        self._check_fitted()
        check_count("n", n)
        fixed = [self.encoding_.code_of(col, value) for col, value in (conditions or {}).items()]  # (block, code)
        gen = torch.Generator().manual_seed(seed_of(random_state))
        likelihood, plan = self._sampler()
        chunk = SAMPLE_CHUNK // CANDIDATES if fixed else SAMPLE_CHUNK
        codes, scalars = [], []
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            z, log_w = self._latent_draws(m, fixed, gen)
            rows, log_p = self._draw_rows(z, fixed, gen, likelihood, plan)
            if fixed:  # keep one of each row's candidates, by its weight p(z) p(values | z, ...) / q(z)
                pick = torch.multinomial((log_w + log_p.double()).view(m, CANDIDATES).softmax(1).float(), 1,
                                         generator=gen)[:, 0]
                rows = rows[torch.arange(m) * CANDIDATES + pick]
            c, v = self.encoding_.codes_of(rows)
            codes.append(c)
            scalars.append(v)
        return self.encoding_.decode(np.concatenate(codes), np.concatenate(scalars))

    @torch.no_grad()
    def transform(self, data) -> np.ndarray:
        """Posterior means E[z|x] of a table's rows (a DataFrame, a vaekit Table or a table file), (N, latent_dim):
        where each row lives in the latent space."""
        self._check_fitted()
        table, _ = _as_table(data, self._fitted_types())
        codes, scalars = self.encoding_.encode(table, 0)
        rows = TableBatches(self.encoding_, codes, scalars).to(self._module_device())
        return torch.cat([self.module_.posterior_params(rows.inputs(slice(i, i + SAMPLE_CHUNK)))[0]
                          for i in range(0, len(rows), SAMPLE_CHUNK)]).cpu().numpy()

    @torch.no_grad()
    def inverse_transform(self, Z, random_state: int | None = None):
        """One row drawn from p(x | z) for each code of Z (N, latent_dim), as a DataFrame like sample()'s. A
        drawn row, not a mean: a table's decoder gives a distribution over categories and modes, whose mean is
        no row at all; random_state makes the draw repeatable."""
        self._check_fitted()
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32))
        d = self.module_.cfg.latent_dim
        if z.ndim != 2 or z.shape[1] != d:
            raise VaekitError(f"codes must have shape (N, {d}); got {tuple(z.shape)}")
        gen = torch.Generator().manual_seed(seed_of(random_state))
        likelihood, plan = self._sampler()
        codes, scalars = [], []
        for start in range(0, len(z), SAMPLE_CHUNK):
            rows, _ = self._draw_rows(z[start:start + SAMPLE_CHUNK], [], gen, likelihood, plan)
            c, v = self.encoding_.codes_of(rows)
            codes.append(c)
            scalars.append(v)
        return self.encoding_.decode(np.concatenate(codes), np.concatenate(scalars))

    def _sampler(self):
        """(the likelihood copied to the CPU, where rows are drawn by one seeded generator; its sampling plan,
        built once for every chunk of a call, or None without an autoregressive layer)."""
        likelihood = copy.deepcopy(self.module_.likelihood).cpu()
        return likelihood, likelihood.sampling_plan() if likelihood.width else None

    def _fitted_types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.encoding_.columns if c.name}

    def _draw_rows(self, z: torch.Tensor, fixed, gen, likelihood, plan):
        """Rows drawn from p(x | z) on the CPU by gen, the fixed (block, code) pairs held: (rows, log p of them)."""
        params = self.module_.decoder(z.to(self._module_device())).float().cpu()
        return likelihood(params).sample_given(fixed, gen, plan)

    def _latent_draws(self, m: int, fixed: list[tuple[int, int]], gen) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(codes z, log p(z) / q(z) of each): unconditioned, m codes from the latent mixture (weights None).
        Conditioned on fixed = [(block, code), ...]: CANDIDATES draws per row from the mixture reweighted by how
        often each component's rows hold the values (q); sample() weighs each by p(z) / q(z) times the
        decoder's probability of the values, which resamples z from p(z | values) ~ p(z) p(values | z)."""
        p = self.latent_prior_
        log_prior = p["weights"].double().log()
        log_q = log_prior.clone()
        offsets = self.encoding_.offsets
        for block, code in fixed:
            log_q += p["code_given_component"][:, int(offsets[block]) + code].double().log()
        n_draws = m * CANDIDATES if fixed else m
        comp = torch.multinomial(log_q.softmax(0).float(), n_draws, replacement=True, generator=gen)
        eps = torch.randn(n_draws, p["means"].shape[1], generator=gen)
        z = p["means"][comp]
        for k in torch.unique(comp).tolist():  # one product per component, not a gathered matrix per draw
            rows = torch.nonzero(comp == k)[:, 0]
            z[rows] += eps[rows] @ p["scale_tril"][k].T
        if not fixed:
            return z, None
        dens = _component_log_density(z.double(), p["means"].double(), p["scale_tril"].double())  # (draws, K)
        return z, torch.logsumexp(dens + log_prior, 1) - torch.logsumexp(dens + log_q.log_softmax(0), 1)

    def read_frame(self, path):
        """A table file (.csv / .parquet) read with the fitted column types, as the DataFrame sample() gives."""
        self._check_fitted()
        table = read_table(path, types=self._fitted_types())
        return self.encoding_.frame(table)

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """The model folder: config, encoding (JSON), weights and latent mixture (safetensors): no pickle."""
        self._check_fitted()
        with replacing_folder(directory, start_from=(CONFIG_FILE,)) as folder:  # a crash leaves the old folder
            atomic_write_json(folder / ENCODING_FILE, self.encoding_.to_dict())
            write_config(folder, self.model, (self.encoding_.n_features,), (self.encoding_.n_features,),
                         self.module_.cfg, self.train_config(),
                         artefacts={"encoding": ENCODING_FILE, "latent_prior": PRIOR_FILE, "history": HISTORY_FILE},
                         extra={"estimator": self._params_doc()})
            ckpt.save_tensors(folder / WEIGHTS_FILE, self.module_.state_dict())
            self._save_prior(folder)
            atomic_write_json(folder / HISTORY_FILE, self.history_)
        return Path(directory)

    def _save_prior(self, directory: Path) -> None:
        ckpt.save_tensors(directory / PRIOR_FILE, self.latent_prior_, {"columns": self.columns_})

    @classmethod
    def load_folder(cls, directory, device: str = "auto") -> TabularVAE:
        """A saved TabularVAE (or a finished `vaekit tabular fit` run). Reads JSON and safetensors only."""
        directory = Path(directory)
        doc = read_config(directory)
        for name in (ENCODING_FILE, PRIOR_FILE):  # the weights are load_module's to check
            if not (directory / name).is_file():
                raise VaekitError(f"{directory} has no {name}: the fit did not finish; fit it again")
        params = {k: tuple(v) if k == "hidden" else v for k, v in doc.get("estimator", {}).items()}
        est = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        est.device = device
        est.epochs_, est.fitted_batch_size_ = doc["train_config"]["epochs"], doc["train_config"]["batch_size"]
        est.encoding_ = TableEncoding.from_dict(read_json(directory / ENCODING_FILE), str(directory / ENCODING_FILE))
        likelihood = TableLikelihood.of(est.encoding_, est.autoregressive)
        _, est.module_, est.history_ = load_module(directory, device, likelihood)
        est.latent_prior_, meta = ckpt.load_tensors(directory / PRIOR_FILE)
        est.columns_ = meta["columns"]
        return est

    # -- helpers ------------------------------------------------------------------------------
    def _params_doc(self) -> dict:
        """The constructor's parameters as JSON, kept in config.json: what load_folder rebuilds the estimator from."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}

    def _module_device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise VaekitError("this TabularVAE is not fitted yet: call fit(table) first, or vaekit.load(folder)")


def _component_log_density(z: torch.Tensor, means: torch.Tensor, scale_tril: torch.Tensor) -> torch.Tensor:
    """log N(z; mean_k, L_k L_k^T) of each draw under each component, (draws, K)."""
    diff = (z[None] - means[:, None]).transpose(1, 2)  # (K, D, draws)
    solved = torch.linalg.solve_triangular(scale_tril, diff, upper=False)
    half_log_det = scale_tril.diagonal(dim1=1, dim2=2).log().sum(1)  # (K,)
    d = z.shape[1]
    return (-0.5 * solved.square().sum(1) - half_log_det[:, None] - 0.5 * d * math.log(2 * math.pi)).T


def _as_table(data, types: dict | None) -> tuple[Table, dict[str, str]]:
    """(the table, column -> pandas dtype to give back) of a DataFrame, a Table or a table file."""
    import pandas as pd

    if isinstance(data, Table):
        return data, {}
    if isinstance(data, (str, Path)):
        return read_table(data, types=types), {}
    if not isinstance(data, pd.DataFrame):
        raise VaekitError(f"TabularVAE fits a pandas DataFrame, a vaekit Table or a .csv / .parquet path; "
                          f"got a {type(data).__name__}")
    return Table.from_frame(data, types=types), {str(c): str(data[c].dtype) for c in data.columns}
