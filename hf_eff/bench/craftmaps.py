"""Benchmark: CRAFTMaps vs scikit-learn's PolynomialCountSketch (and our own RM / TS) on real offline datasets.

Three measurements, all in one process: relative Gram-matrix error ||K - Z Z^T||_F / ||K||_F against output
dimension E (several kernels, >= 10 seeds per point in the full size), test accuracy of the one-pass ECOC ridge
learner on each map's features against E, and transform throughput as a ratio to scikit-learn's.
Preprocessing is scikit-learn's own recommendation for polynomial sketches: MinMax scaling, then l2-normalised rows.
"""

import math
import statistics
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.kernel_approximation import PolynomialCountSketch
from sklearn.preprocessing import MinMaxScaler, Normalizer

from hf_eff import CraftMapsSampler
from hf_eff.bench.meters import compare_timings, single_thread
from hf_eff.bench.registry import BenchSettings, benchmark
from hf_eff.bench.report import BenchReport, Headline
from hf_eff.random_features import OnePassClassifier, PolynomialKernel, RandomMaclaurin, TensorSketch


DATASETS = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine, "iris": load_iris}
KERNELS = [(2, 0.0), (3, 0.0), (2, 1.0), (3, 1.0)]  # (degree, coef0); gamma = 1
OURS = "CRAFTMaps (default)"
FAST = "CRAFTMaps fast (RM up to D=2E)"
# quick: what `hf-eff tour` runs (well under a minute); full: the real measurement (>= 10 seeds per point)
SIZES = {
    "quick": {
        "gram_datasets": ["digits", "breast_cancer", "wine"],
        "gram_dims": [64, 512],
        "gram_seeds": 3,
        "gram_rows": 200,
        "acc_datasets": ["digits"],
        "acc_dims": [128],
        "acc_seeds": 1,
        "speed_rows": 4000,
        "speed_repeats": 3,
    },
    "full": {
        "gram_datasets": ["digits", "breast_cancer", "wine", "iris"],
        "gram_dims": [64, 128, 256, 512, 1024],
        "gram_seeds": 10,
        "gram_rows": 500,
        "acc_datasets": ["digits", "breast_cancer", "wine"],
        "acc_dims": [64, 128, 256, 512],
        "acc_seeds": 5,
        "speed_rows": 20000,
        "speed_repeats": 5,
    },
}
BASELINE = "sklearn PolynomialCountSketch"
Sampler = Callable[[int, int], Callable[[np.ndarray], np.ndarray]]  # (E, seed) -> fitted transform


def _preprocess(x: np.ndarray) -> np.ndarray:
    return Normalizer().fit_transform(MinMaxScaler().fit_transform(x))


def _samplers(degree: int, coef0: float, n_features: int) -> dict[str, Sampler]:
    """Every map under test, as (E, seed) -> fitted transform on float64 arrays."""
    kernel = PolynomialKernel(degree, 1.0, coef0)

    def sklearn_pcs(e, seed):
        return (
            PolynomialCountSketch(degree=degree, coef0=coef0, n_components=e, random_state=seed)
            .fit(np.zeros((1, n_features)))
            .transform
        )

    def craftmaps(up, up_factor=None):
        def make(e, seed):
            sampler = CraftMapsSampler(
                degree=degree,
                coef0=coef0,
                n_components=e,
                n_components_up=None if up_factor is None else up_factor * e,
                up=up,
                h01=e >= 2 * (n_features + 1),  # exact degree-0/1 terms only where they leave room (as "auto")
                random_state=seed,
            )
            return sampler.fit(np.zeros((1, n_features))).transform

        return make

    def torch_map(build):
        def make(e, seed):
            feature_map = build(e, seed)
            return lambda x: feature_map(torch.from_numpy(x)).numpy()

        return make

    def random_maclaurin(e, seed):
        h01 = e > n_features + 1  # H0/1 needs room for the 1 + d exact features
        return RandomMaclaurin(n_features, e, kernel, h01=h01, seed=seed)

    return {
        BASELINE: sklearn_pcs,
        "TensorSketch (ours)": torch_map(lambda e, seed: TensorSketch(n_features, e, kernel, seed=seed)),
        "Random Maclaurin (ours)": torch_map(random_maclaurin),
        "CRAFTMaps TS->SRHT": craftmaps("ts"),
        FAST: craftmaps("rm", up_factor=2),
        OURS: craftmaps("auto"),
    }


def _gram_errors(settings: BenchSettings, rows: list, curves: dict) -> list[float]:
    size = SIZES[settings.size]
    names, dims, n_rows = size["gram_datasets"], size["gram_dims"], size["gram_rows"]
    seeds = range(settings.seed, settings.seed + size["gram_seeds"])
    ratios = []
    for name in names:
        x = _preprocess(DATASETS[name]().data)
        x = x[np.random.default_rng(settings.seed).permutation(len(x))[:n_rows]]
        for degree, coef0 in KERNELS:
            exact = (x @ x.T + coef0) ** degree
            norm = np.linalg.norm(exact)
            for e in dims:
                row = {"dataset": name, "setting": f"(x.y + {coef0:g})^{degree}", "E": e}
                for method, make in _samplers(degree, coef0, x.shape[1]).items():
                    errors = []
                    for seed in seeds:
                        z = make(e, seed)(x)
                        errors.append(np.linalg.norm(exact - z @ z.T) / norm)
                    row[method] = statistics.mean(errors)
                    curves.setdefault((name, row["setting"]), {}).setdefault(method, []).append((e, row[method]))
                # when E reaches the dimension of the explicit tensor-power space, TensorSketch is exact up to hash
                # collisions and no random map is needed: such settings are reported but kept out of the headline
                explicit_fits = e >= (x.shape[1] + (coef0 > 0)) ** degree
                row["ratio to sklearn"] = "n/a: explicit map fits in E" if explicit_fits else row[OURS] / row[BASELINE]
                if not explicit_fits:
                    ratios.append(row["ratio to sklearn"])
                rows.append(row)
    return ratios


def _accuracies(settings: BenchSettings) -> list[dict]:
    size = SIZES[settings.size]
    names, dims = size["acc_datasets"], size["acc_dims"]
    seeds = range(settings.seed, settings.seed + size["acc_seeds"])
    degree, coef0 = 3, 1.0  # classification with the inhomogeneous cubic kernel
    rows = []
    for name in names:
        data = DATASETS[name]()
        x, y = _preprocess(data.data), data.target
        order = np.random.default_rng(settings.seed).permutation(len(x))
        x, y = x[order], y[order]
        cut = 2 * len(x) // 3
        for e in dims:
            row = {"dataset": name, "setting": f"(x.y + {coef0:g})^{degree}, one-pass ECOC ridge", "E": e}
            for method, make in _samplers(degree, coef0, x.shape[1]).items():
                scores = []
                for seed in seeds:
                    transform = make(e, seed)
                    classifier = OnePassClassifier(e, int(y.max()) + 1, code="random", alpha=1e-3, seed=seed)
                    classifier.partial_fit(torch.from_numpy(transform(x[:cut])), torch.from_numpy(y[:cut])).solve()
                    predicted = classifier.predict(torch.from_numpy(transform(x[cut:]))).numpy()
                    scores.append(float((predicted == y[cut:]).mean()))
                row[method] = statistics.mean(scores)
            rows.append(row)
    return rows


def _throughput(settings: BenchSettings) -> tuple[list[dict], dict[str, float]]:
    """Rows/s of every map as a ratio to scikit-learn's (float64, its native dtype), timed interleaved."""
    n_rows = SIZES[settings.size]["speed_rows"]
    digits = _preprocess(load_digits().data)
    x = digits[np.random.default_rng(settings.seed).integers(0, len(digits), n_rows)]  # real rows, resampled
    x32 = x.astype(np.float32)
    degree, e = 3, 512
    kernel = PolynomialKernel(degree)

    def sampler(**kwargs):
        return CraftMapsSampler(degree=degree, n_components=e, random_state=settings.seed, **kwargs).fit(x)

    sklearn_map = PolynomialCountSketch(degree=degree, n_components=e, random_state=settings.seed).fit(x)
    ours, fast = sampler(), sampler(up="rm", n_components_up=2 * e)
    single_stage = TensorSketch(x.shape[1], e, kernel, seed=settings.seed)
    rm = RandomMaclaurin(x.shape[1], e, kernel, seed=settings.seed)
    candidates = {
        (BASELINE, "float64"): lambda: sklearn_map.transform(x),
        ("TensorSketch (ours)", "float64"): lambda: single_stage(torch.from_numpy(x)),
        ("TensorSketch (ours)", "float32"): lambda: single_stage(torch.from_numpy(x32)),
        ("Random Maclaurin (ours)", "float32"): lambda: rm(torch.from_numpy(x32)),
        (FAST, "float64"): lambda: fast.transform(x),
        (FAST, "float32"): lambda: fast.transform(x32),
        (OURS, "float64"): lambda: ours.transform(x),
        (OURS, "float32"): lambda: ours.transform(x32),
    }
    named = {f"{method} [{dtype}]": fn for (method, dtype), fn in candidates.items()}
    # one thread each: scikit-learn's sketch runs on one core, and a shared CPU stalls multi-threaded torch far
    # more than it stalls NumPy, so this is the like-for-like and the reproducible comparison
    with single_thread():
        timings = compare_timings(
            named, baseline=f"{BASELINE} [float64]", repeats=SIZES[settings.size]["speed_repeats"]
        )
    rows, rates = [], {}
    for dtype in ("float64", "float32"):
        row = {
            "dataset": f"digits rows resampled to {n_rows}x64",
            "setting": f"(x.y)^3, {dtype} input, 1 thread",
            "E": e,
        }
        for method, candidate_dtype in candidates:
            name = f"{method} [{candidate_dtype}]"
            if candidate_dtype == dtype or method == BASELINE:
                row[method] = 1 / timings[name].ratio
                rates[name] = n_rows / timings[name].median_s
        rows.append(row)
    return rows, rates


def _figure(curves: dict):
    import matplotlib.pyplot as plt

    keys = sorted(curves)
    datasets = sorted({k[0] for k in keys})
    kernels = sorted({k[1] for k in keys})
    fig, axes = plt.subplots(
        len(datasets), len(kernels), figsize=(3.2 * len(kernels), 2.6 * len(datasets)), squeeze=False
    )
    for (dataset, kernel), methods in curves.items():
        ax = axes[datasets.index(dataset)][kernels.index(kernel)]
        for method, points in methods.items():
            e, err = zip(*points)
            ax.plot(e, err, marker="o", markersize=3, label=method, linewidth=2.2 if method == OURS else 1.0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{dataset}: {kernel}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1][0].set_xlabel("output dimension E")
    axes[0][0].set_ylabel("relative Gram error")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    return fig


@benchmark(
    "craftmaps", summary="Gram error, accuracy and throughput of CRAFTMaps vs scikit-learn PolynomialCountSketch"
)
def run(settings: BenchSettings) -> BenchReport:
    torch.manual_seed(settings.seed)
    gram_rows: list[dict] = []
    curves: dict = {}
    ratios = _gram_errors(settings, gram_rows, curves)
    geometric_mean = _geometric_mean(ratios)
    compared = [r for r in gram_rows if not isinstance(r["ratio to sklearn"], str)]
    accuracy_rows = _accuracies(settings)
    speed_rows, rates = _throughput(settings)
    speed, speed32 = speed_rows[0][OURS], speed_rows[1][OURS]
    rows = (
        [{"measurement": "Gram error (lower is better)", **r} for r in gram_rows]
        + [{"measurement": "test accuracy", **r} for r in accuracy_rows]
        + [{"measurement": "throughput vs sklearn (higher is better)", **r} for r in speed_rows]
    )
    return BenchReport(
        method="craftmaps",
        title="CRAFTMaps: compact random feature maps for polynomial kernels vs scikit-learn",
        rows=rows,
        headline=Headline(
            better="higher",
            effect="lower Gram-matrix error (geometric mean)",
            baseline=f"{BASELINE} at the same output dimension",
            value=1 / geometric_mean,
            unit="x",
            note=f"transform throughput {speed:.2f}x scikit-learn's (float64, one thread each), {speed32:.2f}x in float32",
        ),
        notes=_notes(gram_rows, compared, ratios, speed_rows, rates),
        meta={
            "size": settings.size,
            "seed": settings.seed,
            "up_factor": "D = 4E",
            **SIZES[settings.size],
            "torch_threads": torch.get_num_threads(),
        },
        figures={"gram_error_vs_dimension": _figure(curves)},
    )


def _geometric_mean(values) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))


def _notes(gram_rows: list[dict], compared: list[dict], ratios: list[float], speed_rows, rates) -> list[str]:
    geometric_mean = _geometric_mean(ratios)
    worst = max(compared, key=lambda r: r["ratio to sklearn"])
    speed, speed32, fast_speed = speed_rows[0][OURS], speed_rows[1][OURS], speed_rows[0][FAST]
    pure_geometric_mean = _geometric_mean(r["CRAFTMaps TS->SRHT"] / r[BASELINE] for r in compared)
    fast_geometric_mean = _geometric_mean(r[FAST] / r[BASELINE] for r in compared)
    return [
        f"Gram error of {OURS} / {BASELINE}: geometric mean {geometric_mean:.3f} over the {len(ratios)} settings "
        f"(datasets x kernels x E) where E is below the explicit feature dimension (d + [coef0 > 0])^degree; "
        f"{len(gram_rows) - len(ratios)} settings where the explicit map fits in E are listed but left out: there "
        "TensorSketch is exact up to hash collisions and compressing only adds error (use explicit polynomial "
        f"features there, not random ones). Worst single setting {worst['ratio to sklearn']:.3f} "
        f"({worst['dataset']}, {worst['setting']}, E={worst['E']}).",
        f"Compaction alone (TS up to 4E, SRHT down, no exact terms): geometric-mean ratio {pure_geometric_mean:.3f}. "
        "The default ('auto') additionally keeps the degree-0/1 terms of inhomogeneous kernels exact (Kar & "
        "Karnick's H0/1 with a Random Maclaurin up-projection) when E >= 2 (d + 1): much of its gain on "
        "(x.y + 1)^p comes from there.",
        f"Transform throughput vs scikit-learn: {speed:.2f}x with float64 input, {speed32:.2f}x with float32 input "
        "(interleaved timings in one process, torch limited to one thread like scikit-learn's sketch). The default's up-projection to D = 4E costs about four "
        "single-stage sketches at E, so its speed over scikit-learn comes from the implementation, its accuracy "
        "from the compaction. Torch's two threads suffer more than NumPy when the CPU is shared.",
        f"{FAST}: Gram error geometric mean {fast_geometric_mean:.3f}x scikit-learn's, throughput {fast_speed:.2f}x "
        "(float64 input): the Random Maclaurin up-projection is one matrix product.",
        "Rows/s (indicative only, shared machine): "
        + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
        + ".",
        "TensorSketch (ours) matches scikit-learn's numbers exactly: it is the same algorithm, and for the same "
        "integer seed torch's and NumPy's Mersenne Twisters draw the same hashes (the curves overlap).",
        "Errors are means over seeds; each seed draws a new random map for every method. Preprocessing: "
        "MinMaxScaler then Normalizer (l2), as in scikit-learn's polynomial-sketch example.",
    ]
