"""Layer Explorer: see what a PyTorch layer does."""

__version__ = "0.1.0"
