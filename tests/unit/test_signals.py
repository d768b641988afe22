"""The early stop-signal state has one home, whoever runs the command (``mmfast`` entry point
or ``python -m mmfast.cli``, where the command module is a second copy named ``__main__``)."""

from __future__ import annotations

import signal
import subprocess
import sys

import mmfast.cli
import mmfast.signals as S
from mmfast.run import runner


def test_one_home_for_early_signals() -> None:
    assert not hasattr(mmfast.cli, "_pending")
    assert runner.pending_stop is S.pending_stop and mmfast.cli.pending_stop is S.pending_stop
    previous = S.install_early()
    try:
        assert S.pending_stop() is None
        signal.raise_signal(signal.SIGHUP)  # noted, not raised
        assert S.pending_stop() == signal.SIGHUP and runner.pending_stop() == signal.SIGHUP
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
        S._pending.clear()


def test_python_dash_m_sees_a_signal_noted_by_its_main_copy() -> None:
    """As ``python -m mmfast.cli`` runs: the __main__ copy installs the handler, the runner (which
    imports ``mmfast.signals``) reads what it noted."""
    code = (
        "import runpy, signal, sys\n"
        "import mmfast.signals as S\n"
        "g = runpy.run_module('mmfast.cli', run_name='not_main')\n"
        "g['install_early']()\n"
        "signal.raise_signal(signal.SIGTERM)\n"
        "from mmfast.run.runner import pending_stop\n"
        "sys.exit(0 if pending_stop() == signal.SIGTERM else 1)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_the_guard_process_loads_only_what_it_needs() -> None:
    """``mmfast guard`` starts beside every bot and acts for it once up: its parser and module
    load neither the simulator, the runner, the config loader nor (told the bot checked the
    same native signer) the official SDK. Those cost ~1 s of its start-up before."""
    code = (
        "import sys\n"
        "from mmfast.cli import build_parser\n"
        "args = build_parser('guard').parse_args(['guard', '--rest-url', 'http://127.0.0.1:9',"
        " '--chain-id', '1', '--account-index', '1', '--api-key-index', '5', '--market', '0',"
        " '--heartbeat', 'hb', '--bot-pid', '1', '--journal', 'j', '--signer-checked'])\n"
        "assert args.check_signer is False\n"
        "import mmfast.run.guard\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'lighter' or m in ("
        "'mmfast.sim', 'mmfast.run.runner', 'mmfast.conf.load', 'mmfast.diagnostics'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "[]", out
    full = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mmfast.cli import "
            "build_parser; build_parser(); print('mmfast.sim' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert full.strip() == "True"  # the check above can see such an import
