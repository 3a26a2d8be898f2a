"""Reading .txt/.md/.html/.pdf into documents: sources, warnings and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import IngestError, InputError
from rag.document import Document
from rag.loaders import load_paths, parse_document, read_file


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


def docs_by_source(paths: list[Path]) -> dict[str, str]:
    return {d.source: d.text for d in load_paths(paths).documents}


def test_txt_is_read_as_is_and_markdown_is_rendered(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain text.\nSecond line.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nSome *markdown* text.", encoding="utf-8")
    (tmp_path / "c.markdown").write_text("More markdown.", encoding="utf-8")
    result = load_paths([tmp_path])
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
    doc = load_paths([pdf]).documents[0]
    assert doc.page_of(text.index("1852")) == 1 and doc.page_of(text.index("Second page")) == 2


def test_a_pdf_with_no_text_is_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "blank.pdf").write_bytes(make_pdf([[]]))
    (tmp_path / "ok.txt").write_text("Something.", encoding="utf-8")
    result = load_paths([tmp_path])
    assert [d.source for d in result.documents] == ["ok.txt"]
    assert any("blank.pdf" in w and "empty" in w for w in result.warnings)


def test_a_corrupt_pdf_is_an_ingest_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(IngestError):
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


def test_an_unsupported_file_given_directly_is_an_ingest_error(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(IngestError, match="unsupported file type"):
        load_paths([tmp_path / "data.csv"])


def test_unsupported_files_in_a_folder_are_listed_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Text.", encoding="utf-8")
    (tmp_path / "b.csv").write_text("x", encoding="utf-8")
    result = load_paths([tmp_path])
    assert [d.source for d in result.documents] == ["a.txt"]
    assert result.skipped == [str(tmp_path / "b.csv")]


def test_a_binary_file_is_an_ingest_error(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good text.", encoding="utf-8")
    (tmp_path / "zbinary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00text")
    with pytest.raises(IngestError, match="binary") as info:
        load_paths([tmp_path])
    assert "zbinary.txt" in info.value.message
    with pytest.raises(IngestError, match="binary"):
        load_paths([tmp_path / "zbinary.txt"])


def test_invalid_utf8_is_decoded_with_replacement_and_a_warning(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("Caf\u00e9 au lait. Ok.".encode("latin-1"))
    result = load_paths([tmp_path / "latin.txt"])
    assert result.documents == [Document("latin.txt", "Caf\ufffd au lait. Ok.")]
    assert len(result.warnings) == 1
    assert "latin.txt" in result.warnings[0] and "UTF-8" in result.warnings[0]


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_an_empty_file_is_skipped_with_a_warning(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "empty.txt").write_bytes(content)
    (tmp_path / "full.txt").write_text("Full.", encoding="utf-8")
    result = load_paths([tmp_path])
    assert [d.source for d in result.documents] == ["full.txt"]
    assert len(result.warnings) == 1
    assert "empty.txt" in result.warnings[0] and "empty" in result.warnings[0]
    only_empty = load_paths([tmp_path / "empty.txt"])
    assert only_empty.documents == [] and len(only_empty.warnings) == 1


def test_hidden_files_and_folders_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "visible.txt").write_text("Visible.", encoding="utf-8")
    (tmp_path / ".secret.txt").write_text("Secret.", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("Git internals.", encoding="utf-8")
    (tmp_path / "sub" / ".cache").mkdir(parents=True)
    (tmp_path / "sub" / ".cache" / "c.txt").write_text("Cached.", encoding="utf-8")
    result = load_paths([tmp_path])
    assert [d.source for d in result.documents] == ["visible.txt"]
    assert result.skipped == []


def test_a_hidden_folder_given_explicitly_is_read(tmp_path: Path) -> None:
    hidden = tmp_path / ".notes"
    hidden.mkdir()
    (hidden / "n.txt").write_text("Note.", encoding="utf-8")
    assert docs_by_source([hidden]) == {"n.txt": "Note."}


def test_source_ids_are_relative_to_the_folder_given(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "top.txt").write_text("Top.", encoding="utf-8")
    (root / "sub" / "a.txt").write_text("A.", encoding="utf-8")
    (root / "sub" / "deeper" / "b.md").write_text("B.", encoding="utf-8")
    assert sorted(docs_by_source([root])) == ["sub/a.txt", "sub/deeper/b.md", "top.txt"]
    assert sorted(docs_by_source([root / "sub"])) == ["a.txt", "deeper/b.md"]
    assert list(docs_by_source([root / "sub" / "deeper" / "b.md"])) == ["b.md"]


def test_several_paths_are_loaded_together(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "x.txt").write_text("X.", encoding="utf-8")
    (tmp_path / "y.txt").write_text("Y.", encoding="utf-8")
    assert docs_by_source([tmp_path / "one", tmp_path / "y.txt"]) == {"x.txt": "X.", "y.txt": "Y."}


def test_two_different_files_with_the_same_source_name_are_refused(tmp_path: Path) -> None:
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "same.txt").write_text(f"From {d}.", encoding="utf-8")
    with pytest.raises(InputError, match="same source name"):
        load_paths([tmp_path / "one", tmp_path / "two"])


def test_read_file_refuses_unsupported_suffixes(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04")
    with pytest.raises(IngestError, match="unsupported"):
        read_file(tmp_path / "x.docx", "x.docx", [])
