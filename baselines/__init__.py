"""Reference GAN submissions: one trainer with pluggable objectives (see baselines/README.md)."""
