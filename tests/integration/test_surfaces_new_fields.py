"""What the experts answer reaches every surface a person or a program reads, each checked as its user meets it
against a real server: the dashboard's task page (its HTML, and in Debian's chromium at desktop and phone widths),
the OpenAI door's message (the official ``openai`` client, plain and streamed), REST ``GET /api/tasks/{id}`` and
``vy-nexus run --json``. The fields: the code expert's ``findings``, writing's ``unsupported`` words and
``extractive`` summary, research's cited passages, the data expert's rows over several group columns."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from fakes.llm import ScriptedBackend
from live_api import LiveApi, api_settings, live_api
from vy_nexus.config import Settings
from vy_nexus.experts.builtin.code import REVIEW_SYSTEM
from vy_nexus.experts.builtin.research import ANSWER_SYSTEM
from vy_nexus.experts.builtin.writing import SYSTEMS
from vy_nexus.interfaces.api.openai_format import answer_text, stream_ending
from vy_nexus.interfaces.cli import app
from vy_nexus.interfaces.dashboard.formats import marked
from vy_nexus.reasoning.llm import Message
from vy_nexus.system import VyNexus
from vy_nexus.tls import httpx_context, openai_context

CODE = "import os\n\n\ndef mean(values):\n    return sum(values) / len(values)\n\n\nprint(mean([]))\n"
"""One warning (the unused import, line 1) and one bug (``mean([])`` divides by zero, line 5)."""
NOTES = (
    "The city council met on 3 March to discuss the new cycle lanes on Harbour Street. Councillor Reyes said the "
    "lanes had cut car traffic by a fifth since they opened in January. The council asked the transport office to "
    "propose loading bays before the end of April. A public consultation will run for six weeks, and the council "
    "will vote on the final plan in June."
)
SALES = "region,product,units\nnorth,widget,12\nnorth,gadget,3\nsouth,widget,7\nsouth,gadget,9\nwest,widget,15\n"
PAID = '[{"region": "north", "paid": true, "amount": 5}, {"region": "south", "paid": false, "amount": 7}]'
REVIEW = "Line 5 divides by len(values), so an empty <list> raises ZeroDivisionError: return None for it."
SUMMARY = "The council meets monthly and asked for loading bays; the Council votes in June."
ANSWER = "The council asked the transport office to propose loading bays before the end of April, monthly."
"""What the scripted model says to a review, a summary and a research question; ``monthly`` is in no source."""


def reply(messages: Sequence[Message]) -> str:
    system = messages[0].content if messages and messages[0].role == "system" else ""
    answers = {REVIEW_SYSTEM: REVIEW, SYSTEMS["summarise"]: SUMMARY, ANSWER_SYSTEM: ANSWER}
    return answers.get(system, "A plain answer.")


def scripted_system(settings: Settings) -> VyNexus:
    return VyNexus(settings, llm=ScriptedBackend(reply, delay=0.001), load_plugins=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    home = tmp_path_factory.mktemp("surfaces") / "home"
    (home / "documents").mkdir(parents=True)
    (home / "documents" / "council.md").write_text(NOTES, encoding="utf-8")
    with live_api(api_settings(home), scripted_system) as server:
        yield server


@pytest.fixture(scope="module")
def tasks(api: LiveApi) -> dict[str, dict[str, Any]]:
    """One finished task record (``GET /api/tasks/{id}``, read as strict JSON) per kind of answer."""
    bodies = {
        "check": {"description": "check this code", "input": CODE, "filename": "mean.py"},
        "summary": {"description": "summarise this", "input": NOTES, "filename": "notes.txt", "experts": ["writing"]},
        "data": {"description": "total units by region and product", "input": SALES, "filename": "sales.csv"},
        "research": {"description": "what did the council ask the transport office to do?", "experts": ["research"]},
        "paid": {"description": "total amount by paid and region", "input": PAID, "filename": "paid.json"},
        "describe": {"description": "describe this data", "input": SALES, "filename": "sales.csv"},
        "pasted": {"description": f"check this code\n```python\n{CODE}```"},
    }
    with api.client() as client:
        ids = {kind: client.post("/api/tasks", json=body).json()["id"] for kind, body in bodies.items()}
        return {kind: finished(client, task_id) for kind, task_id in ids.items()}


def finished(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reply = client.get(f"/api/tasks/{task_id}")
        record: dict[str, Any] = strict_json(reply.text)
        if record["state"] not in ("queued", "running"):
            assert record["state"] == "succeeded", record
            return record
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def strict_json(text: str) -> Any:
    """JSON as any strict parser reads it: ``NaN``/``Infinity`` are refused."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# -- the OpenAI door ------------------------------------------------------------------------------------------------


@pytest.fixture
def chat(api: LiveApi) -> Iterator[openai.OpenAI]:
    http = openai.DefaultHttpxClient(verify=openai_context())
    with openai.OpenAI(base_url=f"{api.url}/v1", api_key=api.key, max_retries=0, http_client=http) as client:
        yield client


def ask(chat: openai.OpenAI, text: str, model: str = "auto") -> str:
    reply = chat.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


def ask_streamed(chat: openai.OpenAI, text: str, model: str = "auto") -> tuple[str, list[str]]:
    """The text a streaming client puts together, and the finish reasons it saw."""
    stream = chat.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], stream=True)
    chunks = [chunk for chunk in stream if chunk.choices]
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices[0].finish_reason]
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks), finishes


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The tables a Markdown renderer (CommonMark with GitHub's tables) draws from ``text``: the text of each cell
    as shown, row by row, header first."""
    tables: list[list[list[str]]] = []
    in_cell = False
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type in ("th_open", "td_open", "th_close", "td_close"):
            in_cell = token.type.endswith("_open")
        elif token.type == "inline" and in_cell:
            shown = (child.content for child in token.children or [] if child.type in SHOWN_TEXT)
            tables[-1][-1].append("".join(shown))
    return tables


SHOWN_TEXT = ("text", "text_special", "code_inline")


def fenced(code: str, request: str) -> str:
    return f"{request}\n\n```python\n{code}```\n"


def test_a_code_check_in_chat_lists_its_findings_as_a_markdown_table(chat: openai.OpenAI) -> None:
    # Before: the summary line, then the analysis and the findings as a ```json block.
    content = ask(chat, fenced(CODE, "check this code"))
    assert content.startswith("Valid Python: 8 lines, 1 function, 0 classes; 1 likely bug and 1 warning")
    assert "```json" not in content and '"severity"' not in content
    [findings] = markdown_tables(content)
    assert findings[0] == ["line", "severity", "message"]
    assert [row[:2] for row in findings[1:]] == [["1", "warning"], ["5", "bug"]]
    assert "mean([]) on line 8" in findings[2][2]
    assert "| 5 | **bug** |" in content  # a bug stands out from a warning


def test_a_code_review_in_chat_gives_the_review_then_the_findings(chat: openai.OpenAI) -> None:
    content = ask(chat, fenced(CODE, "review this code for bugs"), model="code")
    assert content.startswith(REVIEW)
    assert "1 likely bug and 1 warning (see findings)" in content and "```json" not in content
    [findings] = markdown_tables(content)
    assert [row[1] for row in findings[1:]] == ["warning", "bug"]


def test_a_summary_in_chat_warns_about_the_words_its_source_lacks(
    chat: openai.OpenAI, tasks: dict[str, dict[str, Any]]
) -> None:
    # Before: the statistics line, then the summary itself inside a ```json block with the unsupported words.
    content = ask(chat, f"summarise this: {NOTES}", model="writing")
    assert content.startswith(SUMMARY)
    assert "```json" not in content
    warning = next(line for line in content.splitlines() if line.startswith("> **Not in the source:**"))
    assert "`monthly`" in warning and "before relying on it." in warning
    assert content.index(SUMMARY) < content.index(warning) < content.index("**Extractive summary**")
    assert tasks["summary"]["output"]["extractive"] in content


def test_a_data_question_in_chat_answers_with_a_table_of_every_group_column(
    chat: openai.OpenAI, tasks: dict[str, dict[str, Any]]
) -> None:
    content = ask(chat, f"total units by region and product:\n{SALES}")
    assert content.startswith("5 rows, 3 columns") and "```json" not in content
    [table] = markdown_tables(content)
    expected = [[row["region"], row["product"], str(row["sum_units"])] for row in tasks["data"]["output"]["result"]]
    assert table == [["region", "product", "sum_units"], *expected]
    assert "| --- | --- | ---: |" in content  # the numbers right-aligned


def test_a_data_answer_in_chat_prints_values_as_json_spells_them(chat: openai.OpenAI) -> None:
    content = ask(chat, f"total amount by paid and region:\n{PAID}")
    assert markdown_tables(content) == [
        [["paid", "region", "sum_amount"], ["false", "south", "7"], ["true", "north", "5"]]
    ]
    described = ask(chat, f"describe this data:\n{SALES}")
    assert described.startswith("A plain answer.")  # the model's explanation, asked for, then the exact part
    [columns] = markdown_tables(described)
    assert columns[0][:4] == ["", "count", "missing", "type"]
    assert columns[1][:4] == ["region", "5", "0", "categorical"] and "north:2, south:2, west:1" in columns[1]


def test_a_research_answer_in_chat_names_the_passages_it_cites_and_what_they_lack(chat: openai.OpenAI) -> None:
    content = ask(chat, "what did the council ask the transport office to do?", model="research")
    assert content.startswith(ANSWER.removesuffix("."))  # the expert cites the passage its words come from
    assert "> **Not in the source:** 1 of" in content and "`monthly`" in content
    sources = content[content.index("**Sources**") :].splitlines()
    assert sources[2].startswith("- [1] council.md: The city council met on 3 March")


def test_an_answer_without_tokens_streams_the_same_markdown_as_a_plain_one(chat: openai.OpenAI) -> None:
    for question in (fenced(CODE, "check this code"), f"total units by region and product:\n{SALES}"):
        streamed, finishes = ask_streamed(chat, question)
        assert streamed == ask(chat, question) and finishes == ["stop"]
        assert len(markdown_tables(streamed)) == 1


def test_a_streamed_review_or_summary_sends_its_answer_once_then_what_checks_it(chat: openai.OpenAI) -> None:
    # Before: the tokens, then the whole message again (the review a second time inside a ```json block).
    for question, model in ((fenced(CODE, "review this code"), "code"), (f"summarise this: {NOTES}", "writing")):
        streamed, finishes = ask_streamed(chat, question, model)
        assert streamed == ask(chat, question, model) and finishes == ["stop"]


def test_a_stream_ends_with_what_follows_the_answer_it_streamed() -> None:
    output = {"answer": "Bays by April [1].", "unsupported": ["monthly"], "checked_terms": 4}
    whole = answer_text(output)
    assert whole.startswith("Bays by April [1].\n\n> **Not in the source:** 1 of 4 terms")
    after = whole.removeprefix("Bays by April [1].")
    assert stream_ending(output, "Bays by April [1].") == after
    assert stream_ending(output, "Bays by April.") == after  # the citation the expert added is not repeated
    assert stream_ending(output, "") == whole
    assert stream_ending(output, "Something else entirely") == "\n\n" + whole
    assert stream_ending({"answer": "Just this."}, "Just this.") == ""


def test_markdown_in_a_field_is_shown_as_text_not_as_markup() -> None:
    content = answer_text({"summary": "count(*) | 2", "result": [{"name": "*bold* <b>", "n": 1}]})
    assert content.startswith("count(\\*) \\| 2")
    [table] = markdown_tables(content)
    assert table == [["name", "n"], ["*bold* <b>", "1"]]


# -- REST and vy-nexus run --json -----------------------------------------------------------------------------------


def test_rest_gives_every_new_field_as_json(tasks: dict[str, dict[str, Any]]) -> None:
    findings = tasks["check"]["output"]["findings"]
    assert [(item["line"], item["severity"]) for item in findings] == [(1, "warning"), (5, "bug")]
    summary = tasks["summary"]["output"]
    assert "monthly" in summary["unsupported"] and isinstance(summary["checked_terms"], int)
    assert summary["extractive"].startswith("The city council met on 3 March")
    assert tasks["data"]["output"]["result"][0] == {"region": "north", "product": "gadget", "sum_units": 3}
    research = tasks["research"]["output"]
    assert research["attributed"] == [1] and research["citations"][0]["source"] == "council.md"


def test_run_json_gives_every_new_field_as_strict_json(home: Path, tmp_path: Path) -> None:
    (tmp_path / "mean.py").write_text(CODE, encoding="utf-8")
    (tmp_path / "sales.csv").write_text(SALES, encoding="utf-8")
    (tmp_path / "notes.txt").write_text(NOTES, encoding="utf-8")
    runs = {
        "check": ("check this code", "mean.py"),
        "data": ("total units by region and product", "sales.csv"),
        "summary": ("summarise this", "notes.txt"),
    }
    outputs = {}
    for kind, (request, name) in runs.items():
        args = ["--home", str(home), "run", request, "--input", str(tmp_path / name), "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs[kind] = strict_json(result.stdout)["output"]
    assert [item["severity"] for item in outputs["check"]["findings"]] == ["warning", "bug"]
    assert list(outputs["data"]["result"][0]) == ["region", "product", "sum_units"]
    assert isinstance(outputs["summary"]["unsupported"], list) and outputs["summary"]["extractive"]


# -- the dashboard's task page --------------------------------------------------------------------------------------


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Element | str] = []

    @property
    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text for child in self.children)

    def find_all(self, tag: str) -> list[Element]:
        found = []
        for child in self.children:
            if isinstance(child, Element):
                found.extend([child] if child.tag == tag else [])
                found.extend(child.find_all(tag))
        return found

    def by_id(self, wanted: str) -> Element | None:
        if self.attrs.get("id") == wanted:
            return self
        return next((hit for c in self.children if isinstance(c, Element) and (hit := c.by_id(wanted))), None)

    def elements(self) -> list[Element]:
        return [child for child in self.children if isinstance(child, Element)]


class Page(HTMLParser):
    """The page as a tree of elements (enough of HTML for the dashboard's own templates)."""

    VOID = frozenset({"meta", "link", "input", "br", "img", "hr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        while len(self.stack) > 1 and self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)

    def get(self, wanted: str) -> Element:
        found = self.root.by_id(wanted)
        assert found is not None, f"no element #{wanted} on the page"
        return found


@pytest.fixture(scope="module")
def browser(api: LiveApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, verify=httpx_context(), timeout=10.0) as client:
        assert client.post("/dashboard/login", data={"key": api.key}).status_code == 303
        yield client


def task_page(browser: httpx.Client, record: dict[str, Any]) -> Page:
    reply = browser.get(f"/dashboard/tasks/{record['id']}")
    assert reply.status_code == 200
    return Page(reply.text)


def cells(row: Element) -> list[str]:
    return [cell.text.strip() for cell in row.elements() if cell.tag in ("td", "th")]


def test_the_task_page_shows_findings_as_a_table_with_bugs_marked(
    browser: httpx.Client, tasks: dict[str, dict[str, Any]]
) -> None:
    # Before: the findings were a JSON string under "All fields", folded away.
    page = task_page(browser, tasks["check"])
    table = page.get("findings")
    rows = table.find_all("tr")
    assert cells(rows[0]) == ["line", "severity", "message"]
    assert [(cells(row)[:2], row.attrs.get("class")) for row in rows[1:]] == [
        (["1", "warning"], "severity-warning"),
        (["5", "bug"], "severity-bug"),
    ]
    assert "ZeroDivisionError" in cells(rows[2])[2]
    assert "1 likely bug and 1 warning (see findings)" in page.get("output").text


def test_the_task_page_marks_unsupported_words_where_the_answer_says_them(
    browser: httpx.Client, tasks: dict[str, dict[str, Any]]
) -> None:
    # Before: the page's output was the statistics line; the summary, its unsupported words and the extractive
    # summary were strings inside the folded "All fields" JSON.
    page = task_page(browser, tasks["summary"])
    output = page.get("output")
    assert output.text == SUMMARY
    marks = [mark.text for mark in output.find_all("mark")]
    assert "monthly" in marks and set(marks) <= set(tasks["summary"]["output"]["unsupported"])
    siblings = [element.attrs.get("id") for element in page_main(page)]
    assert siblings.index("unsupported") == siblings.index("output") + 1  # the warning right under the answer
    warning = page.get("unsupported").text
    assert "Not in the source:" in warning and "monthly" in warning
    assert page.get("output-summary").text.startswith("summarise: ")
    assert page.get("extractive").text == tasks["summary"]["output"]["extractive"]


def page_main(page: Page) -> list[Element]:
    return page.root.find_all("main")[0].elements()


def test_the_task_page_shows_every_group_column_with_numbers_right_aligned(
    browser: httpx.Client, tasks: dict[str, dict[str, Any]]
) -> None:
    rows = task_page(browser, tasks["data"]).get("result").find_all("tr")
    assert cells(rows[0]) == ["region", "product", "sum_units"]
    assert [cells(row) for row in rows[1:]] == [
        [row["region"], row["product"], str(row["sum_units"])] for row in tasks["data"]["output"]["result"]
    ]
    assert [cell.attrs.get("class") for cell in rows[1].elements()] == [None, None, "num"]


def test_the_task_page_prints_values_as_json_not_as_python(
    browser: httpx.Client, tasks: dict[str, dict[str, Any]]
) -> None:
    # Before: a yes/no group printed as Python's "True" and "False".
    rows = task_page(browser, tasks["paid"]).get("result").find_all("tr")
    assert [cells(row) for row in rows] == [
        ["paid", "region", "sum_amount"],
        ["false", "south", "7"],
        ["true", "north", "5"],
    ]


def test_the_task_page_shows_column_statistics_as_a_table_when_there_are_no_rows(
    browser: httpx.Client, tasks: dict[str, dict[str, Any]]
) -> None:
    page = task_page(browser, tasks["describe"])
    assert page.get("output").text == "A plain answer."
    rows = page.get("columns").find_all("tr")
    assert cells(rows[0])[:4] == ["column", "count", "missing", "type"]
    assert cells(rows[1])[:4] == ["region", "5", "0", "categorical"] and "north:2, south:2, west:1" in cells(rows[1])


def test_the_task_page_lists_the_passages_a_research_answer_cites(
    browser: httpx.Client, tasks: dict[str, dict[str, Any]]
) -> None:
    page = task_page(browser, tasks["research"])
    [source] = page.get("sources").find_all("li")
    assert source.attrs == {"value": "1", "class": "cited"}
    assert source.find_all("b")[0].text == "council.md" and NOTES[:40] in source.text
    assert [mark.text for mark in page.get("output").find_all("mark")] == ["monthly"]


def test_what_a_model_writes_is_text_on_the_page(browser: httpx.Client, api: LiveApi) -> None:
    with api.client() as client:
        body = {"description": "review this code", "input": CODE, "filename": "mean.py", "experts": ["code"]}
        record = finished(client, client.post("/api/tasks", json=body).json()["id"])
    html = browser.get(f"/dashboard/tasks/{record['id']}").text
    assert "empty &lt;list&gt; raises" in html and "<list>" not in html


def test_terms_are_marked_as_whole_words_in_any_case() -> None:
    assert marked("Monthly, not monthlyish; 12 weeks", ["monthly", "12 weeks"]) == [
        ("Monthly", True),
        (", not monthlyish; ", False),
        ("12 weeks", True),
    ]
    assert marked("<b>", []) == [("<b>", False)] and marked("", ["x"]) == []


# -- the task page in a browser -------------------------------------------------------------------------------------

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
LAYOUT = """() => {
  const box = (id) => { const el = document.getElementById(id); return el && el.getBoundingClientRect(); };
  const style = (selector, property) => {
    const el = document.querySelector(selector);
    return el && getComputedStyle(el).getPropertyValue(property);
  };
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    output: box("output"), warning: box("unsupported"), findings: box("findings"), result: box("result"),
    bug: style("#findings tr.severity-bug .severity", "color"),
    warned: style("#findings tr.severity-warning .severity", "color"),
    bugEdge: style("#findings tr.severity-bug td", "border-left-color"),
    mark: style("#output mark.unsupported", "background-color"),
    number: style("#result td.num", "text-align"),
  };
}"""


@pytest.mark.slow
@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_the_new_fields_read_well_in_a_browser(
    api: LiveApi, tasks: dict[str, dict[str, Any]], tmp_path: Path, size: str
) -> None:
    from chromium import chromium_context

    with chromium_context(WIDTHS[size]) as context:
        page = context.new_page()
        page.goto(f"{api.url}/dashboard/login")
        page.fill("#key", api.key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{api.url}/dashboard")
        layouts = {}
        for kind, record in tasks.items():
            page.goto(f"{api.url}/dashboard/tasks/{record['id']}")
            page.wait_for_selector("#output")
            shot = tmp_path / f"{kind}-{size}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            layouts[kind] = page.evaluate(LAYOUT)
            assert layouts[kind]["overflow"] <= 0, f"the {kind} page is wider than the {size} screen"
        check, summary, data = layouts["check"], layouts["summary"], layouts["data"]
        assert check["findings"]["width"] <= WIDTHS[size]["width"]
        assert check["bug"] != check["warned"] and check["bugEdge"] == check["bug"]  # a bug reads apart from a warning
        assert summary["mark"] not in ("rgba(0, 0, 0, 0)", "transparent")
        assert 0 <= summary["warning"]["top"] - summary["output"]["bottom"] < 40  # right under the answer
        assert data["number"] == "right" and data["result"]["width"] <= WIDTHS[size]["width"]
        page.goto(f"{api.url}/dashboard/tasks/{tasks['pasted']['id']}")
        lines = page.evaluate(
            "(() => { const d = document.querySelector('.description');"
            " return d.getBoundingClientRect().height / parseFloat(getComputedStyle(d).lineHeight); })()"
        )
        assert lines >= CODE.count("\n"), "a task's text keeps its line breaks (pasted code reads as code)"
        page.goto(f"{api.url}/dashboard/tasks/{tasks['data']['id']}")
        assert page.locator("#result th").all_inner_texts() == ["region", "product", "sum_units"]
        assert page.locator("#result tbody tr").count() == len(tasks["data"]["output"]["result"])
