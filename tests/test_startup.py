"""Start-up (issue 23): `gankit --help` imports neither torch nor the plugin host; `gankit list` keeps its listing.

Imports are checked, not times (the suite never holds a timing threshold): benchmarks/startup.py times them.
"""

import json
import os
import subprocess
import sys

from helpers import REPO


def modules_after(*args: str, env: dict | None = None) -> tuple[set[str], str]:
    """The modules a fresh `gankit ARGS` process had imported when it exited, and its stdout."""
    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: sys.__stderr__.write('MODULES=' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
            "from gankit.cli import main\n"
            f"sys.argv = ['gankit', *{list(args)!r}]\n"
            "try:\n    sys.exit(main())\nexcept SystemExit as e:\n    raise\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})})
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES="))), proc.stdout


def test_help_imports_neither_torch_nor_the_plugin_host():
    modules, out = modules_after("--help")
    assert "usage: gankit" in out
    assert not {"torch", "pluggy", "importlib.metadata", "gankit.core.plugins"} & modules


def test_list_is_kept_and_read_back_without_torch(tmp_path):
    env = {"GANKIT_CACHE_DIR": str(tmp_path)}
    cold, first = modules_after("list", env=env)
    assert "torch" in cold and (tmp_path / "list.json").is_file()
    warm, again = modules_after("list", env=env)
    assert again == first and "dcgan(" in again
    assert "torch" not in warm and "gankit.losses" not in warm
    _, out = modules_after("list", "losses", "b*", env=env)  # a kind and a pattern, from the kept listing
    lines = out.splitlines()
    assert lines[0] == "losses:" and lines[1].startswith("    bce(") and lines[1] in first.splitlines()
    assert all(line.startswith(("    b", "        ")) for line in lines[1:])

def test_a_changed_plugin_environment_or_file_lists_afresh(tmp_path):
    env = {"GANKIT_CACHE_DIR": str(tmp_path)}
    _, first = modules_after("list", "generators", env=env)
    assert "dcgan(" in first
    modules, without = modules_after("list", "generators", env={**env, "GANKIT_DISABLE_PLUGINS": "dcgan"})
    assert "dcgan(" not in without and "torch" in modules  # listed afresh, not the kept listing
    source = REPO / "gankit" / "commands" / "list.py"
    st = source.stat()
    try:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # an edited gankit file
        modules, _ = modules_after("list", "generators", env=env)
        assert "torch" in modules
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
