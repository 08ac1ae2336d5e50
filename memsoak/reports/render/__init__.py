"""Rendering: a Report in, text and files out (console, HTML with charts, Markdown, JSON, JUnit)."""
