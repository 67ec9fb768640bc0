"""xling: how a language model answers the same sensitive question in Chinese, English and Japanese."""

__version__ = "0.1.0"

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
