"""The parity goldens are found beside the repository; a missing one fails under CI and skips elsewhere."""

import pytest

from goldens import PARITY, load_golden
from helpers import REPO


def test_the_goldens_are_looked_for_beside_the_repository():
    assert PARITY == REPO.parent / "shared" / "parity"


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                         ("", pytest.skip.Exception), (None, pytest.skip.Exception)])
def test_a_missing_golden_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="golden outputs not found at .*no_such_golden.pt"):
        load_golden("no_such_golden.pt")
