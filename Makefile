# The two commands a new user needs (see README.md):
#   make chat   set everything up and open the chat app on the bundled model
#   make test   set everything up and run every check (lint, format, types, tests)
.PHONY: setup chat test bench

setup:
	@./scripts/setup.sh

chat: setup
	@.venv/bin/assistant chat

test: setup
	@./scripts/check.sh

bench: setup
	.venv/bin/python bench/generation.py
