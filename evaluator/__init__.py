"""MNIST GAN competition evaluator: samples -> features -> metrics -> results JSON."""

__version__ = "0.1.0"
