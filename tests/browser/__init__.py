"""Browser tests for the web UI (Playwright + headless Chromium)."""
