"""The browser section of ``python -m benchmarks`` steps aside cleanly where there is no Chromium."""

from benchmarks import browser


def test_browser_section_skips_with_a_note_without_chromium(monkeypatch):
    monkeypatch.setattr(browser, "chromium", lambda: None)
    note = browser.measure(quick=True)
    assert isinstance(note, str)
    assert note.startswith("browser section skipped") and browser.CHROMIUM in note


def test_free_port_is_in_the_shared_range():
    port = browser._free_port()
    assert 20000 <= port <= 29999
