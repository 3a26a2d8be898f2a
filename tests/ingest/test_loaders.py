"""Reading .txt/.md/.html/.pdf into documents: source ids, warnings, skipped files and refusals."""

from __future__ import annotations

from pathlib import Path

import os

import pytest

from rag.errors import IngestError, InputError, UnsupportedFormatError
from rag.ingest.document import Document
from rag.ingest.loaders import Skipped, load_paths, parse_document, read_file


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF (Helvetica, one text line per entry) with a correct xref table."""
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for num, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docs_by_source(paths: list[Path], prefix: str | None = "") -> dict[str, str]:
    """Source id -> text; bare ids (paths relative to the folder given) unless ``prefix`` says otherwise."""
    return {d.source: d.text for d in load_paths(paths, prefix=prefix).documents}


def test_txt_is_read_as_is_and_markdown_is_rendered(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain text.\nSecond line.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nSome *markdown* text.", encoding="utf-8")
    (tmp_path / "c.markdown").write_text("More markdown.", encoding="utf-8")
    result = load_paths([tmp_path], prefix="")
    assert result.documents == [Document("a.txt", "Plain text.\nSecond line."),
                                Document("b.md", "Title\n\nSome markdown text."),
                                Document("c.markdown", "More markdown.")]
    assert [b.kind for b in result.documents[1].blocks] == ["heading", "text"]
    assert result.documents[1].blocks[1].section == "Title"
    assert result.warnings == []


def test_a_utf8_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffHello BOM.".encode())
    assert docs_by_source([tmp_path / "bom.txt"]) == {"bom.txt": "Hello BOM."}


def test_html_visible_text_is_extracted_without_script_or_style(tmp_path: Path) -> None:
    html = """<!doctype html><html><head><title>Page title</title>
    <style>p { color: red; } .secret-css {}</style>
    <script>var secretScript = "do not index";</script></head>
    <body><h1>Harbour news</h1><p>The ferry &amp; the tug arrived.</p>
    <script type="text/javascript">alert("hidden");</script>
    <ul><li>First item</li><li>Second   item</li></ul><noscript>Enable JS</noscript>
    <p>Caf&eacute; opens at&nbsp;9.</p></body></html>"""
    (tmp_path / "page.html").write_text(html, encoding="utf-8")
    (tmp_path / "page2.htm").write_text("<p>Short <b>bold</b> page.</p>", encoding="utf-8")
    docs = docs_by_source([tmp_path])
    assert docs["page.html"] == ("Harbour news\n\nThe ferry & the tug arrived.\n\nFirst item\n\nSecond item\n\n"
                                 "Caf\u00e9 opens at 9.")
    for hidden in ("secretScript", "secret-css", "color", "alert", "Enable JS", "<"):
        assert hidden not in docs["page.html"]
    assert docs["page2.htm"] == "Short bold page."


def test_pdf_text_is_extracted_page_by_page(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(make_pdf([["The harbour opened in 1852.", "It serves (mostly) ferries."],
                              ["Second page text here."]]))
    docs = docs_by_source([pdf])
    assert list(docs) == ["report.pdf"]
    text = docs["report.pdf"]
    assert "The harbour opened in 1852." in text
    assert "It serves (mostly) ferries." in text
    assert text.index("1852") < text.index("Second page text here.")
    doc = load_paths([pdf], prefix="").documents[0]
    assert doc.page_of(text.index("1852")) == 1 and doc.page_of(text.index("Second page")) == 2


def test_a_pdf_with_no_text_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "blank.pdf").write_bytes(make_pdf([[]]))
    (tmp_path / "ok.txt").write_text("Something.", encoding="utf-8")
    result = load_paths([tmp_path], prefix="")
    assert [d.source for d in result.documents] == ["ok.txt"]
    assert result.skipped == [Skipped("blank.pdf", "no text (empty)")]


def test_a_corrupt_pdf_given_by_itself_is_an_ingest_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(IngestError, match="bad.pdf"):
        load_paths([tmp_path / "bad.pdf"])


def test_a_pdf_is_read_from_bytes_too() -> None:
    doc = parse_document(make_pdf([["Uploaded text."]]), "up.pdf", [])
    assert doc.source == "up.pdf" and "Uploaded text." in doc.text and doc.page_of(0) == 1


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_paths([tmp_path / "nope.txt"])
    with pytest.raises(InputError):
        load_paths([tmp_path / "missing-dir"])


def test_a_folder_without_supported_files_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / ".hidden.txt").write_text("Hidden text.", encoding="utf-8")
    with pytest.raises(InputError, match="no supported files") as info:
        load_paths([tmp_path])
    assert not isinstance(info.value, IngestError)
    (tmp_path / "empty-sub").mkdir()
    with pytest.raises(InputError):
        load_paths([tmp_path / "empty-sub"])


def test_an_unsupported_file_given_by_itself_is_an_error_naming_the_supported_types(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(UnsupportedFormatError, match="unsupported file type .csv") as info:
        load_paths([tmp_path / "data.csv"])
    assert isinstance(info.value, IngestError)
    assert "supported: .docx, .epub, .htm, .html, .markdown, .md, .pdf, .pptx, .txt" in info.value.message
    (tmp_path / "README").write_text("No suffix.", encoding="utf-8")
    with pytest.raises(UnsupportedFormatError, match=r"unsupported file type \(none\)"):
        load_paths([tmp_path / "README"])


def test_unsupported_files_in_a_folder_are_listed_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Text.", encoding="utf-8")
    (tmp_path / "b.csv").write_text("x", encoding="utf-8")
    result = load_paths([tmp_path], prefix="")
    assert [d.source for d in result.documents] == ["a.txt"]
    assert result.skipped == [Skipped("b.csv", "unsupported file type .csv")]


def test_a_binary_file_in_a_folder_is_skipped_and_given_by_itself_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good text.", encoding="utf-8")
    (tmp_path / "zbinary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00text")
    result = load_paths([tmp_path], prefix="")
    assert [d.source for d in result.documents] == ["good.txt"]
    assert result.skipped == [Skipped("zbinary.txt", "looks like a binary file (NUL bytes), not text")]
    with pytest.raises(IngestError, match="binary") as info:
        load_paths([tmp_path / "zbinary.txt"])
    assert "zbinary.txt" in info.value.message


def test_a_mixed_folder_gives_its_good_files_and_one_reason_per_skipped_file(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "good.txt").write_text("The ferry leaves at seven.", encoding="utf-8")
    (mixed / "page.md").write_text("# Port\n\nThe port opens at six.", encoding="utf-8")
    (mixed / "ok.pdf").write_bytes(make_pdf([["The harbour opened in 1852."]]))
    (mixed / "blob.txt").write_bytes(b"GIF89a\x00\x01binary")
    (mixed / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    (mixed / "damaged.pdf").write_bytes(make_pdf([["Cut short."]])[:60])
    result = load_paths([mixed])
    assert [d.source for d in result.documents] == ["mixed/good.txt", "mixed/ok.pdf", "mixed/page.md"]
    reasons = {s.source: s.reason for s in result.skipped}
    assert list(reasons) == ["mixed/blob.txt", "mixed/damaged.pdf", "mixed/photo.jpg"]
    assert "binary" in reasons["mixed/blob.txt"]
    assert "not a readable PDF" in reasons["mixed/damaged.pdf"]
    assert reasons["mixed/photo.jpg"] == "unsupported file type .jpg"
    assert all("\n" not in r for r in reasons.values())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="chmod 000 does not stop root from reading")
def test_an_unreadable_file_or_folder_in_a_folder_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good text.", encoding="utf-8")
    locked = tmp_path / "locked.txt"
    locked.write_text("Secret.", encoding="utf-8")
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "inside.txt").write_text("Hidden away.", encoding="utf-8")
    locked.chmod(0)
    closed.chmod(0)
    try:
        result = load_paths([tmp_path], prefix="")
        assert [d.source for d in result.documents] == ["good.txt"]
        assert result.skipped == [Skipped("closed/", "folder not readable (Permission denied)"),
                                  Skipped("locked.txt", "not readable (Permission denied)")]
        with pytest.raises(IngestError, match="not readable"):
            load_paths([locked])
    finally:
        locked.chmod(0o644)
        closed.chmod(0o755)


def test_a_parser_that_fails_skips_its_file_with_a_one_line_reason(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.ingest.parsers.pdf

    def broken(data: bytes, source: str, *options: object) -> Document:
        raise ValueError("bad xref\nat offset 12")

    monkeypatch.setattr(rag.ingest.parsers.pdf, "parse_pdf", broken)
    (tmp_path / "a.txt").write_text("Text.", encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(make_pdf([["Some text."]]))
    result = load_paths([tmp_path], prefix="")
    assert [d.source for d in result.documents] == ["a.txt"]
    assert result.skipped == [Skipped("b.pdf", "cannot parse (ValueError: bad xref at offset 12)")]
    with pytest.raises(IngestError, match=r"b.pdf: cannot parse \(ValueError: bad xref at offset 12\)$"):
        load_paths([tmp_path / "b.pdf"])


def test_invalid_utf8_is_decoded_with_replacement_and_a_warning(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("Caf\u00e9 au lait. Ok.".encode("latin-1"))
    result = load_paths([tmp_path / "latin.txt"], prefix="")
    assert result.documents == [Document("latin.txt", "Caf\ufffd au lait. Ok.")]
    assert len(result.warnings) == 1
    assert "latin.txt" in result.warnings[0] and "UTF-8" in result.warnings[0]


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_an_empty_file_is_skipped(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "empty.txt").write_bytes(content)
    (tmp_path / "full.txt").write_text("Full.", encoding="utf-8")
    result = load_paths([tmp_path], prefix="")
    assert [d.source for d in result.documents] == ["full.txt"]
    assert result.skipped == [Skipped("empty.txt", "no text (empty)")] and result.warnings == []
    only_empty = load_paths([tmp_path / "empty.txt"], prefix="")
    assert only_empty.documents == [] and only_empty.skipped == [Skipped("empty.txt", "no text (empty)")]


def test_hidden_files_and_folders_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "visible.txt").write_text("Visible.", encoding="utf-8")
    (tmp_path / ".secret.txt").write_text("Secret.", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("Git internals.", encoding="utf-8")
    (tmp_path / "sub" / ".cache").mkdir(parents=True)
    (tmp_path / "sub" / ".cache" / "c.txt").write_text("Cached.", encoding="utf-8")
    result = load_paths([tmp_path], prefix="")
    assert [d.source for d in result.documents] == ["visible.txt"]
    assert result.skipped == []


def test_a_hidden_folder_given_explicitly_is_read(tmp_path: Path) -> None:
    hidden = tmp_path / ".notes"
    hidden.mkdir()
    (hidden / "n.txt").write_text("Note.", encoding="utf-8")
    assert docs_by_source([hidden], prefix=None) == {".notes/n.txt": "Note."}


def test_source_ids_start_with_the_name_of_the_folder_given(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "top.txt").write_text("Top.", encoding="utf-8")
    (root / "sub" / "a.txt").write_text("A.", encoding="utf-8")
    (root / "sub" / "deeper" / "b.md").write_text("B.", encoding="utf-8")
    assert sorted(docs_by_source([root], prefix=None)) == ["docs/sub/a.txt", "docs/sub/deeper/b.md", "docs/top.txt"]
    assert sorted(docs_by_source([root / "sub"], prefix=None)) == ["sub/a.txt", "sub/deeper/b.md"]
    # a file given by itself is named under its own folder's name: as when its folder is given
    assert list(docs_by_source([root / "top.txt"], prefix=None)) == ["docs/top.txt"]
    assert list(docs_by_source([root / "sub" / "deeper" / "b.md"], prefix=None)) == ["deeper/b.md"]
    # '.' and '..' are named by the folder they are
    cwd = os.getcwd()
    try:
        os.chdir(root / "sub")
        assert sorted(docs_by_source([Path(".")], prefix=None)) == ["sub/a.txt", "sub/deeper/b.md"]
        assert list(docs_by_source([Path("deeper/..")], prefix=None)) == ["sub/a.txt", "sub/deeper/b.md"]
    finally:
        os.chdir(cwd)


def test_a_prefix_replaces_the_folder_name(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "top.txt").write_text("Top.", encoding="utf-8")
    (root / "sub" / "a.txt").write_text("A.", encoding="utf-8")
    assert sorted(docs_by_source([root], prefix="manual")) == ["manual/sub/a.txt", "manual/top.txt"]
    assert sorted(docs_by_source([root], prefix="v2/manual/")) == ["v2/manual/sub/a.txt", "v2/manual/top.txt"]
    assert list(docs_by_source([root / "top.txt"], prefix="manual")) == ["manual/top.txt"]
    assert sorted(docs_by_source([root], prefix="")) == ["sub/a.txt", "top.txt"]
    assert list(docs_by_source([root / "top.txt"], prefix="")) == ["top.txt"]
    for bad in ("..", "../x", "a\\b", "C:", "a\x00b"):
        with pytest.raises(InputError, match="--prefix NAME"):
            load_paths([root], prefix=bad)


def test_a_folder_name_that_cannot_start_an_id_asks_for_a_prefix(tmp_path: Path) -> None:
    odd = tmp_path / "c:notes"
    odd.mkdir()
    (odd / "a.txt").write_text("A.", encoding="utf-8")
    with pytest.raises(InputError, match="folder name 'c:notes'.*--prefix NAME"):
        load_paths([odd])
    assert docs_by_source([odd], prefix="notes") == {"notes/a.txt": "A."}


def test_prefixed_ids_remember_their_bare_form(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "top.txt").write_text("Top.", encoding="utf-8")
    (root / "sub" / "a.txt").write_text("A.", encoding="utf-8")
    assert load_paths([root]).bare == {"docs/sub/a.txt": "sub/a.txt", "docs/top.txt": "top.txt"}
    assert load_paths([root / "top.txt"]).bare == {"docs/top.txt": "top.txt"}
    assert load_paths([root], prefix="").bare == {}


def test_several_paths_are_loaded_together(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "x.txt").write_text("X.", encoding="utf-8")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "y.txt").write_text("Y.", encoding="utf-8")
    assert docs_by_source([tmp_path / "one", tmp_path / "two" / "y.txt"], prefix=None) == {
        "one/x.txt": "X.", "two/y.txt": "Y."}


def test_files_of_the_same_name_in_two_folders_keep_their_own_ids(tmp_path: Path) -> None:
    for d in ("projA", "projB"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "README.md").write_text(f"From {d}.", encoding="utf-8")
    assert docs_by_source([tmp_path / "projA", tmp_path / "projB"], prefix=None) == {
        "projA/README.md": "From projA.", "projB/README.md": "From projB."}


def test_the_same_file_reached_twice_keeps_its_first_id(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("A.", encoding="utf-8")
    assert list(docs_by_source([root, root / "sub", root / "sub" / "a.txt"], prefix=None)) == ["docs/sub/a.txt"]


def test_two_different_files_that_would_share_an_id_are_refused(tmp_path: Path) -> None:
    for d in ("one", "two"):
        (tmp_path / d / "docs").mkdir(parents=True)
        (tmp_path / d / "docs" / "same.txt").write_text(f"From {d}.", encoding="utf-8")
    with pytest.raises(InputError, match="same source id 'docs/same.txt'.*different --prefix"):
        load_paths([tmp_path / "one" / "docs", tmp_path / "two" / "docs"])
    with pytest.raises(InputError, match="same source id 'same.txt'"):
        load_paths([tmp_path / "one" / "docs", tmp_path / "two" / "docs"], prefix="")


def test_read_file_refuses_unsupported_suffixes(tmp_path: Path) -> None:
    (tmp_path / "x.odt").write_bytes(b"PK\x03\x04")
    with pytest.raises(IngestError, match="unsupported"):
        read_file(tmp_path / "x.odt", "x.odt", [])
