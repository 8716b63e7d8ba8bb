"""Widgets of the chat app, one class a file."""
