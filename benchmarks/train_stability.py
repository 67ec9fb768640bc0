"""Does a refit of the learned layer land on the same weights when its inputs differ in their last
digits (another machine's BLAS, an embedding cache built in other batches)?

Fits the dense layer (on the answer rows alone) twice, on the training features and on the same features times
(1 + 1e-6 * noise), at lbfgs's default gradient tolerance (1e-4) and at the shipped one
(xling.detect.train.TOL), and prints the largest difference in probability on the training rows.
Needs the embedding cache of one `python -m xling.detect.train` run; about 10 minutes on 2 cores.

    python benchmarks/train_stability.py
"""

from __future__ import annotations

import time

import numpy as np

from xling.detect import learned, train as training
from xling.detect.judged import load_train


def main() -> None:
    items = load_train()
    rows = training.training_rows(items)
    x, y, weight = training.features(rows).x, training.labels(rows), training.row_weights(items)
    noisy = x * (1 + 1e-6 * np.random.default_rng(5).standard_normal(x.shape))
    for tol in (1e-4, training.TOL):
        start = time.perf_counter()
        a, b = training.fit_linear(x, y, weight=weight, tol=tol), training.fit_linear(noisy, y, weight=weight, tol=tol)
        gap = np.abs(learned.softmax(learned.logits(a, x)) - learned.softmax(learned.logits(b, x))).max()
        print(f"tol {tol:g}: largest probability difference after a 1e-6 relative perturbation: {gap:.2e} "
              f"({time.perf_counter() - start:.0f} s for both fits)")


if __name__ == "__main__":
    main()
