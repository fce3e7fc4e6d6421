"""The README's quickstart, run as written: the bash commands and the Python block."""

import os
import re
import shlex
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    bash = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in bash for line in block.splitlines() if line.startswith("crsky ")]


def test_quickstart_commands_run(tmp_path):
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    commands = quickstart_commands()
    assert len(commands) >= 3
    for line in commands:
        argv = [sys.executable, "-m", "crsky", *shlex.split(line)[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr[-2000:])
    assert (tmp_path / "figures" / "fig2_spectrum_vs_time.png").exists()


def test_quickstart_python_runs(tmp_path, capsys):
    """The two Python blocks as written. Reference for the first: ⟨C_ℓ⟩ of the same
    configuration through the run file (one code path, so equal to the bit), and its shape."""
    import numpy as np

    import crsky
    from crsky.io import runfile

    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    ensemble_code, field_code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(ensemble_code.strip().splitlines()) == 3
    namespace = {}
    exec(compile(ensemble_code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    cl = np.asarray(namespace["ens"].statistics("parallel").cl_mean[-1])
    config = namespace["ens"].config
    assert cl.shape == (2 * config.nside + 1,) and np.all(cl[:2] > 0)
    assert printed.strip().startswith("[") and len(printed.split()) >= cl.size
    crsky.run_ensemble(config, tmp_path / "run.h5", progress=False)
    stored = runfile.load(tmp_path / "run.h5").statistics("parallel").cl_mean[-1]
    np.testing.assert_array_equal(np.asarray(stored), cl)
    exec(compile(field_code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "(2, 192, 3)"


def test_two_commands_documented():
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_commands_in_reference_exist():
    from crsky.cli import COMMANDS

    documented = set(re.findall(r"^\| `crsky (\w+)", README, flags=re.M))
    assert documented <= set(COMMANDS)
    assert "simulate" in documented


def test_simulate_parameters_table_lists_every_key_and_flag():
    """Every SimulationConfig field (the TOML keys) and every crsky simulate flag, with its
    default, is in the README's table."""
    import dataclasses

    from crsky.cli.simulate import FLAGS
    from crsky.pipelines.ensemble import SimulationConfig

    section = README.split("### `crsky simulate` parameters", 1)[1].split("\n## ", 1)[0]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in section.splitlines() if line.startswith("| `")]
    rows = {c[0].strip("`"): c for c in cells}
    defaults = SimulationConfig()
    for field in dataclasses.fields(SimulationConfig):
        assert field.name in rows, field.name
        default = getattr(defaults, field.name)
        if isinstance(default, int | float) and not isinstance(default, bool):
            cell = rows[field.name][3]  # e.g. 11/3, 1e-6, "1e-8 (float64), 1e-6 (float32)"
            by_dtype = dict(reversed(part.split()) for part in cell.split(", ")) if "(" in cell \
                else {f"({defaults.dtype})": cell}
            assert float(Fraction(by_dtype[f"({defaults.dtype})"])) == pytest.approx(default), \
                field.name
    for flag, (field, *_) in FLAGS.items():
        assert rows[field][1] == f"`--{flag}`", flag
    assert rows["save_trajectories"][1] == "`--save-trajectories`"


def test_reproduction_commands(tmp_path, monkeypatch, capsys):
    """Each command of 'Reproducing the papers': cheap ones run, long ones are parsed and
    validated (configs and run files) without computing."""
    from crsky.cli import build_parser, main
    from crsky.cli.infer import build
    from crsky.cli.simulate import config_from_args

    section = README.split("## Reproducing the papers", 1)[1].split("\n## ", 1)[0]
    commands = [" ".join(c.split()) for c in re.findall(r"`(crsky [^`]+)`", section, re.S)]
    assert {c.split()[1] for c in commands} >= {"simulate", "plot", "bgk", "eigen", "infer"}
    monkeypatch.chdir(ROOT)
    for command in commands:
        argv = shlex.split(command)[1:]
        args = build_parser().parse_args(argv)
        if args.command in ("eigen", "bgk"):
            assert main(argv) == 0, command
        elif args.command == "infer":
            build(args.run_file)
        elif args.command == "simulate":
            config_from_args(args)
    capsys.readouterr()
