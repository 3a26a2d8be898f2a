"""The web page at ``/`` in headless Chromium (Debian's chromium + chromedriver,
driven by Selenium), against real servers over the real models.

``WEB_SCREENSHOTS=docs`` saves the flow's screenshots into docs/ (the README
shows them); without it they go to the test's temporary folder."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import headless_chromium
from tests.conftest import SEEDS

STATIC = Path(__file__).resolve().parents[2] / "server" / "static"
WAIT_S = 90  # generous: the 2-core CI machine answers in a few seconds
DESKTOP, NARROW = (1280, 860), (400, 860)

HOSTILE = "<script>window.__pwned=1</script><b>bold</b> The Zebra Protocol was signed in Oslo in 1999."
HOSTILE_TITLE = "<img src=x onerror=window.__pwned=2> Zebra notes"
GUIDE_TITLE = "Port Elsworth Harbour Guide"
NEWS = "world-news.txt"  # the five seed articles in one file


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    with headless_chromium(DESKTOP, logging={"browser": "ALL"}) as drv:
        yield drv


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $WEB_SCREENSHOTS (relative to the repository), else a temporary folder."""
    folder = os.environ.get("WEB_SCREENSHOTS")
    if folder:
        path = Path(__file__).resolve().parents[2] / folder
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def window(driver) -> Iterator[object]:
    """The driver, back at the desktop size and without network emulation afterwards."""
    yield driver
    driver.execute_cdp_cmd("Network.disable", {})
    driver.set_window_size(*DESKTOP)


def guide_pdf() -> bytes:
    """A two-page PDF with a metadata title, a running header and numbered headings."""
    canvas = pytest.importorskip("reportlab.pdfgen.canvas")
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(612, 792))
    c.setTitle(GUIDE_TITLE)
    pages = [
        [("h1", "1 History"),
         ("p", "The harbour of Port Elsworth opened in 1852 and serves ferries to the|islands every day "
               "of the year."),
         ("p", "The harbour was founded by the merchant Ada Lindqvist, who paid for the|first stone pier "
               "with the profits of the herring trade."),
         ("h2", "1.1 The lighthouse"),
         ("p", "The lighthouse was rebuilt in 1907 after a storm destroyed the old wooden|tower. Its lamp "
               "can be seen from 22 nautical miles away.")],
        [("h1", "2 Ferries"),
         ("p", "Ferries to the islands leave every hour from the south quay, between six|in the morning "
               "and ten in the evening."),
         ("p", "A return ticket to Hestholm costs 14 euros; children under twelve travel|free of charge."),
         ("h1", "3 Trade"),
         ("p", "Fish and timber were the main exports of the harbour until 1960, when|container shipping "
               "moved to the new northern terminal.")],
    ]
    for number, blocks in enumerate(pages, 1):
        c.setFont("Helvetica", 9)
        c.drawString(72, 760, GUIDE_TITLE)  # running header
        c.drawCentredString(306, 40, str(number))  # page number
        y = 680.0
        for kind, text in blocks:
            size = {"h1": 16, "h2": 13}.get(kind, 11)
            c.setFont("Helvetica-Bold" if kind != "p" else "Helvetica", size)
            y -= size if kind != "p" else 0
            for line in text.split("|"):
                c.drawString(72, y, line)
                y -= 13.5
            y -= 8
        c.showPage()
    c.save()
    return buf.getvalue()


# --- helpers ------------------------------------------------------------------------

def _wait(driver, condition, timeout: float = WAIT_S):
    """``condition`` checked until it holds; a check that met an element the page
    re-rendered meanwhile (the document list after an upload) is made again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def _by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _css(root, selector: str):
    from selenium.webdriver.common.by import By

    return root.find_elements(By.CSS_SELECTOR, selector)


def _visible(element_id: str):
    def check(d):
        el = _by_id(d, element_id)
        return el if el.is_displayed() else False

    return check


def _open(driver, base_url: str) -> None:
    """Load the page and wait until it has listed the documents (or asks for a key)."""
    driver.get(base_url + "/")
    _wait(driver, lambda d: _by_id(d, "scope-text").text or _by_id(d, "auth-form").is_displayed(), 30)


def _ask(driver, question: str, with_enter: bool = True) -> None:
    from selenium.webdriver.common.keys import Keys

    box = _by_id(driver, "question")
    box.clear()
    box.send_keys(question)
    if with_enter:
        box.send_keys(Keys.ENTER)  # keyboard submit
    else:
        _by_id(driver, "ask-button").click()


def _turn(driver, n: int):
    """Turn ``n`` (1-based) once its answer is finished: answered, abstained, failed or stopped."""
    def finished(d):
        if _by_id(d, "conversation").get_attribute("aria-busy") != "false":
            return False
        turns = _css(d, f"#turn-{n}")
        return turns[0] if turns and _css(turns[0], ".turn-tools")[0].is_displayed() else False

    return _wait(driver, finished)


def _state(turn) -> str:
    shown = [name for name, sel in (("answer", ".answer"), ("abstained", ".state-abstained"),
                                    ("error", ".state-error"), ("stopped", ".state-stopped"))
             if _css(turn, sel)[0].is_displayed()]
    assert len(shown) == 1 or shown == ["answer", "stopped"], shown
    return shown[-1]


def _answered(driver, n: int):
    turn = _turn(driver, n)
    assert _state(turn) == "answer", turn.text
    return turn


def _doc_row(driver, source: str):
    rows = [r for r in _css(driver, "#doc-list .doc") if r.get_attribute("data-source") == source]
    return rows[0] if rows else None


def _drop(driver, name: str, data: bytes | str, mime: str) -> None:
    """Drop one file on the drop zone, as the browser does for a file dragged from the desktop."""
    driver.execute_script(
        "const [name, text, mime] = arguments;"
        "const dt = new DataTransfer();"
        "dt.items.add(new File([text], name, {type: mime}));"
        "const zone = document.getElementById('dropzone');"
        "for (const type of ['dragenter', 'dragover', 'drop'])"
        "  zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));",
        name, data if isinstance(data, str) else data.decode("latin-1"), mime)


def _clipboard(driver) -> str:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (e) => done('ERROR ' + e));")


def _shot(driver, folder: Path, name: str) -> Path:
    path = folder / name
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    return path


# --- the whole flow -------------------------------------------------------------------

def test_documents_and_conversation_flow(window, fresh_api: str, shots: Path, tmp_path: Path) -> None:
    """Upload a PDF (file picker) and an article (drag and drop), ask, follow up, open a
    citation in its context, restrict to one document, stop, copy, delete."""
    from selenium.webdriver.common.keys import Keys

    driver, url = window, fresh_api
    _open(driver, url)
    assert _by_id(driver, "doc-empty").is_displayed()
    assert "No documents yet" in _by_id(driver, "scope-text").text

    # upload a PDF with the file picker
    pdf = tmp_path / "harbour-guide.pdf"
    pdf.write_bytes(guide_pdf())
    _by_id(driver, "file-input").send_keys(str(pdf))
    row = _wait(driver, lambda d: _doc_row(d, "harbour-guide.pdf"))
    upload = _css(driver, "#uploads .upload")[0]
    _wait(driver, lambda d: "ok" in upload.get_attribute("class").split())
    listed = {d["source"]: d for d in httpx.get(url + "/v1/documents", timeout=30).json()["documents"]}
    chunks = listed["harbour-guide.pdf"]["chunks"]
    assert listed["harbour-guide.pdf"]["title"] == GUIDE_TITLE
    assert upload.text.endswith(f"Added: {chunks} chunks"), upload.text
    assert _css(upload, "progress") == []  # the bar is gone once it is indexed
    assert _css(row, ".doc-title")[0].text == GUIDE_TITLE
    assert _css(row, ".doc-source")[0].text == "harbour-guide.pdf"
    assert _css(row, ".doc-chunks")[0].text == f"{chunks} chunks"

    # drop a news article (over a slow link, with its progress recorded), and a file of a
    # type the server does not take
    driver.execute_script(
        "const name = arguments[0]; window.__progress = [];"
        "new MutationObserver(() => document.querySelectorAll('#uploads .upload').forEach((row) => {"
        "  const seen = window.__progress, now = row.querySelector('.upload-status').textContent;"
        "  if (row.querySelector('.upload-name').textContent === name && seen[seen.length - 1] !== now) seen.push(now);"
        "})).observe(document.getElementById('uploads'), {subtree: true, childList: true, characterData: true});",
        NEWS)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8000})
    news = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt")))
    _drop(driver, NEWS, news, "text/plain")
    _wait(driver, lambda d: _doc_row(d, NEWS))
    driver.execute_cdp_cmd("Network.disable", {})
    progress = driver.execute_script("return window.__progress")
    assert progress[0] == "Uploading\u2026" and progress[-2:] == ["Indexing\u2026", progress[-1]], progress
    assert any(re.fullmatch(r"Uploading\u2026 ([1-9]|[1-9]\d) %", p) for p in progress), progress  # part-way
    assert re.fullmatch(r"Added: \d+ chunks", progress[-1]), progress
    _drop(driver, "budget.xlsx", "PK\x03\x04 not really", "application/octet-stream")
    failed = _wait(driver, lambda d: [u for u in _css(d, "#uploads .upload.failed")])[0]
    assert "budget.xlsx" in failed.text and ".docx" in failed.text  # the 415 names the supported types
    assert _by_id(driver, "doc-summary").text.startswith("2 documents")
    assert _by_id(driver, "scope-text").text == "Answering from all 2 documents"

    # ask (Enter), then a follow-up that leans on the previous turn
    _ask(driver, "When was the lighthouse rebuilt?")
    first = _answered(driver, 1)
    assert "1907" in _css(first, ".answer")[0].text
    assert _by_id(driver, "question").get_attribute("value") == ""  # cleared for the next question
    assert driver.switch_to.active_element == _by_id(driver, "question")
    _ask(driver, "What were the main exports of the harbour?")
    assert "timber" in _css(_answered(driver, 2), ".answer")[0].text
    _ask(driver, "Until when?", with_enter=False)  # alone it is not answerable: it needs turn 2
    follow = _answered(driver, 3)
    assert "1960" in _css(follow, ".answer")[0].text
    alone = httpx.post(url + "/v1/ask", json={"question": "Until when?"}, timeout=WAIT_S).json()
    assert alone["abstained"], alone
    searched = _css(follow, ".searched-as")[0]  # how the server searched the follow-up
    assert searched.is_displayed() and searched.text.startswith("Searched as: ") and "export" in searched.text
    assert not _css(first, ".searched-as")[0].is_displayed()  # searched as asked

    # follow a citation with the keyboard: the passage in its context, the cited span marked
    marker = _css(first, "a.marker")[0]
    n = marker.get_attribute("data-marker")
    assert marker.text == f"[{n}]"
    item = _by_id(driver, f"t1-cite-{n}")
    context = _css(item, ".citation-context")[0]
    assert not context.is_displayed()  # shown on demand
    marker.send_keys(Keys.ENTER)
    mark = _wait(driver, lambda d: (_css(item, ".citation-context mark") or [False])[0])
    assert "highlight" in item.get_attribute("class").split()
    assert driver.switch_to.active_element == item  # focus follows the link
    cited = httpx.post(url + "/v1/ask", json={"question": "When was the lighthouse rebuilt?"},
                       timeout=WAIT_S).json()["citations"]
    c = {str(x["marker"]): x for x in cited}[n]
    chunk = httpx.get(f"{url}/v1/chunks/{c['chunk_id']}", timeout=30).json()
    assert mark.text == c["text"].strip() and "1907" in mark.text
    quote = _css(item, ".context-text")[0]
    assert quote.text == chunk["text"].strip() and len(quote.text) > len(mark.text)  # its context around it
    assert driver.execute_script(
        "const q = arguments[0]; return q.textContent.indexOf(q.querySelector('mark').textContent)",
        quote) == c["start"] - chunk["start"]
    head = _css(item, ".citation-head")[0]
    assert head.get_attribute("aria-expanded") == "true"
    assert _css(head, ".citation-title")[0].text == GUIDE_TITLE
    assert _css(head, ".citation-page")[0].text == f"p. {c['page']}" == "p. 1"
    assert _css(head, ".citation-section")[0].text == c["section"] == "1 History > 1.1 The lighthouse"
    assert _css(head, ".citation-source")[0].text == "harbour-guide.pdf"
    assert marker.get_attribute("aria-label") == (
        f"Citation {n}: {GUIDE_TITLE} (harbour-guide.pdf), p. 1 \u2014 1 History > 1.1 The lighthouse")
    head.click()  # closes again
    assert not context.is_displayed() and head.get_attribute("aria-expanded") == "false"
    head.send_keys(Keys.ENTER)  # and opens from the keyboard
    assert context.is_displayed()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", follow)
    _css(follow, "a.marker")[0].click()  # the follow-up's source, for the picture
    _wait(driver, lambda d: _css(follow, ".citation-context mark"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", follow)
    _shot(driver, shots, "web-conversation.png")

    # copy the first answer: the answer and its sources
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    copy = _css(first, "button.copy")[0]
    copy.click()
    _wait(driver, lambda d: copy.text == "Copied", 10)
    copied = _clipboard(driver)
    assert copied.startswith(_css(first, ".answer")[0].text), copied
    assert f"[{n}] {GUIDE_TITLE} (harbour-guide.pdf), p. 1" in copied and "1907" in copied.split("Sources:")[1]

    # only the news article: the harbour question has no answer there
    _css(driver, "#new-chat")[0].click()
    assert _css(driver, ".turn") == [] and _by_id(driver, "empty-state").is_displayed()
    news_row = _doc_row(driver, NEWS)
    listed = {d["source"]: d for d in httpx.get(url + "/v1/documents", timeout=30).json()["documents"]}
    news_title = listed[NEWS]["title"]
    _css(news_row, "label")[0].click()
    assert _css(news_row, ".doc-use")[0].is_selected()
    assert _by_id(driver, "scope-text").text == f"Answering only from {news_title}"
    _ask(driver, "When was the lighthouse rebuilt?")
    scoped = _turn(driver, 1)
    assert _css(scoped, ".turn-scope")[0].text == f"Only from: {news_title}"
    assert _state(scoped) == "abstained", scoped.text
    assert not _css(scoped, ".citations")[0].is_displayed()
    _by_id(driver, "scope-clear").click()
    assert not _css(news_row, ".doc-use")[0].is_selected()
    assert _by_id(driver, "scope-text").text == "Answering from all 2 documents"

    # stop a running answer with Escape (the network held back, so it is still running)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 4000, "downloadThroughput": -1, "uploadThroughput": -1})
    _ask(driver, "When do the ferries leave?")
    stop = _wait(driver, _visible("stop-button"), 10)
    assert _by_id(driver, "ask-button").get_attribute("disabled")
    assert _by_id(driver, "conversation").get_attribute("aria-busy") == "true"
    _by_id(driver, "question").send_keys(Keys.ESCAPE)
    stopped = _turn(driver, 2)
    assert _state(stopped) == "stopped"
    assert not stop.is_displayed() and not _by_id(driver, "ask-button").get_attribute("disabled")
    assert not _css(stopped, "button.copy")[0].is_displayed()
    driver.execute_cdp_cmd("Network.disable", {})
    _css(stopped, "button.retry")[0].click()  # asked again, to the end
    assert "every hour" in _css(_answered(driver, 2), ".answer")[0].text

    # narrow: the conversation, then the documents panel behind its button
    driver.set_window_size(*NARROW)
    toggle = _by_id(driver, "docs-toggle")
    assert toggle.text == "Documents (2)"
    assert toggle.get_attribute("aria-expanded") == "true"  # the uploads opened it
    toggle.click()
    assert not _by_id(driver, "documents").is_displayed() and toggle.get_attribute("aria-expanded") == "false"
    again = _turn(driver, 2)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", again)
    _css(again, "a.marker")[0].click()
    _wait(driver, lambda d: _css(again, ".citation-context mark"))
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    # nothing wider than the screen: no sideways scrolling
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    _shot(driver, shots, "web-narrow-conversation.png")
    toggle.click()
    assert _by_id(driver, "documents").is_displayed() and toggle.get_attribute("aria-expanded") == "true"
    driver.execute_script("window.scrollTo(0, 0)")
    _shot(driver, shots, "web-narrow-documents.png")
    driver.set_window_size(*DESKTOP)

    # delete the PDF: asked to confirm, Escape cancels, then gone from the page and the index
    row = _doc_row(driver, "harbour-guide.pdf")
    delete = _css(row, ".doc-delete")[0]
    assert delete.get_attribute("aria-label") == f"Delete {GUIDE_TITLE}"
    delete.click()
    yes = _css(row, ".doc-confirm-yes")[0]
    assert yes.is_displayed() and driver.switch_to.active_element == yes
    _shot(driver, shots, "web-documents.png")
    yes.send_keys(Keys.ESCAPE)
    assert not yes.is_displayed() and driver.switch_to.active_element == delete
    delete.click()
    _css(row, ".doc-confirm-yes")[0].click()
    _wait(driver, lambda d: _doc_row(d, "harbour-guide.pdf") is None)
    assert f"Deleted {GUIDE_TITLE} ({chunks} chunks)" in _by_id(driver, "doc-status").text
    assert [d["source"] for d in httpx.get(url + "/v1/documents", timeout=30).json()["documents"]] == [NEWS]
    assert _by_id(driver, "scope-text").text == "Answering from all 1 document"

    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
              and "/v1/documents" not in e.get("message", "")]  # the 415 above is logged as a failed request
    assert errors == [], errors
    # everything the page loaded came from this server
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(url + "/") for u in urls), urls


# --- states and safety ------------------------------------------------------------------

def test_answer_with_clickable_citation(driver, api_url: str) -> None:
    _open(driver, api_url)
    _ask(driver, "Who is Meta's president of global affairs?")
    turn = _answered(driver, 1)
    answer = _css(turn, ".answer")[0]
    assert "Clegg" in answer.text
    assert answer.get_attribute("aria-live") is None  # the live region is the whole conversation
    log = _by_id(driver, "conversation")
    assert (log.get_attribute("role"), log.get_attribute("aria-live")) == ("log", "polite")

    markers = _css(answer, "a.marker")
    assert markers, f"no citation links in {answer.text!r}"
    n = markers[0].get_attribute("data-marker")
    body = httpx.post(api_url + "/v1/ask", json={"question": "Who is Meta's president of global affairs?"},
                      timeout=WAIT_S).json()
    cited = {str(c["marker"]): c for c in body["citations"]}[n]
    markers[0].click()
    item = _by_id(driver, f"t1-cite-{n}")
    mark = _wait(driver, lambda d: (_css(item, ".citation-context mark") or [False])[0])
    assert mark.text == cited["text"].strip() and "Clegg" in mark.text
    # a plain-text source: its title (the file name), no page, no section; offsets only as the tooltip
    assert (cited["section"], cited["page"], cited["title"]) == ("", None, cited["source"])
    head = _css(item, ".citation-head")[0]
    assert _css(head, ".citation-title")[0].text == cited["source"]
    assert _css(head, ".citation-page, .citation-section, .citation-source") == []
    assert markers[0].get_attribute("aria-label") == f"Citation {n}: {cited['source']}"
    assert "chars" not in head.text and str(cited["start"]) not in head.text
    assert f"{cited['start']}\u2013{cited['end']}" in head.get_attribute("title")
    assert _by_id(driver, "scope-text").text == "Answering from all 5 documents"
    assert re.fullmatch(r"\d+\.\d s \u00b7 .+\.gguf", _css(turn, ".timing")[0].text)


def test_the_page_works_from_the_keyboard(driver, api_url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _open(driver, api_url)
    unnamed = driver.execute_script(
        "return Array.from(document.querySelectorAll('input, textarea, button')).filter((e) => {"
        "  const labels = e.labels ? Array.from(e.labels).map((l) => l.textContent).join(' ') : '';"
        "  const name = e.getAttribute('aria-label') || labels || (e.tagName === 'BUTTON' ? e.textContent : '');"
        "  return !name.trim();"
        "}).map((e) => e.id || e.className);")
    assert unnamed == []

    def tab(back: bool = False):
        keys = ActionChains(driver)
        if back:
            keys.key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT)
        else:
            keys.send_keys(Keys.TAB)
        keys.perform()
        active = driver.switch_to.active_element
        return active.get_attribute("id") or active.get_attribute("class")

    order = [tab() for _ in range(16)]
    docs = [name for name in order if name.startswith("doc-use-")]
    assert order[:3] == ["skip", "new-chat", "file-input"], order
    assert len(docs) == 5 and order.count("doc-delete quiet") == 5, order
    assert order.index("question") > order.index(docs[-1]) and order[order.index("question") + 1] == "ask-button"

    while driver.switch_to.active_element.get_attribute("id") != "question":
        tab()
    driver.switch_to.active_element.send_keys("Who is Meta's president of global affairs?", Keys.ENTER)
    turn = _answered(driver, 1)
    while "marker" not in (name := tab(back=True)).split():  # back from the question to the [n] link
        assert name != "new-chat", "no citation link on the way back"
    n = driver.switch_to.active_element.get_attribute("data-marker")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    item = _by_id(driver, f"t1-cite-{n}")
    _wait(driver, lambda d: _css(item, ".citation-context mark"))
    assert driver.switch_to.active_element == item
    assert tab() == "citation-head"  # the source's own button is next: Enter folds it
    head = driver.switch_to.active_element
    assert head == _css(item, ".citation-head")[0] and head.get_attribute("aria-expanded") == "true"
    head.send_keys(Keys.ENTER)
    assert head.get_attribute("aria-expanded") == "false" and not _css(item, ".citation-context")[0].is_displayed()
    while (name := tab(back=True)) != "copy quiet":  # and the answer's copy button is before the sources
        assert "marker" in name.split() or name == "citation-head", name
    assert _css(turn, "button.copy")[0] == driver.switch_to.active_element


def test_a_source_shows_its_title_page_and_section(driver, api_url: str) -> None:
    """The page's own rendering of one source, given a citation with a title, a page
    and a section (the seeds are plain text, which have none)."""
    from rag.types import Answer, Citation

    located = Citation(3, "manuals/usrguide.pdf", "c1", 837, 1076, "Optional arguments start with -.", 0.9,
                       section="A > B", page=3, title="User's Guide")
    cited = Answer("q?", "Use -v [3].", False, [located]).to_dict()["citations"][0]
    _open(driver, api_url)
    head = driver.execute_script(
        "const head = window.ragPage.citationHead(arguments[0]);"
        "document.getElementById('empty-state').appendChild(head);"
        "return head;", cited)
    assert _css(head, ".citation-title")[0].text == "User's Guide"
    assert _css(head, ".citation-page")[0].text == "p. 3"
    assert _css(head, ".citation-section")[0].text == "A > B"
    assert _css(head, ".citation-source")[0].text == "manuals/usrguide.pdf"
    assert "chars" not in head.text and "837" not in head.text
    assert head.get_attribute("title") == "characters 837\u20131076 of manuals/usrguide.pdf"
    label = driver.execute_script("return window.ragPage.sourceLabel(arguments[0])", cited)
    assert label == "User's Guide (manuals/usrguide.pdf), p. 3 \u2014 A > B"


PASSAGE = "Optional arguments start with -."


@pytest.mark.parametrize(("chunk", "parts"), [
    # the span at its offsets inside the chunk (the citation is at 837, the chunk at 800)
    ({"start": 800, "text": "x" * 30 + "Intro. " + PASSAGE + " More."}, ["x" * 30 + "Intro. ", PASSAGE, " More."]),
    # a passage running past the end of its chunk is shown whole
    ({"start": 830, "text": "Before Optional arguments"}, ["Before ", PASSAGE, ""]),
    # offsets that disagree (the document changed): found by its text, else none
    ({"start": 0, "text": PASSAGE + " Rest."}, ["", PASSAGE, " Rest."]),
    ({"start": 800, "text": "Something else entirely."}, None),
])
def test_the_cited_span_inside_its_chunk(driver, api_url: str, chunk: dict, parts: list | None) -> None:
    citation = {"marker": 1, "source": "a.txt", "chunk_id": "c", "start": 837, "end": 837 + len(PASSAGE),
                "text": PASSAGE, "section": "", "page": None, "title": "a.txt"}
    _open(driver, api_url)
    got = driver.execute_script("return window.ragPage.contextParts(arguments[0], arguments[1])",
                                citation, chunk)
    assert got == parts


def test_abstention_state(driver, api_url: str) -> None:
    _open(driver, api_url)
    _ask(driver, "When will Meta release Llama 5?", with_enter=False)
    turn = _turn(driver, 1)
    assert _state(turn) == "abstained"
    assert "Not in the documents" in _css(turn, ".state-abstained")[0].text
    assert not _css(turn, ".citations")[0].is_displayed()
    assert _css(turn, "a.marker") == []
    assert not _css(turn, "button.copy")[0].is_displayed()


def test_error_state_shows_server_message(driver, fresh_api: str) -> None:
    expected = httpx.post(fresh_api + "/v1/ask", json={"question": "anything?"}, timeout=WAIT_S)
    assert expected.status_code == 409
    message = expected.json()["error"]["message"]

    _open(driver, fresh_api)
    _ask(driver, "What is in the documents?")
    turn = _turn(driver, 1)
    assert _state(turn) == "error"
    error = _css(turn, ".state-error")[0]
    assert message in error.text
    assert error.get_attribute("role") == "alert"
    assert _css(turn, "button.retry")[0].is_displayed()
    assert not _by_id(driver, "ask-button").get_attribute("disabled")


def test_document_html_is_shown_as_text(driver, fresh_api: str) -> None:
    up = httpx.post(fresh_api + "/v1/documents", json={"source": "hostile.txt", "text": HOSTILE}, timeout=WAIT_S)
    assert up.status_code == 200, up.text
    page = f"<html><head><title>{HOSTILE_TITLE.replace('<', '&lt;')}</title></head><body><p>Nothing.</p></body></html>"
    up = httpx.post(fresh_api + "/v1/documents", json={"source": "notes.html", "text": page}, timeout=WAIT_S)
    assert up.status_code == 200, up.text

    _open(driver, fresh_api)
    assert _css(_doc_row(driver, "notes.html"), ".doc-title")[0].text == HOSTILE_TITLE  # shown literally
    _ask(driver, "Where was the Zebra Protocol signed?")
    turn = _answered(driver, 1)
    markers = _css(turn, "a.marker")
    assert markers
    markers[0].click()
    n = markers[0].get_attribute("data-marker")
    item = _by_id(driver, f"t1-cite-{n}")
    context = _wait(driver, lambda d: (_css(item, ".context-text") or [False])[0])
    assert "Zebra Protocol" in context.text
    assert "<script>window.__pwned=1</script>" in context.text  # shown literally
    assert "<b>bold</b>" in context.text
    assert "hostile.txt" in item.text
    assert driver.execute_script("return window.__pwned") is None
    for area in ("conversation", "documents"):
        assert _css(_by_id(driver, area), "b, script, img, iframe") == []


def test_api_key_prompt(driver, tmp_path: Path, embedder) -> None:
    """With RAG_API_KEY set the page asks for the key, keeps it for the tab and sends it."""
    from selenium.webdriver.common.keys import Keys

    from rag.engine import Rag
    from rag.settings import Settings
    from server.app import create_app
    from tests.serving import LiveServer

    settings = Settings(data_dir=tmp_path / "data", api_key="k-secret")
    with LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder))) as server:
        driver.get(server.url + "/")
        driver.execute_script("sessionStorage.clear()")
        _open(driver, server.url)
        key_box = _wait(driver, _visible("api-key"))  # listing the documents needs the key
        assert "API key" in _by_id(driver, "auth-form").text
        assert driver.switch_to.active_element == key_box
        key_box.send_keys("k-secret", Keys.ENTER)
        _wait(driver, lambda d: "No documents yet" in _by_id(d, "scope-text").text)
        assert not _by_id(driver, "auth-form").is_displayed()
        assert driver.execute_script("return sessionStorage.getItem('rag-api-key')") == "k-secret"
        # the key goes with every request: the empty index answers 409, not 401
        _ask(driver, "What is in the documents?")
        turn = _turn(driver, 1)
        assert "index is empty" in _css(turn, ".state-error")[0].text
        # a wrong key is asked for again, and the question is asked again with the new one
        driver.execute_script("sessionStorage.setItem('rag-api-key', 'wrong')")
        _ask(driver, "What is in the documents now?")
        key_box = _wait(driver, _visible("api-key"))
        assert "wrong API key" in _by_id(driver, "auth-message").text
        key_box.send_keys("k-secret", Keys.ENTER)
        _wait(driver, lambda d: "index is empty" in _css(_turn(d, 2), ".state-error")[0].text)


def test_static_files_fetch_nothing_from_outside() -> None:
    names = sorted(p.name for p in STATIC.iterdir())
    assert names == ["api.js", "app.js", "conversation.js", "documents.js", "index.html", "render.js", "style.css"]
    for name in names:
        text = (STATIC / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://", text, re.I), f"{name} has an absolute URL"
        assert not re.search(r"""(src|href|action)\s*=\s*["']?//""", text, re.I), f"{name} has a protocol-relative URL"
        assert "@import" not in text and "innerHTML" not in text and "outerHTML" not in text
        assert "insertAdjacentHTML" not in text and "document.write" not in text and "eval(" not in text
        assert not re.search(r"\bimport\s*\(", text), f"{name} has a dynamic import"
        for spec in re.findall(r"""^import\b[^;]*?["']([^"']+)["'];""", text, re.M | re.S):  # this folder only
            assert re.fullmatch(r"\./[a-z]+\.js", spec), f"{name} imports {spec}"
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
    assert set(refs) == {"/static/style.css", "/static/app.js", "data:,", "#question"}, refs


def test_the_page_is_sent_with_its_security_headers(api_url: str) -> None:
    for path in ("/", "/static/app.js", "/static/conversation.js", "/static/style.css"):
        r = httpx.get(api_url + path, timeout=30)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-cache"  # checked again, so an upgrade is picked up
    assert httpx.get(api_url + "/static/app.js", timeout=30).headers["content-type"].startswith("text/javascript")


def test_a_word_file_from_the_file_picker_is_answered_with_its_section(window, fresh_api: str,
                                                                         tmp_path: Path) -> None:
    """A .docx chosen with the file picker is indexed under its own title; a question
    about it is answered with a passage from it, shown with its heading path; a
    damaged .docx fails with the server's reason."""
    from tests.documents import docx_bytes

    driver, url = window, fresh_api
    _open(driver, url)
    assert ".docx" in _by_id(driver, "file-input").get_attribute("accept").split(",")
    word = tmp_path / "minutes.docx"
    word.write_bytes(docx_bytes())
    _by_id(driver, "file-input").send_keys(str(word))
    row = _wait(driver, lambda d: _doc_row(d, "minutes.docx"))
    assert _css(row, ".doc-title")[0].text == "Harbour committee minutes"
    broken = tmp_path / "broken.docx"
    broken.write_bytes(docx_bytes()[:2000])
    _by_id(driver, "file-input").send_keys(str(broken))
    failed = _wait(driver, lambda d: [u for u in _css(d, "#uploads .upload.failed")])[0]
    assert "broken.docx" in failed.text and "damaged" in failed.text, failed.text
    _ask(driver, "Who will order the lamps from the supplier in Bergen?")
    turn = _answered(driver, 1)
    assert "Okafor" in _css(turn, ".answer")[0].text
    head = _css(turn, ".citation-head")[0]
    assert _css(head, ".citation-title")[0].text == "Harbour committee minutes"
    assert _css(head, ".citation-section")[0].text == "Decisions"
    assert _css(head, ".citation-page") == []  # a Word file has no fixed pages
