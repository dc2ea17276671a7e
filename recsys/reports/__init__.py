"""Helpers shared by every HTML report: page shell, escaping, number formatting, inline SVG charts."""
