"""Screens and modals of the chat app."""
