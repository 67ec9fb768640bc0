"""xling: how a language model answers the same sensitive question in Chinese, English and Japanese."""

import os

__version__ = "0.1.0"

# torch's CPU threads (OpenMP) spin while they wait for each other. When another process holds a
# core, the spinning thread keeps it while the thread it waits for is off the CPU: on 2 cores with
# one busy elsewhere, a batch of 6 translations by the bundled model took 41.5 s with spinning
# threads and 3.4 s with passive ones (README, "Set-up"). Set here, before
# torch loads, and only when the user has not chosen a policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["__version__", "compare", "CompareConfig"]


def __getattr__(name: str):
    # Lazy, so `import xling` (and `xling --help`) never pulls in torch.
    if name == "compare":
        from xling.pipeline import compare

        return compare
    if name == "CompareConfig":
        from xling.config import CompareConfig

        return CompareConfig
    raise AttributeError(name)
