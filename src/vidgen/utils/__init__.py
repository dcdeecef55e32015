"""Helpers with no better home: config checking, object building, atomic files."""
