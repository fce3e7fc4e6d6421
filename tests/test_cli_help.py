"""``crsky <command> --help``: every option's default and the choices of the enumerated ones,
checked against the library's own constants (so help and code cannot drift apart)."""

import dataclasses

import pytest

from crsky.cli import COMMANDS, build_parser


def help_text(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert "usage: crsky " + command in help_text(command, capsys)


def test_simulate_help_states_the_config_defaults_and_choices(capsys):
    from crsky.cli.simulate import CHOICES, FLAGS
    from crsky.io.run import DTYPES, TSIT5_TOLERANCES, SimulationConfig
    from crsky.physics.tracing import SOLVERS

    text = help_text("simulate", capsys)
    assert "--solver {boris,tsit5}" in text and "--dtype {float32,float64}" in text
    assert CHOICES == {"solver": SOLVERS, "dtype": tuple(DTYPES)}
    defaults = {f.name: f.default for f in dataclasses.fields(SimulationConfig)}
    for flag, (field, _, _, shown) in FLAGS.items():
        if field in ("dt", "rtol", "atol"):
            continue  # derived defaults, stated in words
        assert shown == str(defaults[field]), flag
        assert f"(default: {shown}, or the --config value)" in text, flag
    rtol64, atol64 = TSIT5_TOLERANCES["float64"]
    rtol32, atol32 = TSIT5_TOLERANCES["float32"]
    assert f"{rtol64:g} for float64, {rtol32:g} for float32" in FLAGS["rtol"][3]
    assert f"{atol64:g} for float64, {atol32:g} for float32" in FLAGS["atol"][3]


def test_eigen_help_states_profiles_and_validated_eps(capsys):
    from crsky.cli.eigen import PROFILES
    from crsky.physics import pitch_angle

    text = help_text("eigen", capsys)
    assert PROFILES == pitch_angle.PROFILES
    assert "--profile {flat,matched,gs}" in text and "(default: matched)" in text
    assert (f"in [{pitch_angle.EPS_MIN:g}, {pitch_angle.EPS_MAX:g}] for every profile" in text
            and "(EPS_MIN, EPS_MAX" in text)
    assert "(default: 0.0001)" in text  # --delta


@pytest.mark.parametrize(("command", "expected"), [
    ("bgk", "(default: 30)"),
    ("plot", "(default: parallel)"),
    ("cltable", "{parallel,perpendicular}"),
    ("mock", "(default: experiments.toml)"),
    ("demo", "(default: demo-output)"),
    ("infer", "--chains CHAINS"),
])
def test_other_commands_show_defaults(command, expected, capsys):
    text = help_text(command, capsys)
    assert expected in text
    assert "(default: None)" not in text and "(default: False)" not in text
