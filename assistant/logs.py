"""Logging set-up for the command line and the app: library noise kept out of the terminal."""

from __future__ import annotations

import logging

# Loggers of libraries that warn about optional speed-ups a user cannot act on. bitsandbytes
# (imported by peft, which transformers imports for sentence-transformers) warns on every
# CPU with AVX512-BF16 that the optional `kernels` package is missing, though its own CPU
# code then runs as it should: to a user of `search` or `ingest` that reads as a broken
# install.
NOISY_LOGGERS = ("bitsandbytes.backends.cpu.ops",)


def quiet_library_noise() -> None:
    """Let only errors of :data:`NOISY_LOGGERS` through (their warnings are dropped)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
