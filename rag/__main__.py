from rag.cli.main import run

run()
