import pytest

from assistant.backends.llama_local import _StopScanner, default_threads


@pytest.mark.parametrize(
    ("stops", "pieces", "emitted", "stopped"),
    [
        ([], ["Hello", " world"], "Hello world", False),
        (["\nObservation:"], ["Thought: x", "\nObs", "ervation: y"], "Thought: x", True),
        (["\nObservation:"], ["a", "\nOb", "vious"], "a\nObvious", False),
        (["END"], ["xxEN"], "xxEN", False),  # "EN" held back, released by flush()
        (["END", "STOP"], ["aSTO", "P b"], "a", True),
        (["ab", "b"], ["xab"], "x", True),  # the earliest stop wins
    ],
)
def test_stop_scanner(stops: list[str], pieces: list[str], emitted: str, stopped: bool) -> None:
    scanner = _StopScanner(stops)
    out, hit = "", False
    for piece in pieces:
        text, hit = scanner.feed(piece)
        out += text
        if hit:
            break
    if not hit:
        out += scanner.flush()
    assert hit is stopped
    assert out == emitted


def test_held_back_prefix_is_released_on_flush() -> None:
    scanner = _StopScanner(["END"])
    assert scanner.feed("xxEN") == ("xx", False)
    assert scanner.flush() == "EN"


@pytest.mark.parametrize(("cpus", "expected"), [(1, (1, 1)), (2, (1, 2)), (8, (4, 8))])
def test_default_threads(cpus: int, expected: tuple[int, int]) -> None:
    assert default_threads(cpus) == expected
