"""The browser journey, in its own process (`python -m monitor.checks.browser_child`), run by
monitor/checks/browser.py: it reads one job as JSON on stdin (the password among it, never in argv
or the environment), drives headless Chromium through Playwright like a person would, and writes
one JSON line per finished step, then one last line with the outcome, on stdout.

It decides what it can see itself (the app did not render, the sign-in was refused...); the code
on screen is compared with the canary's by the parent, which alone knows the canary secret.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Response, sync_playwright

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ASSET_TYPES = {"script": ("javascript", "ecmascript"), "stylesheet": ("text/css",)}
RENDER_GRACE = 3.0  # seconds the app may take to render once a script or stylesheet failed
MAX_PROBLEMS = 10
SCREENSHOT_MS = 3000  # within the parent's grace past the journey's deadline
# what each step asks of 2FAuth, for the step shown when it fails
REQUESTS = {
    "load": ("GET", "/"),
    "sign in": ("POST", "/user/login"),
    "accounts": ("GET", "/api/v1/twofaccounts"),
    "code": ("GET", "/api/v1/twofaccounts/{id}/otp"),
    "sign out": ("GET", "/user/logout"),
}


class Failed(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


class Journey:
    """One sign-in journey on one page, collecting what a user would see go wrong."""

    def __init__(self, job: dict[str, Any], page: Page) -> None:
        self.job, self.page = job, page
        self.base = job["url"].rstrip("/")
        self.origin = urlsplit(self.base)[:2]
        self.deadline = time.monotonic() + float(job["budget"])
        self.problems: list[str] = []
        self.api_limited: Response | None = None
        self.accounts: list[Any] | None = None
        self.current = ""
        page.on("pageerror", lambda exc: self._problem(f"JavaScript error: {str(exc)[:200]}"))
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)
        page.on("console", self._console)
        page.on("dialog", lambda dialog: dialog.accept())  # "Are you sure you want to log out?"
        page.on("crash", lambda _: self._problem("the page crashed (out of memory?)"))

    # --- what goes wrong on the page ---------------------------------------------------------

    def _problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS and text not in self.problems:
            self.problems.append(text)

    def _same_origin(self, url: str) -> bool:
        return urlsplit(url)[:2] == self.origin

    def _response(self, response: Response) -> None:
        request = response.request
        if not self._same_origin(response.url):
            return
        path = urlsplit(response.url).path
        wanted = ASSET_TYPES.get(request.resource_type)
        if wanted:
            kind = request.resource_type
            media = (response.headers.get("content-type") or "").lower()
            if response.status >= 400:
                self._problem(f"the {kind} {path} failed to load (HTTP {response.status})")
            elif not any(w in media for w in wanted):
                what = "JavaScript" if kind == "script" else "CSS"
                self._problem(f"the {kind} {path} came as {media or 'no type'}, not {what}")
        if path.startswith("/api/") and response.status == 429:
            self.api_limited = response
        if path == "/api/v1/twofaccounts" and response.status == 200:
            try:
                data = response.json()
            except (PlaywrightError, ValueError):
                data = None
            self.accounts = data if isinstance(data, list) else None

    def _request_failed(self, request: Any) -> None:
        if self._same_origin(request.url) and request.resource_type in ASSET_TYPES:
            path = urlsplit(request.url).path
            self._problem(f"the {request.resource_type} {path} failed to load ({request.failure})")

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and text.startswith("Refused to"):
            self._problem(text[:200])  # a Content-Security-Policy block

    # --- time ---------------------------------------------------------------------------------

    def left_ms(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failed("timeout", f"the journey did not finish within {self.job['budget']:g}s")
        return left * 1000

    def step(self, name: str, method: str, path: str, status: int | None, started: float) -> None:
        ms = round((time.perf_counter() - started) * 1000, 1)
        emit({"step": name, "method": method, "path": path, "status": status, "ms": ms, "outcome": "ok"})

    def run(self) -> dict[str, Any]:
        steps = [("load", self.load), ("sign in", self.sign_in), ("accounts", self.list_accounts)]
        if self.job.get("account_id"):
            steps.append(("code", self.read_code))
        steps.append(("sign out", self.sign_out))
        out: dict[str, Any] = {}
        for name, action in steps:
            self.current = name
            started = time.perf_counter()
            try:
                action(out, started)
            except Failed as failed:
                self.fail_step(name, started, failed)
                raise
            except PlaywrightError as exc:
                explained = self.explain(name, exc)
                self.fail_step(name, started, explained)
                raise explained from None
        return out

    def fail_step(self, name: str, started: float, failed: Failed) -> None:
        ms = round((time.perf_counter() - started) * 1000, 1)
        method, path = REQUESTS[name]
        path = path.replace("{id}", str(self.job.get("account_id")))
        emit(
            {
                "step": name,
                "method": method,
                "path": path,
                "status": failed.status,
                "ms": ms,
                "outcome": failed.kind,
            }
        )

    def explain(self, step: str, exc: PlaywrightError) -> Failed:
        """A Playwright error in words: the network's error names, or what did not appear in time."""
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        network = re.search(r"net::(ERR_[A-Z_]+)", text)
        if network:
            code = network.group(1)
            kind = "tls" if "CERT" in code or "SSL" in code else "connect"
            if code == "ERR_TIMED_OUT":
                kind = "timeout"
            return Failed(kind, f"the browser could not load {self.base}: {code}")
        if "Timeout" in type(exc).__name__ or "Timeout" in text:
            if self.api_limited is not None:
                return Failed("rate_limited", "2FAuth answered 429 Too Many Requests to the web app's API")
            if self.problems:
                return Failed("frontend", f"step '{step}' never completed: {'; '.join(self.problems)}")
            return Failed("timeout", f"step '{step}' did not complete within {self.job['budget']:g}s")
        return Failed("frontend", f"step '{step}': the browser failed: {text[:200]}")

    # --- the steps ----------------------------------------------------------------------------

    def load(self, out: dict[str, Any], started: float) -> None:
        response = self.page.goto(self.base + "/", wait_until="load", timeout=self.left_ms())
        status = response.status if response else None
        if status is not None and status >= 400:
            kind = "maintenance" if status == 503 else "server_error" if status >= 500 else "http_status"
            raise Failed(kind, f"GET / answered {status}: the web app is not served", status)
        loaded = time.monotonic()
        form = self.page.locator("#emlEmail")
        while not form.is_visible():
            if self.problems and time.monotonic() - loaded > RENDER_GRACE:
                raise Failed(
                    "frontend",
                    f"the web app did not render its sign-in form: {'; '.join(self.problems)}",
                    status,
                )
            self.left_ms()
            self.page.wait_for_timeout(100)
        self.step("load", "GET", "/", status, started)

    def sign_in(self, out: dict[str, Any], started: float) -> None:
        self.page.locator("#emlEmail").fill(self.job["email"], timeout=self.left_ms())
        self.page.locator("#pwdPassword").fill(self.job["password"], timeout=self.left_ms())
        login = "/user/login"
        with self.page.expect_response(
            lambda r: urlsplit(r.url).path == login and r.request.method == "POST", timeout=self.left_ms()
        ) as answer:
            self.page.locator("#btnSignIn").click(timeout=self.left_ms())
        status = answer.value.status
        if status in (401, 403, 422):
            why = "wrong email or password" if status == 401 else "the form was refused"
            raise Failed(
                "auth", f"2FAuth refused the sign-in of {self.job['email']}: {why} (HTTP {status})", status
            )
        if status == 429:
            raise Failed("rate_limited", "2FAuth refused the sign-in: too many attempts (HTTP 429)", status)
        if status >= 400:
            kind = "server_error" if status >= 500 else "http_status"
            raise Failed(kind, f"POST {login} answered {status}: nobody can sign in", status)
        self.step("sign in", "POST", login, status, started)

    def list_accounts(self, out: dict[str, Any], started: float) -> None:
        self.page.wait_for_url(re.compile(r"/(accounts|start)(\?|$)"), timeout=self.left_ms())
        if urlsplit(self.page.url).path.endswith("/accounts"):
            self.page.locator(".tfa-cell.tfa-content").first.wait_for(timeout=self.left_ms())
        if self.api_limited is not None:
            raise Failed("rate_limited", "2FAuth answered 429 Too Many Requests to the web app's API", 429)
        self.step("accounts", "GET", "/api/v1/twofaccounts", 200, started)

    def read_code(self, out: dict[str, Any], started: float) -> None:
        wanted = int(self.job["account_id"])
        listed = self.accounts or []
        ids = [a.get("id") if isinstance(a, dict) else None for a in listed]
        if wanted not in ids:
            raise Failed(
                "config",
                f"account {wanted} (checks.totp.account_id) is not on {self.job['email']}'s accounts page",
            )
        account = listed[ids.index(wanted)]
        if account.get("otp_type") == "hotp":
            raise Failed("config", f"account {wanted} is HOTP: opening it would advance its counter")
        otp_path = f"/api/v1/twofaccounts/{wanted}/otp"
        before = time.time()
        with self.page.expect_response(
            lambda r: urlsplit(r.url).path == otp_path, timeout=self.left_ms()
        ) as got:
            self.account_cell(account, wanted).click(timeout=self.left_ms())
        shown = self.page.locator("#otp")
        shown.wait_for(state="visible", timeout=self.left_ms())
        text = ""
        while not re.sub(r"\s", "", text):
            self.left_ms()
            text = shown.inner_text()
        after = time.time()
        answer = got.value.json() if got.value.status == 200 else {}
        self.screenshot()  # kept by the parent only if the code turns out wrong
        out["code"] = {
            "shown": text.strip(),
            "before": before,
            "after": after,
            "account": {k: account.get(k) for k in ("id", "otp_type", "digits", "algorithm", "period")},
            "generated_at": answer.get("generated_at") if isinstance(answer, dict) else None,
        }
        self.step("code", "GET", otp_path, got.value.status, started)
        self.page.locator("#btnClose >> visible=true").first.click(timeout=self.left_ms())

    def account_cell(self, account: dict[str, Any], wanted: int) -> Any:
        """The list entry of the canary account, found by its service and account name as shown."""
        cells = self.page.locator(".tfa-cell.tfa-content")
        for name in (account.get("service"), account.get("account")):
            if isinstance(name, str) and name:
                cells = cells.filter(has_text=name)
        if cells.count() == 0:
            raise Failed(
                "config", f"account {wanted} is not shown on the accounts page (another group selected?)"
            )
        return cells.first

    def sign_out(self, out: dict[str, Any], started: float) -> None:
        self.page.locator("#btnEmailMenu").click(timeout=self.left_ms())
        with self.page.expect_response(
            lambda r: urlsplit(r.url).path == "/user/logout", timeout=self.left_ms()
        ) as answer:
            self.page.locator("#lnkSignOut").click(timeout=self.left_ms())
        self.page.wait_for_url(re.compile(r"/login(\?|$)"), timeout=self.left_ms())
        self.step("sign out", "GET", "/user/logout", answer.value.status, started)

    def screenshot(self) -> None:
        path = self.job.get("screenshot")
        if path:  # a screenshot is a help, never the verdict
            with contextlib.suppress(PlaywrightError, Failed):
                self.page.screenshot(path=path, type="png", timeout=SCREENSHOT_MS)


def emit(message: dict[str, Any]) -> None:
    text = json.dumps(message)
    if PASSWORD and PASSWORD in text:
        text = text.replace(PASSWORD, "***")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


PASSWORD = ""


def journey(job: dict[str, Any], browser: Any) -> dict[str, Any]:
    """The journey in a fresh context; the last line's content."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    walk = Journey(job, context.new_page())
    started = time.perf_counter()
    final: dict[str, Any] = {"done": True, "problems": walk.problems}
    try:
        final.update(walk.run())
    except Failed as failed:
        final["failure"] = {"kind": failed.kind, "message": failed.message, "status": failed.status}
        walk.screenshot()
    final["journey_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if final.get("failure") is None and walk.problems:
        walk.screenshot()
    return final


def main() -> int:
    global PASSWORD
    job = json.loads(sys.stdin.readline())
    PASSWORD = job["password"]
    with sync_playwright() as pw:
        args = [*ARGS, f"--js-flags=--max-old-space-size={int(job['js_heap_mb'])}"]
        try:
            browser = pw.chromium.launch(executable_path=job["chromium"], args=args, headless=True)
        except PlaywrightError as exc:
            why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            failure = {"kind": "config", "message": f"Chromium ({job['chromium']}) did not start: {why}"}
            emit({"done": True, "problems": [], "failure": failure})
            return 0
        emit(journey(job, browser))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
