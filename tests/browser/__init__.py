"""Browser tests of the built website (pytest + Playwright + Debian's Chromium)."""
