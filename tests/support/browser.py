"""A factory of pages, each in a new browser context: one per person in a journey."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

DEFAULT_TIMEOUT_MS = 10_000


@dataclass
class PageFactory:
    """Call it for a page in a new browser context (a separate person)."""

    browser: Browser
    default_base_url: Callable[[], str | None]
    contexts: list[BrowserContext] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def __call__(self, *, base_url: str | None = None, **context_options: Any) -> Page:
        base = base_url or self.default_base_url()
        if base:
            context_options.setdefault("base_url", base)
        context = self.browser.new_context(**context_options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        self.pages.append(page)
        return page

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def screenshot_all(self, folder: Path, name: str) -> list[Path]:
        saved = []
        folder.mkdir(parents=True, exist_ok=True)
        open_pages = [page for page in self.pages if not page.is_closed()]
        for number, page in enumerate(open_pages, start=1):
            path = folder / (f"{name}.png" if number == 1 else f"{name}-page{number}.png")
            try:
                page.screenshot(path=str(path), full_page=True, timeout=5_000)
            except Exception:  # noqa: S112 - a failed screenshot must not hide the failure
                continue
            saved.append(path)
        return saved

    def close(self) -> None:
        for context in self.contexts:
            try:
                context.close()
            except Exception:  # noqa: S110 - the browser may already be gone
                pass
