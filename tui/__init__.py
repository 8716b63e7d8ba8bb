"""The Textual chat app. Imports ``assistant``; ``assistant`` never imports this."""
