"""Each default is defined once: the command line's options are read from the configuration
dataclasses (their defaults shown in --help), and bad numbers are refused by one parser."""

import argparse
import dataclasses

import pytest

from lstmlab.cli import build_parser, main
from lstmlab.commands.options import add_config_options, config_defaults, config_from_args
from lstmlab.experiments.lm_train import LMConfig
from lstmlab.experiments.memory_trial import Budget, LearnerConfig


def _subparser(*path):
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_memory_options_default_to_the_learner_config():
    args = _subparser("memory").parse_args([])
    config = config_from_args(LearnerConfig, args)
    assert config == LearnerConfig()
    for name in ("hidden", "batch", "lr", "init", "head_init", "loss"):
        assert getattr(args, name) == getattr(LearnerConfig(), name)
    help_text = _subparser("memory").format_help()
    assert f"default {Budget().sequences:,}" in help_text


def test_lm_train_options_are_unset_until_given_and_show_the_config_default():
    parser = _subparser("lm", "train")
    args = parser.parse_args([])
    assert all(getattr(args, f) is None for f in ("hidden", "layers", "lr", "cell", "tie"))
    assert config_from_args(LMConfig, args) == LMConfig()
    given = parser.parse_args(["--hidden", "64", "--tie", "--cell", "gru"])
    config = config_from_args(LMConfig, given)
    assert (config.hidden, config.tie, config.cell) == (64, True, "gru")
    assert parser.parse_args(["--model", "rnn"]).cell == "rnn"  # the old flag still works
    text = " ".join(parser.format_help().split())
    assert f"units per layer (default {LMConfig().hidden})" in text


def test_unknown_field_and_bad_numbers():
    @dataclasses.dataclass
    class Small:
        size: int = 3

    parser = argparse.ArgumentParser()
    with pytest.raises(KeyError, match="no field 'width'"):
        add_config_options(parser, Small, {"width": "x"})
    add_config_options(parser, Small, {"size": "how many"})
    assert config_defaults(Small) == {"size": 3}
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "0"])


@pytest.mark.parametrize("argv, message", [
    (["lm", "train", "--hidden", "abc"], "argument --hidden: must be a positive integer, got "
                                         "'abc'"),
    (["lm", "train", "--epochs", "-1"], "argument --epochs: must be a positive number"),
    (["lm", "train", "--lr", "0"], "argument --lr: must be a positive number"),
])
def test_bad_numbers_name_the_option(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
