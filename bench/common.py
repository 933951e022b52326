"""What every model benchmark shares: ``--model`` / ``--threads`` and loading the model."""

from __future__ import annotations

import argparse

import torch

from core.models.handle import ModelHandle
from core.models.registry import default_model_name, load_model


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="registry name or bundle folder (default: the app's default model)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def load_bench_model(args: argparse.Namespace) -> ModelHandle:
    if args.threads:
        torch.set_num_threads(args.threads)
    return load_model(args.model or default_model_name())
