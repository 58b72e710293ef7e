"""The embedded backend's stop-sequence scanner."""

from __future__ import annotations

from vy_nexus.reasoning.embedded import StopScanner


def test_stop_scanner_holds_back_possible_prefixes_and_cuts_at_the_stop() -> None:
    scanner = StopScanner(["<|im_end|>", "\n\n"])
    assert scanner.feed("Hello <|im") == ("Hello ", False)
    assert scanner.feed("_e") == ("", False)
    assert scanner.feed("nd|> trailing") == ("", True)
    assert scanner.flush() == ""


def test_stop_scanner_releases_text_that_turned_out_not_to_stop() -> None:
    scanner = StopScanner(["STOP"])
    assert scanner.feed("go ST") == ("go ", False)
    assert scanner.feed("ART now") == ("START now", False)
    assert scanner.feed(" and ST") == (" and ", False)
    assert scanner.flush() == "ST"
    assert StopScanner([]).feed("anything") == ("anything", False)
